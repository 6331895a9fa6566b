// A real llm-router and a real llm-node (tiny model) together: the node joins
// with the join token the router wrote to its data directory; its heartbeats
// carry its real figures; an admin deleting it makes it register again on its
// own; a router restart keeps the registry and the node comes back without
// registering anew; a node killed mid-stream ends the client's stream with an
// SSE error event and [DONE].
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { buildDir, startRouter, startNode, makeModel, tempDir, http, waitFor, cleanup } from './lib/harness.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
const MODEL = 'tiny';
const PARALLEL = 3;
const NO_EOG = { 2: -100, 260: -100 }; // end-of-turn tokens banned: only max_tokens ends it

let router, node, modelsDir, admin, v1;

async function login() {
  const r = await http('POST', `${router.url}/api/auth/login`, { body: { username: 'admin', password: 'admin-test-password' } });
  assert.equal(r.status, 200, r.text);
  admin = { authorization: `Bearer ${r.json.token}` };
}

const nodes = async () => {
  const r = await http('GET', `${router.url}/api/nodes`, { headers: admin });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const health = async () => (await http('GET', `${node.url}/health`)).json;
const chat = (body = {}) => http('POST', `${router.url}/v1/chat/completions`, {
  headers: v1, body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...body },
});

/** Waits until the router lists the node online with the model ready, and a request goes through. */
async function routable(what) {
  await waitFor(async () => {
    const m = await http('GET', `${router.url}/v1/models`, { headers: v1 });
    return m.json?.data?.some((d) => d.id === MODEL && d.ready_nodes > 0);
  }, { timeoutMs: 20000, intervalMs: 100, what });
  const r = await chat();
  assert.equal(r.status, 200, r.text);
}

before(async () => {
  if (skip) return;
  router = await startRouter({ LLM_ROUTER_LOG_LEVEL: 'warn' });
  await login();
  const k = await http('POST', `${router.url}/api/api-keys`, { body: { name: 'integration' }, headers: admin });
  assert.ok(k.status === 201 || k.status === 200, k.text);
  v1 = { authorization: `Bearer ${k.json.key}` };
  const join = readFileSync(path.join(router.dataDir, 'join_token'), 'utf8').trim();
  assert.match(join, /^jt_/);
  modelsDir = tempDir('llmr-int-models-');
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(modelsDir, `${MODEL}.gguf`));
  node = await startNode({
    LLM_ROUTER_URL: router.url, LLM_ROUTER_JOIN_TOKEN: join, LLM_NODE_MODELS_DIR: modelsDir,
    LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_PARALLEL: String(PARALLEL), LLM_NODE_THREADS: '1',
    LLM_NODE_CTX_SIZE: '4096',
  });
  await waitFor(async () => (await health()).registered, { timeoutMs: 20000, what: 'registration' });
  await routable('the node routable');
});

after(async () => {
  await node?.stop('SIGKILL');
  await router?.stop();
  if (router) cleanup(router.dataDir);
  if (modelsDir) cleanup(modelsDir);
});

test('the router shows the node\'s real figures: slots and loaded models', { skip }, async () => {
  const id = (await health()).node_id;
  assert.equal((await chat({ max_tokens: 2 })).status, 200);
  const n = await waitFor(async () => {
    const x = (await nodes()).find((e) => e.id === id);
    return x?.loaded_models?.includes(MODEL) ? x : null;
  }, { timeoutMs: 10000, what: 'loaded_models in a heartbeat' });
  assert.equal(n.status, 'online');
  assert.equal(n.total_slots, PARALLEL);
  assert.deepEqual(n.available_models, [MODEL]);
  assert.equal(n.ip_address, '127.0.0.1');
  assert.equal(n.node_api_port, node.port);
  assert.equal(typeof n.cpu_usage, 'number');
  assert.equal(typeof n.memory_usage, 'number');
  assert.ok(n.memory_usage > 0 && n.memory_usage <= 100, `memory_usage ${n.memory_usage}`);
  assert.equal(n.initializing, false);
});

test('an admin deleting the node: its next heartbeat is refused and it registers again', { skip }, async () => {
  const old = (await health()).node_id;
  const before = (await health());
  const del = await http('DELETE', `${router.url}/api/nodes/${old}`, { headers: admin });
  assert.ok(del.status === 204 || del.status === 200, del.text);
  assert.ok(!(await nodes()).some((e) => e.id === old), 'forgotten at once');
  // the node notices on its next heartbeat (every second) and registers anew
  const h = await waitFor(async () => {
    const x = await health();
    return x.registered && x.node_id && x.node_id !== old ? x : null;
  }, { timeoutMs: 15000, intervalMs: 100, what: 'registration under a new id' });
  assert.match(node.output(), /router answered (401|404) to a heartbeat: registering again/);
  const list = await nodes();
  assert.equal(list.length, 1);
  assert.equal(list[0].id, h.node_id);
  assert.ok(before.uptime_secs <= h.uptime_secs, 'the same node process');
  await routable('the re-registered node routable');
});

test('a router restart: the registry persists and the node is routable again without registering anew', { skip }, async () => {
  const id = (await health()).node_id;
  const registrations = () => (node.output().match(/agent: registered with/g) || []).length;
  const regs = registrations();
  const port = router.port;
  const dataDir = router.dataDir;
  await router.stop();
  // the node keeps serving and keeps trying
  assert.equal((await http('GET', `${node.url}/health`)).status, 200);
  router = await startRouter({ LLM_ROUTER_LOG_LEVEL: 'warn', LLM_ROUTER_PORT: String(port), LLM_ROUTER_DATA_DIR: dataDir });
  await login();
  const listed = (await nodes()).find((e) => e.id === id);
  assert.ok(listed, 'the node is still in the registry after the restart');
  await routable('the node routable after the restart');
  assert.equal((await health()).node_id, id, 'the same registration: the router kept it');
  assert.equal((await nodes()).find((e) => e.id === id).status, 'online');
  assert.equal(registrations(), regs, 'no new registration');
});

test('a node killed mid-stream: the client\'s stream ends with an SSE error event and [DONE]', { skip }, async () => {
  const res = await fetch(`${router.url}/v1/chat/completions`, {
    method: 'POST', headers: { ...v1, 'content-type': 'application/json' }, signal: AbortSignal.timeout(60000),
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 3000, logit_bias: NO_EOG }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  while ((text.match(/data: /g) || []).length < 5) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream ended before the kill');
    text += dec.decode(value, { stream: true });
  }
  await node.stop('SIGKILL');
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  // each SSE block: optional "event:" line, one "data:" line
  const blocks = text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const lines = b.split('\n');
    return { event: lines.find((l) => l.startsWith('event: '))?.slice(7), data: lines.find((l) => l.startsWith('data: '))?.slice(6) };
  });
  const events = blocks.map((b) => b.data);
  assert.equal(events.at(-1), '[DONE]', text.slice(-400));
  const last = blocks.at(-2);
  assert.equal(last.event, 'error', text.slice(-400));
  const err = JSON.parse(last.data);
  assert.ok(err.error && typeof err.error.message === 'string', last.data);
  // the chunks before it were the node's own
  assert.equal(JSON.parse(events[0]).object, 'chat.completion.chunk');
});
