// llm-router-mcp's resources through the official MCP SDK client: the list,
// each read with its mimeType, the OpenAPI document against the router's
// route table (routes.c parsed here, independently of the generator, and the
// generator's own list) and against a live router, the configuration against
// the binaries' option tables, the guides against the server's tools, and an
// unknown URI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { buildDir, repoRoot, http } from './lib/harness.mjs';
import { mcpWithRouter } from './lib/mcpkit.mjs';

const EXPECTED = {
  'llm-router://api/openapi': 'application/json',
  'llm-router://config': 'text/markdown',
  'llm-router://guide/overview': 'text/markdown',
  'llm-router://guide/openai-compatible': 'text/markdown',
  'llm-router://guide/node-management': 'text/markdown',
  'llm-router://guide/model-management': 'text/markdown',
  'llm-router://guide/dashboard': 'text/markdown',
};

// routes.c's X(...) rows, read from the source (not from the generator)
function sourceRoutes() {
  const src = readFileSync(path.join(repoRoot, 'router/src/api/routes.c'), 'utf8');
  const rows = [...src.matchAll(/^\s*X\("([A-Z]+)", "([^"]+)", (\w+), RT_POLICY_(\w+), [^)]*\)/gm)];
  assert.ok(rows.length > 40, `parsed ${rows.length} routes from routes.c`);
  return rows.map((m) => ({ method: m[1], path: m[2], policy: m[4].toLowerCase() }));
}

// the generator's own list (gen/mcp_routes.txt): "METHOD PATH POLICY"
function generatedRoutes() {
  return readFileSync(path.join(buildDir, 'mcp/gen/mcp_routes.txt'), 'utf8').trim().split('\n')
    .map((l) => { const [method, p, policy] = l.split(' '); return { method, path: p, policy }; });
}

const toOpenApi = (p) => p.replace(/\/[:*]([A-Za-z_][A-Za-z0-9_]*)/g, '/{$1}');
const POLICY_NAME = { api_or_node: 'api_key_or_node' }; // rt_policy_name's spelling

let env; let client; let openapi;

before(async () => {
  env = await mcpWithRouter();
  client = env.mcp.client;
});
after(async () => { await env?.close(); });

test('resources/list has every URI with name, title, description and mimeType', async () => {
  const { resources } = await client.listResources();
  const byUri = Object.fromEntries(resources.map((r) => [r.uri, r]));
  assert.deepEqual(Object.keys(byUri).sort(), Object.keys(EXPECTED).sort());
  for (const [uri, mime] of Object.entries(EXPECTED)) {
    const r = byUri[uri];
    assert.equal(r.mimeType, mime, uri);
    assert.ok(r.name && r.title && r.description, `${uri} has name, title, description`);
  }
  // the seed's names are kept
  assert.equal(byUri['llm-router://api/openapi'].name, 'llm-router-openapi');
  assert.equal(byUri['llm-router://guide/overview'].name, 'llm-router-api-overview');
});

test('every resource reads with its URI, mimeType and a text', async () => {
  for (const [uri, mime] of Object.entries(EXPECTED)) {
    const r = await client.readResource({ uri });
    assert.equal(r.contents.length, 1, uri);
    const c = r.contents[0];
    assert.equal(c.uri, uri);
    assert.equal(c.mimeType, mime, uri);
    assert.equal(typeof c.text, 'string');
    assert.ok(c.text.length > 500, `${uri}: ${c.text.length} characters`);
    if (mime === 'text/markdown') assert.match(c.text, /^# \S/, `${uri} starts with a heading`);
    if (uri.endsWith('/openapi')) openapi = JSON.parse(c.text);
  }
});

test('the OpenAPI document has exactly the routes of routes.c, with their policies', async () => {
  openapi ??= JSON.parse((await client.readResource({ uri: 'llm-router://api/openapi' })).contents[0].text);
  assert.match(openapi.openapi, /^3\.1\.\d+$/);
  assert.ok(openapi.info?.title && openapi.info?.version);
  const src = sourceRoutes();
  assert.deepEqual(generatedRoutes().map((r) => `${r.method} ${r.path}`), src.map((r) => `${r.method} ${r.path}`),
    'the generator listed routes.c as compiled');

  const ops = [];
  for (const [p, item] of Object.entries(openapi.paths)) {
    for (const [m, op] of Object.entries(item)) ops.push({ key: `${m.toUpperCase()} ${p}`, p, op });
  }
  assert.deepEqual(ops.map((o) => o.key).sort(), src.map((r) => `${r.method} ${toOpenApi(r.path)}`).sort());

  const ids = new Set();
  for (const r of src) {
    const op = openapi.paths[toOpenApi(r.path)][r.method.toLowerCase()];
    const where = `${r.method} ${r.path}`;
    assert.equal(op['x-llm-router-policy'], POLICY_NAME[r.policy] ?? r.policy, where);
    assert.ok(op.summary && op.description, `${where} has a summary and who may call it`);
    assert.ok(op.responses && Object.keys(op.responses).length, `${where} has responses`);
    assert.ok(Array.isArray(op.security), `${where} has a security requirement`);
    for (const s of op.security) for (const name of Object.keys(s)) {
      assert.ok(openapi.components.securitySchemes[name], `${where}: scheme ${name} is declared`);
    }
    assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is unique`);
    ids.add(op.operationId);
    // every {param} of the path is declared as a required path parameter
    const names = [...toOpenApi(r.path).matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const declared = (op.parameters ?? []).filter((x) => x.in === 'path').map((x) => x.name);
    assert.deepEqual(declared, names, `${where} path parameters`);
    for (const x of op.parameters ?? []) if (x.in === 'path') assert.equal(x.required, true);
  }
  // the examples that matter to an assistant are there and are bodies of the right shape
  const chat = openapi.paths['/v1/chat/completions'].post.requestBody.content['application/json'].example;
  assert.ok(chat.model && Array.isArray(chat.messages));
  const reg = openapi.paths['/api/models/register'].post.requestBody.content['application/json'].example;
  assert.ok(reg.repo);
  assert.equal(openapi.paths['/api/nodes/{id}/settings'].put['x-llm-router-policy'], 'admin');
  assert.equal(openapi.paths['/api/nodes'].get['x-llm-router-policy'], 'viewer');
});

test('the live router answers every documented route (none is unrouted)', async () => {
  openapi ??= JSON.parse((await client.readResource({ uri: 'llm-router://api/openapi' })).contents[0].text);
  const base = env.ctx.router.url;
  // the router's own answer to a route it does not have (http_server.c):
  // 404 "No route for ...", or 405 for a known path with another method
  const unrouted = (r) => (r.status === 404 && /^No route for /.test(r.json?.error?.message ?? '')) || r.status === 405;
  assert.ok(unrouted(await http('GET', `${base}/api/no-such-route`)), 'control: an unknown path');
  assert.ok(unrouted(await http('DELETE', `${base}/api/nodes/metrics/x`)), 'control: an unknown deeper path');
  assert.ok(unrouted(await http('PATCH', `${base}/api/nodes`)), 'control: a known path, another method');
  let n = 0;
  for (const [p, item] of Object.entries(openapi.paths)) {
    for (const [m, op] of Object.entries(item)) {
      const url = base + p.replace(/\{(\w+)\}/g, (_, name) =>
        op.parameters.find((x) => x.name === name)['x-llm-router-wildcard'] ? 'org/model.gguf' : 'x');
      const body = m === 'get' || m === 'head' ? undefined : {};
      // no credentials: a matched route answers its policy's 401 (or, when
      // open, its handler's own answer); an unmatched one the router's 404
      const r = await http(m.toUpperCase(), url, { body, headers: { authorization: '' }, timeoutMs: 10000 });
      const where = `${m.toUpperCase()} ${p} -> ${r.status} ${r.text.slice(0, 200)}`;
      assert.ok(!unrouted(r), where);
      if (op['x-llm-router-policy'] !== 'open') assert.equal(r.status, 401, where);
      n++;
    }
  }
  assert.equal(n, sourceRoutes().length);
});

test('the configuration resource lists every option of the three programs, no secret value', async () => {
  const text = (await client.readResource({ uri: 'llm-router://config' })).contents[0].text;
  for (const bin of ['router/llm-router', 'node/llm-node']) {
    const md = execFileSync(path.join(buildDir, bin), ['--help-markdown'], { encoding: 'utf8' });
    const vars = [...md.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    assert.ok(vars.length > 20, `${bin}: ${vars.length} options`);
    for (const v of vars) assert.ok(text.includes(`\`${v}\``), `${bin}'s ${v} is in llm-router://config`);
    // the same rows, not just the names
    for (const row of md.trim().split('\n').slice(2)) assert.ok(text.includes(row), `row ${row}`);
  }
  for (const v of ['LLM_ROUTER_URL', 'LLM_ROUTER_API_KEY', 'LLM_ROUTER_JWT_TOKEN', 'LLM_ROUTER_TIMEOUT',
    'LLM_ROUTER_USERNAME', 'LLM_ROUTER_PASSWORD']) {
    assert.match(text.split('## llm-router\n')[0], new RegExp(`\`${v}\``), `the MCP server's ${v}`);
  }
  assert.ok(!text.includes(env.ctx.apiKey), 'the configured API key is not in the text');
  assert.ok(!text.includes('admin-test-password'), 'the configured password is not in the text');
});

