// Every llm-router-mcp tool against the real router and a real llm-node
// (tiny model), driven by the official MCP SDK client, asserting the real
// effect through the router's own API (or the openai SDK): a renamed node is
// renamed in GET /api/nodes, a chat returns text with usage and shows up in
// the history, a created key works and a revoked one stops working, a
// registered model becomes ready and a deleted one is gone. router_request
// refuses every escape and makes no request for it (a fake router's log).
// Credentials: login + renewal on 401, a session token, none.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { existsSync, symlinkSync } from 'node:fs';
import OpenAI from 'openai';
import { buildDir, startNode, makeModel, tempDir, waitFor, http as req } from './lib/harness.mjs';
import { JOIN, fakeNode } from './lib/routerkit.mjs';
import { startMcp, mcpWithRouter, toolJson } from './lib/mcpkit.mjs';
import { startFakeHf, HF_TEST_TOKEN } from './lib/fake_hf.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;

let env, ctx, c, node, model, hub;
const call = async (name, args = {}) => {
  const r = await c.callTool({ name, arguments: args });
  return { r, j: toolJson(r) };
};
const ok = async (name, args = {}) => {
  const { r, j } = await call(name, args);
  assert.equal(r.isError, false, `${name}: ${JSON.stringify(j)}`);
  assert.deepEqual(r.structuredContent, j);
  return j.data;
};

