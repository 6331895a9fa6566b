// llm-router-mcp's protocol, with the official MCP SDK client and with raw
// JSON lines: version negotiation (current, older, unknown), the shapes of
// tools/list and resources/list, error codes for malformed input while the
// server stays up, a flood of 1,000 pings, cancellation of a slow call
// (the router's connection is closed), the router down or silent (a clear
// isError result within the limit), and no secret on stderr.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { startMcp, startRawMcp, mcpWithRouter, toolJson, ADMIN_PASSWORD } from './lib/mcpkit.mjs';
import { fakeNode } from './lib/routerkit.mjs';

/** A stand-in router: logs each request; /api/hold/* never answers. */
async function fakeRouter() {
  const log = [];
  const held = [];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, headers: req.headers, closed: false };
    log.push(entry);
    req.on('close', () => { entry.closed = true; });
    res.on('close', () => { entry.closed = true; });
    if (req.url.startsWith('/api/hold')) { held.push(res); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, url: req.url }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url, log,
    close: () => { for (const r of held) r.destroy(); return new Promise((r) => server.close(r)); },
  };
}

async function closedPortUrl() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${s.address().port}`;
  await new Promise((r) => s.close(r));
  return url;
}

describe('initialize and version negotiation', () => {
  test('the SDK connects with its latest version and sees server info, capabilities, instructions', async () => {
    const m = await startMcp({ url: 'http://127.0.0.1:9' });
    try {
      assert.equal(LATEST_PROTOCOL_VERSION, '2025-11-25');
      const info = m.client.getServerVersion();
      assert.equal(info.name, 'llm-router-mcp');
      assert.match(info.version, /^\d+\.\d+\.\d+$/);
      const caps = m.client.getServerCapabilities();
      assert.ok(caps.tools && caps.resources);
      assert.match(m.client.getInstructions(), /router_request/);
      await m.client.ping();
    } finally { await m.close(); }
  });

  for (const [asked, answered] of [['2025-11-25', '2025-11-25'], ['2025-06-18', '2025-06-18'],
    ['2024-11-05', '2024-11-05'], ['1999-01-01', '2025-11-25'], ['2026-07-28', '2025-11-25']]) {
    test(`protocolVersion ${asked} is answered with ${answered}`, async () => {
      const raw = startRawMcp({ url: 'http://127.0.0.1:9' });
      try {
        const r = await raw.initialize(asked);
        assert.equal(r.result.protocolVersion, answered);
        assert.equal(r.result.serverInfo.name, 'llm-router-mcp');
        const p = await raw.request('ping', undefined, 'p1');
        assert.deepEqual(p.result, {});
      } finally { await raw.close(); }
    });
  }

  test('requests before initialize get an error, ping works, a second initialize is refused', async () => {
    const raw = startRawMcp({ url: 'http://127.0.0.1:9' });
    try {
      const early = await raw.request('tools/list', {}, 1);
      assert.equal(early.error.code, -32600);
      assert.match(early.error.message, /initialize/);
      assert.deepEqual((await raw.request('ping', undefined, 2)).result, {});
      await raw.initialize();
      const again = await raw.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } }, 3);
      assert.equal(again.error.code, -32600);
      const noVersion = startRawMcp({ url: 'http://127.0.0.1:9' });
      const bad = await noVersion.request('initialize', { capabilities: {} }, 1);
      assert.equal(bad.error.code, -32602);
      await noVersion.close();
    } finally { await raw.close(); }
  });
});

describe('lists', () => {
  test('tools/list: every tool with an object inputSchema closed to extra properties, outputSchema, annotations', async () => {
    const m = await startMcp({ url: 'http://127.0.0.1:9' });
    try {
      const { tools } = await m.client.listTools();
      const names = tools.map((t) => t.name).sort();
      for (const n of ['list_nodes', 'get_node', 'node_metrics', 'node_logs', 'update_node', 'disconnect_node',
        'delete_node', 'list_models', 'register_model', 'model_task', 'delete_model', 'chat_completion',
        'embeddings', 'search_history', 'get_history_record', 'metrics_summary', 'list_users', 'create_user',
        'list_api_keys', 'create_api_key', 'revoke_api_key', 'router_request']) assert.ok(names.includes(n), n);
      for (const t of tools) {
        assert.match(t.name, /^[A-Za-z0-9_.-]{1,128}$/);
        assert.equal(t.inputSchema.type, 'object');
        assert.equal(t.inputSchema.additionalProperties, false, t.name);
        assert.equal(t.inputSchema.properties.timeout_s.type, 'integer');
        assert.equal(t.outputSchema.type, 'object');
        assert.ok(t.description.length > 20);
        assert.equal(t.annotations.openWorldHint, false);
        assert.equal(typeof t.annotations.readOnlyHint, 'boolean');
        assert.equal(typeof t.annotations.destructiveHint, 'boolean');
      }
      const by = Object.fromEntries(tools.map((t) => [t.name, t]));
      assert.equal(by.list_nodes.annotations.readOnlyHint, true);
      assert.equal(by.delete_node.annotations.destructiveHint, true);
      assert.equal(by.revoke_api_key.annotations.destructiveHint, true);
      assert.deepEqual(by.chat_completion.inputSchema.required, ['model', 'messages']);
    } finally { await m.close(); }
  });

  test('resources/list answers a list (the resources part fills it) and an unknown uri is -32002', async () => {
    const raw = startRawMcp({ url: 'http://127.0.0.1:9' });
    try {
      await raw.initialize();
      const r = await raw.request('resources/list', {}, 1);
      assert.ok(Array.isArray(r.result.resources));
      for (const x of r.result.resources) { assert.equal(typeof x.uri, 'string'); assert.equal(typeof x.name, 'string'); }
      const nf = await raw.request('resources/read', { uri: 'llm-router://nope' }, 2);
      assert.equal(nf.error.code, -32002);
      assert.equal(nf.error.data.uri, 'llm-router://nope');
      const miss = await raw.request('resources/read', {}, 3);
      assert.equal(miss.error.code, -32602);
    } finally { await raw.close(); }
  });
});

describe('malformed input', () => {
  test('each bad line gets the right code and the server stays up', async () => {
    const raw = startRawMcp({ url: 'http://127.0.0.1:9' });
    try {
      await raw.initialize();
      const cases = [
        ['{"jsonrpc":"2.0","id":1,"method":', -32700, null],
        ['not json at all', -32700, null],
        ['"a string"', -32600, null],
        ['42', -32600, null],
        ['[{"jsonrpc":"2.0","id":9,"method":"ping"}]', -32600, null],
        ['{"jsonrpc":"1.0","id":"v","method":"ping"}', -32600, 'v'],
        ['{"id":"nov","method":"ping"}', -32600, 'nov'],
        ['{"jsonrpc":"2.0","id":"m","method":5}', -32600, 'm'],
        ['{"jsonrpc":"2.0","id":"u","method":"no/such/method"}', -32601, 'u'],
        ['{"jsonrpc":"2.0","id":"pr","method":"prompts/list"}', -32601, 'pr'],
        ['{"jsonrpc":"2.0","id":"pa","method":"tools/call","params":[1]}', -32602, 'pa'],
        ['{"jsonrpc":"2.0","id":"t1","method":"tools/call","params":{}}', -32602, 't1'],
        ['{"jsonrpc":"2.0","id":"t2","method":"tools/call","params":{"name":"no_such_tool"}}', -32602, 't2'],
        ['{"jsonrpc":"2.0","id":"t3","method":"tools/call","params":{"name":"get_node","arguments":{}}}', -32602, 't3'],
        ['{"jsonrpc":"2.0","id":"t4","method":"tools/call","params":{"name":"get_node","arguments":{"node_id":"a","extra":1}}}', -32602, 't4'],
        ['{"jsonrpc":"2.0","id":"t5","method":"tools/call","params":{"name":"node_logs","arguments":{"node_id":"a","tail":"x"}}}', -32602, 't5'],
        ['{"jsonrpc":"2.0","id":"t6","method":"tools/call","params":{"name":"list_nodes","arguments":{"timeout_s":100000}}}', -32602, 't6'],
        ['{"jsonrpc":"2.0","id":"t7","method":"tools/call","params":{"name":"list_nodes","arguments":"x"}}', -32602, 't7'],
        ['{"jsonrpc":"2.0","id":{"o":1},"method":"ping"}', -32600, null],
      ];
      for (const [line, code, id] of cases) {
        const before = raw.lines.length;
        raw.send(line);
        const msg = await raw.waitFor((m) => raw.lines.indexOf(m) >= before, 3000);
        assert.equal(msg.error?.code, code, `${line} -> ${JSON.stringify(msg)}`);
        assert.equal(msg.id, id, line);
        assert.deepEqual((await raw.request('ping', undefined, `after-${raw.lines.length}`)).result, {});
      }
      // notifications get no answer; empty lines and CRLF are fine
      const n0 = raw.lines.length;
      raw.send('{"jsonrpc":"2.0","method":"notifications/whatever"}');
      raw.send('');
      raw.send('{"jsonrpc":"2.0","id":"crlf","method":"ping"}\r');
      const crlf = await raw.waitFor((m) => m.id === 'crlf');
      assert.deepEqual(crlf.result, {});
      assert.equal(raw.lines.length, n0 + 1);
      // a line over 4 MiB is a parse error, discarded; the next one works
      raw.send('{"jsonrpc":"2.0","id":"big","method":"ping","params":{"x":"' + 'a'.repeat(5 * 1024 * 1024) + '"}}');
      const big = await raw.waitFor((m) => m.error?.code === -32700 && raw.lines.indexOf(m) > n0, 10000);
      assert.match(big.error.message, /4 MiB/);
      assert.deepEqual((await raw.request('ping', undefined, 'after-big')).result, {});
      assert.ok(!raw.lines.some((m) => m.id === 'big'));
      assert.ok(!raw.lines.some((m) => m.__unparsable !== undefined), 'stdout holds only JSON lines');
    } finally { await raw.close(); }
  });

  test('a flood of 1,000 pings written at once is answered, every one, in order', async () => {
    const raw = startRawMcp({ url: 'http://127.0.0.1:9' });
    try {
      await raw.initialize();
      const t0 = Date.now();
      let chunk = '';
      for (let i = 0; i < 1000; i++) chunk += JSON.stringify({ jsonrpc: '2.0', id: i, method: 'ping' }) + '\n';
      raw.proc.stdin.write(chunk);
      await raw.waitFor((m) => m.id === 999, 10000);
      const ids = raw.lines.filter((m) => typeof m.id === 'number').map((m) => m.id);
      assert.deepEqual(ids, [...Array(1000).keys()]);
      assert.ok(raw.lines.every((m) => !m.error));
      assert.ok(Date.now() - t0 < 10000);
    } finally { await raw.close(); }
  });
});

describe('calls in flight', () => {
  let fr;
  before(async () => { fr = await fakeRouter(); });
  after(async () => { await fr.close(); });

  test('pings are answered while a call is held, and cancelling it closes the router connection with no answer', async () => {
    const raw = startRawMcp({ url: fr.url });
    try {
      await raw.initialize();
      raw.send({ jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'router_request', arguments: { method: 'GET', path: '/api/hold/1' } } });
      const start = Date.now();
      while (!fr.log.some((e) => e.url === '/api/hold/1') && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 20));
      const entry = fr.log.find((e) => e.url === '/api/hold/1');
      assert.ok(entry, 'the held request reached the fake router');
      for (let i = 0; i < 20; i++) assert.deepEqual((await raw.request('ping', undefined, `p${i}`)).result, {});
      const t0 = Date.now();
      raw.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'slow', reason: 'test' } });
      while (!entry.closed && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
      assert.ok(entry.closed, 'the router connection was closed');
      assert.ok(Date.now() - t0 < 1000, `closed in ${Date.now() - t0} ms`);
      await raw.request('ping', undefined, 'last');
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!raw.lines.some((m) => m.id === 'slow'), 'a cancelled request gets no answer');
      assert.match(raw.stderr(), /cancelled/);
    } finally { await raw.close(); }
  });

  test('the SDK cancelling a slow chat (a slow fake node) returns at once; the server goes on', async () => {
    const env = await mcpWithRouter();
    const fn = await fakeNode(env.ctx.router, { delayMs: 20000, models: ['slow-model'] });
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      const p = env.mcp.client.callTool({ name: 'chat_completion', arguments: { model: 'slow-model', messages: [{ role: 'user', content: 'hi' }] } },
        undefined, { signal: ac.signal, timeout: 60000 });
      const waitStart = Date.now();
      while (fn.requests === 0 && Date.now() - waitStart < 10000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(fn.requests > 0, 'the chat reached the slow node');
      ac.abort('user cancelled');
      await assert.rejects(p);
      assert.ok(Date.now() - t0 < 12000);
      await env.mcp.client.ping();
      const r = await env.mcp.client.callTool({ name: 'list_nodes', arguments: {} });
      assert.equal(r.isError, false);
      const deadline = Date.now() + 3000;
      while (!/chat_completion cancelled/.test(env.mcp.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.match(env.mcp.stderr(), /chat_completion cancelled/);
    } finally { fn.stop?.(); await env.close(); }
  });

  test('timeout_s bounds a call to a router that never answers', async () => {
    const m = await startMcp({ url: fr.url });
    try {
      const t0 = Date.now();
      const r = await m.client.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/hold/2', timeout_s: 1 } });
      const ms = Date.now() - t0;
      assert.equal(r.isError, true);
      assert.equal(toolJson(r).error.type, 'timeout');
      assert.equal(r.structuredContent.error.type, 'timeout');
      assert.ok(ms >= 900 && ms < 3000, `${ms} ms`);
    } finally { await m.close(); }
  });
});

test('the router down: a clear isError result at once, no hang', async () => {
  const url = await closedPortUrl();
  const m = await startMcp({ url, env: { LLM_ROUTER_API_KEY: 'sk_0123456789abcdefghijklmnopqrstuv', LLM_ROUTER_TIMEOUT: '5' } });
  try {
    for (const [name, args] of [['list_nodes', {}], ['chat_completion', { model: 'x', messages: [{ role: 'user', content: 'hi' }] }]]) {
      const t0 = Date.now();
      const r = await m.client.callTool({ name, arguments: args });
      assert.ok(Date.now() - t0 < 3000);
      assert.equal(r.isError, true);
      const e = toolJson(r).error;
      assert.equal(e.type, 'router_unreachable');
      assert.ok(e.message.includes(url), e.message);
    }
  } finally { await m.close(); }
});

test('bad configuration: the server says why on stderr and exits', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mcpBin } = await import('./lib/mcpkit.mjs');
  for (const [env, re] of [[{ LLM_ROUTER_URL: 'ftp://x/' }, /http/], [{ LLM_ROUTER_URL: 'http://u:p@h/' }, /user info/],
    [{ LLM_ROUTER_TIMEOUT: '0' }, /LLM_ROUTER_TIMEOUT/], [{ LLM_ROUTER_USERNAME: 'admin' }, /together/]]) {
    const r = spawnSync(mcpBin, [], { env: { PATH: process.env.PATH, ...env }, input: '', timeout: 5000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), re);
    assert.equal(r.stdout.length, 0);
  }
  const h = spawnSync(mcpBin, ['--help'], { timeout: 5000 });
  assert.equal(h.status, 0);
  for (const v of ['LLM_ROUTER_URL', 'LLM_ROUTER_API_KEY', 'LLM_ROUTER_USERNAME', 'LLM_ROUTER_PASSWORD', 'LLM_ROUTER_JWT_TOKEN', 'LLM_ROUTER_TIMEOUT'])
    assert.ok(h.stdout.toString().includes(v), v);
});

test('no secret on stderr or in results: API key, password, session token', async () => {
  const env = await mcpWithRouter({ env: { LLM_ROUTER_MCP_LOG_LEVEL: 'debug' } });
  try {
    const c = env.mcp.client;
    assert.equal((await c.callTool({ name: 'list_nodes', arguments: {} })).isError, false);
    const bad = await c.callTool({ name: 'chat_completion', arguments: { model: 'nope', messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(bad.isError, true);
    // the session token the server got: the same login from outside gives another, so look for any
    const me = await c.callTool({ name: 'router_request', arguments: { method: 'GET', path: '/api/auth/me' } });
    assert.equal(me.isError, false);
    const echoed = await c.callTool({ name: 'router_request', arguments: { method: 'POST', path: '/api/auth/login', body: { username: 'admin', password: ADMIN_PASSWORD } } });
    const all = env.mcp.stderr() + JSON.stringify([me, echoed, bad]);
    assert.ok(!all.includes(env.ctx.apiKey), 'API key');
    assert.ok(!all.includes(ADMIN_PASSWORD), 'password');
    const tok = echoed.structuredContent?.data?.token;
    assert.equal(echoed.isError, false);
    assert.equal(tok, '****'); // a token member is masked whole
    assert.match(env.mcp.stderr(), /sk_\*\*\*\*/); // the start-up line names the key masked
  } finally { await env.close(); }
});