test('the guides name only tools that exist, and the overview names every tool', async () => {
  const { tools } = await client.listTools();
  const names = new Set(tools.map((t) => t.name));
  const overview = (await client.readResource({ uri: 'llm-router://guide/overview' })).contents[0].text;
  const table = overview.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Area'));
  const inTable = new Set(table.flatMap((l) => [...l.matchAll(/`([a-z_]+)`/g)].map((m) => m[1])));
  for (const t of inTable) assert.ok(names.has(t), `the overview's \`${t}\` is a tool`);
  for (const t of names) assert.ok(inTable.has(t), `tool ${t} is in the overview's table`);
  // every snake_case word in backticks in any guide is a tool, an argument
  // of a tool, or one of the router's response fields and error codes named
  // here: a renamed or misspelt tool fails
  const args = new Set(tools.flatMap((t) => Object.keys(t.inputSchema?.properties ?? {})));
  const fields = new Set(['ready_nodes', 'machine_name', 'custom_name', 'bytes_done', 'bytes_total', 'speed_bps',
    'eta_s', 'finish_reason', 'not_found', 'model_not_found', 'model_exists', 'gated_repository',
    'insufficient_storage', 'invalid_request_error', 'api_key', 'node_id', 'api_key_id', 'per_page', 'max_tokens',
    'top_p', 'timeout_s', 'router_error', 'router_unreachable']);
  for (const uri of Object.keys(EXPECTED).filter((u) => u.includes('/guide/'))) {
    const text = (await client.readResource({ uri })).contents[0].text;
    for (const [, w] of text.matchAll(/`([a-z][a-z0-9]*_[a-z0-9_]*)`/g)) {
      assert.ok(names.has(w) || args.has(w) || fields.has(w), `${uri}: \`${w}\` is neither a tool nor an argument`);
    }
  }
});

test('an unknown URI is resource-not-found (-32002) and the server stays up', async () => {
  for (const uri of ['llm-router://nope', 'llm-router://guide/', 'llm-router://api/openapi/', 'file:///etc/passwd', '']) {
    await assert.rejects(client.readResource({ uri }), (e) => {
      assert.ok(e instanceof McpError, String(e));
      assert.equal(e.code, -32002, `${uri}: ${e.message}`);
      return true;
    });
  }
  await client.ping();
  const r = await client.readResource({ uri: 'llm-router://guide/dashboard' });
  assert.equal(r.contents[0].uri, 'llm-router://guide/dashboard');
});