before(async () => {
  if (skip) return;
  hub = await startFakeHf();
  hub.addRepo('acme/tiny-GGUF', { files: [{ path: 'tiny.Q8_0.gguf', file: makeModel('tiny', 'q8_0') }] });
  env = await mcpWithRouter({ routerEnv: { ...hub.env, HF_TOKEN: HF_TEST_TOKEN, LLM_ROUTER_LOG_LEVEL: 'info' } });
  ({ ctx } = env);
  c = env.mcp.client;
  const dir = tempDir('llmr-models-');
  const file = makeModel('tiny');
  symlinkSync(file, path.join(dir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN,
    LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_MODEL_SYNC: '0' });
  await waitFor(async () => {
    const m = await req('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.find((d) => d.ready_nodes > 0)?.id;
    return model;
  }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
});
after(async () => { await node?.stop(); await env?.close(); await hub?.close?.(); });

describe('tools against the real router', { skip }, () => {
  let nodeId;
  test('list_nodes, get_node, node_metrics, node_logs', async () => {
    const nodes = await ok('list_nodes');
    assert.ok(Array.isArray(nodes) && nodes.length >= 1);
    const real = (await req('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json;
    assert.deepEqual(nodes.map((n) => n.id).sort(), real.map((n) => n.id).sort());
    nodeId = nodes[0].id;
    const one = await ok('get_node', { node_id: nodeId });
    assert.equal(one.id, nodeId);
    await ok('node_metrics', { node_id: nodeId });
    await ok('node_logs', { node_id: nodeId, tail: 5 });
    const { r, j } = await call('get_node', { node_id: 'no-such-node' });
    assert.equal(r.isError, true);
    assert.equal(j.error.type, 'router_error');
    assert.equal(j.error.status, 404);
    const esc = await call('get_node', { node_id: '../metrics' });
    assert.equal(esc.r.isError, true); // encoded to ..%2Fmetrics, which the path check refuses
    assert.equal(esc.j.error.type, 'refused');
  });

  test('update_node renames, tags and annotates: GET /api/nodes shows it', async () => {
    await ok('update_node', { node_id: nodeId, custom_name: 'renamed-by-mcp', tags: ['gpu', 'mcp'], notes: 'set by a tool' });
    const n = (await req('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json.find((x) => x.id === nodeId);
    assert.equal(n.custom_name, 'renamed-by-mcp');
    assert.deepEqual(n.tags, ['gpu', 'mcp']);
    assert.equal(n.notes, 'set by a tool');
  });

  test('list_models: served models with readiness and the registered catalogue', async () => {
    const d = await ok('list_models');
    const m = d.models.find((x) => x.id === model);
    assert.ok(m && m.ready_nodes > 0);
    assert.ok('registered' in d);
  });

  let chatId;
  test('chat_completion returns generated text with usage; search_history finds it; get_history_record reads it', async () => {
    const d = await ok('chat_completion', { model, messages: [{ role: 'user', content: 'Say hello to mcp-history-marker' }], max_tokens: 8, temperature: 0, seed: 1 });
    assert.equal(d.object, 'chat.completion');
    assert.equal(typeof d.choices[0].message.content, 'string');
    assert.ok(d.choices[0].message.content.length > 0);
    assert.ok(d.usage.prompt_tokens > 0 && d.usage.completion_tokens > 0);
    assert.equal(d.usage.total_tokens, d.usage.prompt_tokens + d.usage.completion_tokens);
    const found = await waitFor(async () => {
      const h = await ok('search_history', { model, q: 'mcp-history-marker', per_page: 10 });
      return h.records?.length ? h : null;
    }, { timeoutMs: 10000, what: 'the chat in the history' });
    chatId = found.records[0].id;
    const rec = await ok('get_history_record', { id: String(chatId) });
    assert.equal(rec.id, chatId);
    assert.equal(rec.model, model);
    const none = await ok('search_history', { model: 'no-such-model' });
    assert.equal(none.records.length, 0);
    const errs = await ok('search_history', { status: 'error', page: 1, per_page: 5 });
    assert.ok(Array.isArray(errs.records) && !errs.records.some((x) => x.id === chatId), 'the successful chat is not an error');
  });

  test('embeddings returns vectors', async () => {
    const d = await ok('embeddings', { model, input: ['hello', 'world'] });
    assert.equal(d.data.length, 2);
    assert.ok(d.data[0].embedding.length > 0);
  });

  test('metrics_summary counts the chat (summary, overview, stats)', async () => {
    const s = await ok('metrics_summary');
    assert.equal(typeof s, 'object');
    const direct = (await req('GET', `${ctx.router.url}/api/metrics/summary`, { headers: ctx.admin })).json;
    assert.deepEqual(Object.keys(s).sort(), Object.keys(direct).sort());
    await ok('metrics_summary', { view: 'overview' });
    await ok('metrics_summary', { view: 'stats' });
  });

  test('users: create_user makes a user who can log in; list_users lists it', async () => {
    await ok('create_user', { username: 'mcp-viewer', password: 'viewer-password-123', role: 'viewer' });
    const users = await ok('list_users');
    const list = Array.isArray(users) ? users : users.users;
    assert.ok(list.some((u) => u.username === 'mcp-viewer'));
    const login = await req('POST', `${ctx.router.url}/api/auth/login`, { body: { username: 'mcp-viewer', password: 'viewer-password-123' } });
    assert.equal(login.status, 200);
  });

  test('API keys: a created key works with the openai SDK, is listed, and stops working once revoked', async () => {
    const created = await ok('create_api_key', { name: 'mcp-made' });
    assert.match(created.key, /^sk_[A-Za-z0-9_-]{40,}$/); // returned once, whole
    assert.ok(!env.mcp.stderr().includes(created.key), 'never logged');
    const oa = new OpenAI({ apiKey: created.key, baseURL: `${ctx.router.url}/v1`, maxRetries: 0 });
    const models = await oa.models.list();
    assert.ok(models.data.some((m) => m.id === model));
    const keys = await ok('list_api_keys');
    const list = Array.isArray(keys) ? keys : keys.api_keys ?? keys.keys;
    assert.ok(list.some((k) => k.id === created.id));
    assert.ok(!JSON.stringify(keys).includes(created.key));
    await ok('revoke_api_key', { key_id: String(created.id) });
    await assert.rejects(oa.models.list(), (e) => e.status === 401);
  });

  test('register_model downloads from the Hub; model_task follows it; delete_model removes it', async () => {
    const t = await ok('register_model', { repo: 'acme/tiny-GGUF' });
    assert.ok(t.id);
    const done = await waitFor(async () => {
      const s = await ok('model_task', { task_id: t.id });
      return ['ready', 'failed', 'cancelled'].includes(s.state) && s;
    }, { timeoutMs: 30000, intervalMs: 100, what: 'the download task' });
    assert.equal(done.state, 'ready', JSON.stringify(done));
    let reg = (await req('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin })).json;
    assert.ok(reg.models.some((m) => m.id === 'tiny'));
    await ok('delete_model', { model: 'tiny' });
    reg = (await req('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin })).json;
    assert.ok(!reg.models.some((m) => m.id === 'tiny'));
    const bad = await call('delete_model', { model: 'a/../b' });
    assert.equal(bad.r.isError, true);
  });

  test('disconnect_node and delete_node (a fake node)', async () => {
    const fn = await fakeNode(ctx.router, { name: 'mcp-fake', models: ['fake-model'] });
    try {
      fn.heartbeating = false;
      await ok('disconnect_node', { node_id: fn.nodeId });
      let n = (await req('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json.find((x) => x.id === fn.nodeId);
      assert.notEqual(n.status, 'online');
      await ok('delete_node', { node_id: fn.nodeId });
      n = (await req('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json.find((x) => x.id === fn.nodeId);
      assert.equal(n, undefined);
    } finally { fn.stop?.(); }
  });

  test('router_request reaches other routes with the right credential', async () => {
    const stats = await ok('router_request', { method: 'GET', path: '/api/dashboard/stats' });
    assert.equal(typeof stats, 'object');
    const m = await ok('router_request', { method: 'GET', path: `/v1/models/${encodeURIComponent(model)}` });
    assert.equal(m.id, model);
    const h = await ok('router_request', { method: 'GET', path: '/api/dashboard/request-responses', query: { per_page: '1', model } });
    assert.equal(h.per_page, 1);
  });

  test('the session is renewed once on a 401 (logged out behind its back)', async () => {
    await ok('router_request', { method: 'POST', path: '/api/auth/logout' });
    const users = await ok('list_users');
    assert.ok(users);
    assert.ok((env.mcp.stderr().match(/logged in to the router/g) || []).length >= 2);
  });
});

describe('credentials', { skip }, () => {
  test('a session token (LLM_ROUTER_JWT_TOKEN) works for /api/*, the API key for /v1/*', async () => {
    const token = ctx.admin.authorization.slice('Bearer '.length);
    const m = await startMcp({ url: ctx.router.url, env: { LLM_ROUTER_JWT_TOKEN: token, LLM_ROUTER_API_KEY: ctx.apiKey } });
    try {
      const r = await m.client.callTool({ name: 'list_users', arguments: {} });
      assert.equal(r.isError, false);
      assert.ok(!m.stderr().includes(token));
    } finally { await m.close(); }
  });

  test('no credentials: clear isError results that say which variable to set', async () => {
    const m = await startMcp({ url: ctx.router.url });
    try {
      const a = await m.client.callTool({ name: 'list_users', arguments: {} });
      assert.equal(a.isError, true);
      assert.match(toolJson(a).error.message, /LLM_ROUTER_USERNAME/);
      const b = await m.client.callTool({ name: 'chat_completion', arguments: { model, messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(b.isError, true);
      assert.match(toolJson(b).error.message, /LLM_ROUTER_API_KEY/);
    } finally { await m.close(); }
  });

  test('large results are truncated with a note', async () => {
    const m = await startMcp({ url: ctx.router.url, env: { LLM_ROUTER_API_KEY: ctx.apiKey, LLM_ROUTER_JWT_TOKEN: ctx.admin.authorization.slice(7), LLM_ROUTER_MCP_MAX_RESULT_BYTES: '1024' } });
    try {
      const r = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/dashboard/logs/router', query: { tail: '1000' } } });
      assert.equal(r.isError, false);
      assert.ok(r.content[0].text.length < 1400, r.content[0].text);
      assert.match(r.content[0].text, /truncated: the answer has \d+ bytes/);
      assert.equal(r.structuredContent.truncated, true);
    } finally { await m.close(); }
  });
});

describe('router_request refuses every escape and makes no request for it', () => {
  let fr, m;
  const log = [];
  before(async () => {
    fr = http.createServer((q, s) => { log.push({ method: q.method, url: q.url, host: q.headers.host, auth: q.headers.authorization });
      if (q.url.startsWith('/api/redirect')) { s.writeHead(302, { location: 'http://127.0.0.1:9/api/evil' }); s.end(); return; }
      s.writeHead(200, { 'content-type': 'application/json' }); s.end('{"ok":true}'); });
    await new Promise((r) => fr.listen(0, '127.0.0.1', r));
    m = await startMcp({ url: `http://127.0.0.1:${fr.address().port}`, env: { LLM_ROUTER_API_KEY: 'sk_fakekey0123456789abcdefghijklmnop', LLM_ROUTER_JWT_TOKEN: 'session-token-for-the-fake' } });
  });
  after(async () => { await m.close(); await new Promise((r) => fr.close(r)); });

  const escapes = [
    'http://evil.example/api/x', 'https://127.0.0.1/api/nodes', '//evil.example/api/x', 'evil.example/api/x',
    '/api//evil.example/x', '/api/@evil.example', '/api/x@evil.example', '@evil.example/api/x',
    '/api/../metrics', '/v1/../../etc/passwd', '/api/nodes/..', '/api/%2e%2e/metrics', '/api/%2E%2E/metrics',
    '/api/.%2e/x', '/api/%2Fevil', '/api/%2fevil', '/api/%5cevil', '/api/%5Cevil', '/api/%252e%252e/x',
    '/api/x\r\nHost: evil.example', '/api/x\nX: y', '/api/x\r', '/api/x%0d%0aHost:evil', '/api/x%00', '/api/x\u0001', '/api/x\u007f',
    '/api/x\\..\\y', '/api/x#frag', '/api/x?inject=1', '/api/x y', '/metrics', '/health', '/dashboard/',
    '/', '', 'api/nodes', '/apiary', '/v1', '/v2/models', '/api/./x', '/api/\u00e9',
  ];
  test('each escape: an isError "refused" result and no request at all', async () => {
    for (const p of escapes) {
      const before = log.length;
      let r;
      try {
        r = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: p } });
      } catch (e) {
        // the schema (minLength) refuses the empty path as invalid params
        assert.equal(p, '');
        assert.match(String(e), /-32602|Invalid arguments/);
        continue;
      }
      assert.equal(r.isError, true, `${JSON.stringify(p)} -> ${JSON.stringify(r)}`);
      assert.equal(toolJson(r).error.type, 'refused', JSON.stringify(p));
      assert.equal(log.length, before, `no request for ${JSON.stringify(p)}`);
    }
    assert.equal(log.length, 0);
  });

  test('query keys and values are encoded by the server, never spliced', async () => {
    const r = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/q', query: { 'a&b': 'c=d#e f', x: '../..\r\n' } } });
    assert.equal(r.isError, false);
    const last = log.at(-1);
    assert.equal(last.url, '/api/q?a%26b=c%3Dd%23e%20f&x=..%2F..%0D%0A');
    const bad = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/q', query: { n: 1 } } }).catch((e) => e);
    assert.match(String(bad), /-32602|Invalid arguments/);
  });

  test('a valid path reaches it, with the session for /api/* and the key for /v1/*; redirects are not followed', async () => {
    const n0 = log.length;
    const a = await m.client.callTool({ name: 'router_request', arguments: { method: 'POST', path: '/api/thing', body: { x: 1 } } });
    assert.equal(a.isError, false);
    assert.equal(log[n0].url, '/api/thing');
    assert.equal(log[n0].method, 'POST');
    assert.equal(log[n0].auth, 'Bearer session-token-for-the-fake');
    const b = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/v1/models' } });
    assert.equal(b.isError, false);
    assert.equal(log[n0 + 1].auth, 'Bearer sk_fakekey0123456789abcdefghijklmnop');
    const red = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/redirect' } });
    assert.equal(log.length, n0 + 3, 'the redirect was not followed');
    assert.equal(red.isError, false);
    assert.equal(red.structuredContent.status, 302);
    assert.ok(!m.stderr().includes('sk_fakekey0123456789abcdefghijklmnop'));
    assert.ok(!m.stderr().includes('session-token-for-the-fake'));
  });
});
