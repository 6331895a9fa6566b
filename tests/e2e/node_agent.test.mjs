// llm-node's router client against a fake router (node:http): registration
// with the join token, heartbeats with real figures, retry while the router
// is down, and registering again when the router forgets the node.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { startNode, makeModel, tempDir, http, waitFor, cleanup } from './lib/harness.mjs';

const dirs = [];
after(() => dirs.forEach(cleanup));

function fakeRouter(port = 0) {
  const st = { registrations: [], heartbeats: [], forget: false, nextId: 1 };
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const json = JSON.parse(body || '{}');
      if (req.method === 'POST' && req.url === '/api/nodes') {
        st.registrations.push({ headers: req.headers, body: json });
        const id = `node-${st.nextId++}`;
        st.token = `nt_${id}`;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ node_id: id, status: 'registered', node_api_port: json.node_api_port, node_token: st.token }));
      } else if (req.method === 'POST' && req.url === '/api/health') {
        st.heartbeats.push({ headers: req.headers, body: json });
        const ok = req.headers['x-node-token'] === st.token && !st.forget;
        const status = ok ? 200 : (st.forget || 404);
        st.forget = false;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(ok ? '{"status":"ok"}' : '{"error":{"message":"unknown node"}}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve({ st, srv, port: srv.address().port })));
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function modelsDir() {
  const dir = tempDir('llmr-node-agent-');
  dirs.push(dir);
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'tiny.gguf'));
  return dir;
}

test('registers with the join token, heartbeats, re-registers on 404', async () => {
  const fr = await fakeRouter();
  const node = await startNode({
    LLM_NODE_MODELS_DIR: modelsDir(), LLM_NODE_THREADS: '1', LLM_ROUTER_URL: `http://127.0.0.1:${fr.port}/`,
    LLM_ROUTER_JOIN_TOKEN: 'join-secret', LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_PARALLEL: '3',
  });
  try {
    await waitFor(() => fr.st.heartbeats.length >= 1, { timeoutMs: 5000, what: 'first heartbeat' });
    const reg = fr.st.registrations[0];
    assert.equal(reg.headers['x-join-token'], 'join-secret');
    assert.equal(reg.body.ip_address, '127.0.0.1');
    assert.equal(reg.body.runtime_port, node.port);
    assert.equal(reg.body.node_api_port, node.port);
    assert.equal(reg.body.total_slots, 3);
    assert.equal(typeof reg.body.machine_name, 'string');
    assert.equal(typeof reg.body.runtime_version, 'string');
    assert.equal(typeof reg.body.gpu_available, 'boolean');
    assert.ok(Array.isArray(reg.body.gpu_devices));
    assert.deepEqual(reg.body.available_models, ['tiny']);
    const hb = fr.st.heartbeats[0];
    assert.equal(hb.headers['x-node-token'], 'nt_node-1');
    assert.equal(hb.body.node_id, 'node-1');
    for (const k of ['cpu_usage', 'memory_usage', 'gpu_usage', 'gpu_memory_usage', 'active_requests',
      'queued_requests', 'total_slots', 'average_response_time_ms', 'tokens_per_second']) {
      assert.equal(typeof hb.body[k], 'number', k);
    }
    assert.ok(hb.body.memory_usage > 0 && hb.body.memory_usage <= 100);
    assert.deepEqual(hb.body.available_models, ['tiny']);
    assert.deepEqual(hb.body.loaded_embedding_models, []);
    assert.equal(hb.body.initializing, false);
    assert.deepEqual(hb.body.ready_models, [1, 1]);
    let h = await http('GET', `${node.url}/health`);
    assert.equal(h.json.registered, true);
    assert.equal(h.json.node_id, 'node-1');
    // serve a request, then the heartbeat reports the loaded model
    await http('POST', `${node.url}/v1/chat/completions`, { body: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 } });
    await waitFor(() => fr.st.heartbeats.at(-1).body.loaded_models?.includes('tiny'), { timeoutMs: 4000, what: 'loaded model in heartbeat' });
    // the router forgets the node (404, then 401): it registers again and heartbeats with the new token
    fr.st.forget = 404;
    await waitFor(() => fr.st.registrations.length >= 2 && fr.st.heartbeats.at(-1).headers['x-node-token'] === 'nt_node-2',
      { timeoutMs: 5000, what: 're-registration after 404' });
    h = await http('GET', `${node.url}/health`);
    assert.equal(h.json.node_id, 'node-2');
    fr.st.forget = 401;
    await waitFor(() => fr.st.registrations.length >= 3 && fr.st.heartbeats.at(-1).headers['x-node-token'] === 'nt_node-3',
      { timeoutMs: 5000, what: 're-registration after 401' });
  } finally {
    await node.stop();
    fr.srv.close();
  }
});

test('an unreachable router: the node serves, retries, and registers once it is up', async () => {
  const port = await freePort();
  // LLM_NODE_IP empty: the node reports the address that routes to the router
  const node = await startNode({ LLM_NODE_MODELS_DIR: modelsDir(), LLM_NODE_THREADS: '1', LLM_ROUTER_URL: `http://127.0.0.1:${port}`, LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_IP: '' });
  let fr;
  try {
    const h = await http('GET', `${node.url}/health`);
    assert.equal(h.status, 200);
    assert.equal(h.json.registered, false);
    const r = await http('POST', `${node.url}/v1/chat/completions`, { body: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 } });
    assert.equal(r.status, 200);
    await new Promise((res) => setTimeout(res, 800));
    fr = await fakeRouter(port);
    await waitFor(async () => (await http('GET', `${node.url}/health`)).json.registered, { timeoutMs: 8000, what: 'registration after retry' });
    assert.equal(fr.st.registrations[0].headers['x-join-token'], undefined);
    assert.equal(fr.st.registrations[0].body.ip_address, '127.0.0.1');
  } finally {
    await node.stop();
    fr?.srv.close();
  }
});
