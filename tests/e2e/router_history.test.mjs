// The request history end to end: the real router in front of a real
// llm-node (tiny model) and fake nodes, driven by the official openai SDK.
// Every request appears once with its fields and exact token counts; a
// stream's stored body is the text the client assembled; caps, truncation,
// every filter and their combinations, paging, CSV (parsed back by Python's
// csv module) and JSONL exports; bodies off; history off; a held writer
// (requests stay fast, drops are counted); pruning at start and a 200k-row
// export under an RSS bound.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { buildDir, startNode, makeModel, tempDir, waitFor, http, startRouter } from './lib/harness.mjs';
import { routerWithKey, fakeNode, JOIN } from './lib/routerkit.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const noNode = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
const H = '/api/dashboard/request-responses';

const list = async (ctx, qs = '') => http('GET', `${ctx.router.url}${H}${qs ? '?' + qs : ''}`, { headers: ctx.admin });
const detail = async (ctx, id) => http('GET', `${ctx.router.url}${H}/${encodeURIComponent(id)}`, { headers: ctx.admin });
/** Waits for the row of id (the writer is asynchronous) and returns it. */
async function row(ctx, id) {
  let r;
  await waitFor(async () => { r = await detail(ctx, id); return r.status === 200; }, { what: `history row ${id}`, timeoutMs: 10000 });
  return r.json;
}
async function allRows(ctx, qs = '') {
  const out = [];
  for (let page = 1; ; page++) {
    const r = await list(ctx, `per_page=500&page=${page}${qs ? '&' + qs : ''}`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.records);
    if (page >= r.json.total_pages) return out;
  }
}
function rss(pid, field = 'VmHWM') {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}
const ids = (rows) => rows.map((r) => r.id);
const sorted = (a) => [...a].sort();
/** Parses CSV with Python's csv module (RFC 4180), to an array of objects. */
function parseCsv(text) {
  const py = 'import csv,io,json,sys\nr=list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))\nprint(json.dumps([dict(zip(r[0],x)) for x in r[1:]]))';
  return JSON.parse(execFileSync('python3', ['-c', py], { input: text, maxBuffer: 256 << 20 }).toString());
}
/** Waits for the writer to have taken every row (llm_router_history_* on /metrics). */
async function metric(ctx, name) {
  const r = await http('GET', `${ctx.router.url}/metrics`, { headers: ctx.v1 });
  if (r.status !== 200) return undefined;
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(r.text);
  return m ? Number(m[1]) : undefined;
}

describe('recording against a real node and fake nodes', { skip: noNode }, () => {
  let ctx, node, model, fakes = [], keyId, key2, key2Id, openai2;
  const sent = []; // { id, model, status, key, stream, text? }

  before(async () => {
    ctx = await routerWithKey({ LLM_ROUTER_NODE_SUSPEND_SECS: '60', LLM_ROUTER_LOG_LEVEL: 'warn' });
    const file = makeModel('tiny');
    const dir = tempDir('llmr-models-');
    symlinkSync(file, path.join(dir, path.basename(file)));
    node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
    await waitFor(async () => {
      const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
      model = m.json?.data?.find((d) => !d.id.startsWith('fake') && !d.id.endsWith('-model'))?.id;
      return model && m.json.data.find((d) => d.id === model).ready_nodes > 0;
    }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
    fakes.push(await fakeNode(ctx.router, { name: 'bad', models: ['retry-model'] }));
    fakes.push(await fakeNode(ctx.router, { name: 'good', models: ['retry-model', 'fake-model'] }));
    fakes.push(await fakeNode(ctx.router, { name: 'dies', models: ['die-model'], chunks: 5, chunkGapMs: 20 }));
    fakes[0].fail500 = Infinity;
    fakes[2].killMidStream = true;
    const keys = await http('GET', `${ctx.router.url}/api/api-keys`, { headers: ctx.admin });
    keyId = (keys.json.api_keys ?? keys.json.data ?? keys.json).find((k) => k.name === 'e2e').id;
    const k2 = await http('POST', `${ctx.router.url}/api/api-keys`, { body: { name: 'second' }, headers: ctx.admin });
    key2 = k2.json.key;
    key2Id = k2.json.id;
    openai2 = new OpenAI({ apiKey: key2, baseURL: `${ctx.router.url}/v1`, maxRetries: 0, timeout: 30000 });
  });
  after(async () => {
    for (const f of fakes) await f.stop().catch(() => {});
    await node?.stop();
    await ctx?.router.stop();
  });

  const nodeId = async () => (await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json.find((n) => n.models?.includes?.(model) || n.loaded_models?.includes?.(model) || n.machine_name !== 'fake')?.id;

  test('non-streaming chat: one row with the fields, the client, the bodies and exact tokens', async () => {
    const t0 = Date.now();
    const messages = [{ role: 'user', content: 'hello zebra42' }];
    const { data: r, response } = await ctx.openai.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 }).withResponse();
    const id = response.headers.get('x-request-id');
    assert.ok(id);
    sent.push({ id, model, status: 200, key: keyId, stream: false });
    const h = await row(ctx, id);
    assert.equal(h.id, id);
    assert.equal(h.model, model);
    assert.equal(h.endpoint, '/v1/chat/completions');
    assert.equal(h.status, 'success');
    assert.equal(h.status_code, 200);
    assert.equal(h.attempts, 1);
    assert.equal(h.stream, false);
    assert.equal(h.error, null);
    assert.ok(h.node_id && h.node_name);
    assert.deepEqual(h.client, { kind: 'api_key', id: keyId, name: 'e2e', address: '127.0.0.1' });
    assert.deepEqual(h.tokens, { prompt: r.usage.prompt_tokens, completion: r.usage.completion_tokens, total: r.usage.total_tokens });
    const ts = Date.parse(h.timestamp);
    assert.ok(ts >= t0 - 1000 && ts <= Date.now() + 1000, h.timestamp);
    assert.ok(h.duration_ms > 0 && h.ttft_ms >= 0 && h.ttft_ms <= h.duration_ms, `${h.duration_ms} ${h.ttft_ms}`);
    assert.deepEqual(h.request_body.messages, messages);
    assert.equal(h.response_body.choices[0].message.content, r.choices[0].message.content);
    assert.deepEqual(h.response_body.usage, r.usage);
    assert.equal(h.request_truncated, false);
    assert.equal(h.response_truncated, false);
    assert.ok(h.request_body_bytes > 0 && h.response_body_bytes > 0);
  });

  async function streamed(opts, headers) {
    const s = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'count' }], max_tokens: 12, temperature: 0, stream: true, ...opts }, { headers });
    let text = '', usage = null, finish = null, role = null;
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      const ch = c.choices?.[0];
      if (!ch) continue;
      text += ch.delta?.content ?? '';
      role ??= ch.delta?.role ?? null;
      finish = ch.finish_reason ?? finish;
    }
    return { text, usage, finish, role };
  }

  let usageRef;
  test('streaming with include_usage: the stored body is the assembled text, tokens from the usage event', async () => {
    const got = await streamed({ stream_options: { include_usage: true } }, { 'X-Request-Id': 'e2e-stream-usage' });
    sent.push({ id: 'e2e-stream-usage', model, status: 200, key: keyId, stream: true });
    assert.ok(got.usage);
    usageRef = got.usage;
    const h = await row(ctx, 'e2e-stream-usage');
    assert.equal(h.stream, true);
    assert.equal(h.response_body.object, 'chat.completion');
    assert.equal(h.response_body.choices[0].message.content, got.text);
    assert.equal(h.response_body.choices[0].message.role, 'assistant');
    assert.equal(h.response_body.choices[0].finish_reason, got.finish);
    assert.deepEqual(h.response_body.usage, got.usage);
    assert.deepEqual(h.tokens, { prompt: got.usage.prompt_tokens, completion: got.usage.completion_tokens, total: got.usage.total_tokens });
    assert.ok(h.ttft_ms > 0 && h.ttft_ms <= h.duration_ms);
  });

  test('streaming without include_usage: the stored body is the assembled text', async () => {
    const got = await streamed({}, { 'X-Request-Id': 'e2e-stream-plain' });
    sent.push({ id: 'e2e-stream-plain', model, status: 200, key: keyId, stream: true });
    assert.equal(got.usage, null);
    const h = await row(ctx, 'e2e-stream-plain');
    assert.equal(h.response_body.choices[0].message.content, got.text);
    assert.equal(h.response_body.choices[0].finish_reason, got.finish);
    assert.equal(h.response_body.usage, undefined, 'no usage event went to the client, none is invented');
  });

  // Needs the node's X-LLM-Usage trailer (llm-node): the same greedy request
  // as the include_usage one, so the counts must be the same.
  test('streaming without include_usage: exact tokens from the node\'s usage trailer', async () => {
    const h = await row(ctx, 'e2e-stream-plain');
    assert.deepEqual(h.tokens, { prompt: usageRef.prompt_tokens, completion: usageRef.completion_tokens, total: usageRef.total_tokens });
  });

  test('text completions stream: choices[].text reassembled', async () => {
    const s = await ctx.openai.completions.create({ model, prompt: 'once', max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } }, { headers: { 'X-Request-Id': 'e2e-text' } });
    let text = '', usage;
    for await (const c of s) { text += c.choices?.[0]?.text ?? ''; usage = c.usage ?? usage; }
    sent.push({ id: 'e2e-text', model, status: 200, key: keyId, stream: true });
    const h = await row(ctx, 'e2e-text');
    assert.equal(h.endpoint, '/v1/completions');
    assert.equal(h.response_body.object, 'text_completion');
    assert.equal(h.response_body.choices[0].text, text);
    assert.equal(h.tokens.completion, usage.completion_tokens);
  });

  test('an unknown model: a 404 row without a node', async () => {
    await assert.rejects(ctx.openai.chat.completions.create({ model: 'no-such-model', messages: [] }, { headers: { 'X-Request-Id': 'e2e-404' } }), (e) => e.status === 404);
    sent.push({ id: 'e2e-404', model: 'no-such-model', status: 404, key: keyId, stream: false });
    const h = await row(ctx, 'e2e-404');
    assert.equal(h.status, 'error');
    assert.equal(h.status_code, 404);
    assert.equal(h.error.type, 'model_not_found');
    assert.equal(h.node_id, null);
    assert.equal(h.attempts, 0);
    assert.deepEqual(h.tokens, { prompt: null, completion: null, total: null });
  });

  test('a retry: attempts 2, the node that answered, its answer only', async () => {
    const [bad, good] = fakes;
    let id;
    for (let i = 0; i < 10 && !id; i++) {
      const before = bad.requests;
      const rid = `e2e-retry-${i}`;
      const r = await ctx.openai.chat.completions.create({ model: 'retry-model', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Request-Id': rid } });
      assert.equal(r.node, 'good');
      sent.push({ id: rid, model: 'retry-model', status: 200, key: keyId, stream: false });
      const h = await row(ctx, rid);
      assert.equal(h.node_id, good.nodeId);
      assert.equal(h.node_name, 'good');
      assert.deepEqual(h.tokens, { prompt: 1, completion: 3, total: 4 });
      assert.equal(h.response_body.node, 'good');
      if (bad.requests > before) { assert.equal(h.attempts, 2); id = rid; } else assert.equal(h.attempts, 1);
    }
    assert.ok(id, 'the failing node was tried once in ten requests');
  });

  test('a node failing mid-stream: recorded as a broken stream with what the client got', async () => {
    const s = await ctx.openai.chat.completions.create({ model: 'die-model', messages: [], stream: true }, { headers: { 'X-Request-Id': 'e2e-broken' } });
    let text = '';
    await assert.rejects((async () => { for await (const c of s) text += c.choices?.[0]?.delta?.content ?? ''; })());
    sent.push({ id: 'e2e-broken', model: 'die-model', status: 200, key: keyId, stream: true });
    assert.match(text, /^tok0 (tok1 )?$/); // the second chunk may die with the connection
    const h = await row(ctx, 'e2e-broken');
    assert.equal(h.status_code, 200);
    assert.equal(h.stream, true);
    assert.equal(h.error.type, 'stream_error');
    assert.ok(h.error.message);
    assert.equal(h.response_body.choices[0].message.content, text);
    assert.equal(h.response_body.choices[0].finish_reason, null);
  });

  test('a body with commas, quotes and CR LF; the second key', async () => {
    const raw = '{\r\n  "model": "fake-model",\r\n  "messages": [{"role": "user", "content": "a, \\"quoted\\", b"}]\n}';
    const r = await http('POST', `${ctx.router.url}/v1/chat/completions`, { body: raw, headers: { authorization: `Bearer ${key2}`, 'x-request-id': 'e2e-csv' } });
    assert.equal(r.status, 200, r.text);
    sent.push({ id: 'e2e-csv', model: 'fake-model', status: 200, key: key2Id, stream: false, raw });
    for (let i = 0; i < 3; i++) {
      await openai2.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: `k2 ${i}` }] }, { headers: { 'X-Request-Id': `e2e-k2-${i}` } });
      sent.push({ id: `e2e-k2-${i}`, model: 'fake-model', status: 200, key: key2Id, stream: false });
    }
    await assert.rejects(openai2.chat.completions.create({ model: 'nope-model', messages: [] }, { headers: { 'X-Request-Id': 'e2e-k2-404' } }));
    sent.push({ id: 'e2e-k2-404', model: 'nope-model', status: 404, key: key2Id, stream: false });
    const h = await row(ctx, 'e2e-csv');
    assert.equal(h.request_body.messages[0].content, 'a, "quoted", b');
    assert.equal(h.client.id, key2Id);
    await row(ctx, 'e2e-k2-404');
  });

  test('each request appears exactly once, newest first', async () => {
    const rows = await allRows(ctx);
    assert.deepEqual(sorted(ids(rows)), sorted(sent.map((s) => s.id)));
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].timestamp >= rows[i].timestamp);
    const r = await list(ctx);
    assert.equal(r.json.total, sent.length);
    assert.equal(r.json.enabled, true);
    assert.equal(r.json.records[0].request_body, undefined, 'the list carries no bodies');
  });

  test('every filter and their combinations match the table of requests', async () => {
    const all = await allRows(ctx);
    const byId = new Map(all.map((r) => [r.id, r]));
    const good = fakes[1].nodeId;
    const mid = all[Math.floor(all.length / 2)].timestamp;
    const cases = [
      ['model=fake-model', (s) => s.model === 'fake-model'],
      [`model=${encodeURIComponent(model)}`, (s) => s.model === model],
      [`node_id=${good}`, (s) => byId.get(s.id).node_id === good],
      ['status=success', (s) => s.status < 400],
      ['status=error', (s) => s.status >= 400],
      ['status=404', (s) => s.status === 404],
      ['status=200', (s) => s.status === 200],
      [`api_key_id=${key2Id}`, (s) => s.key === key2Id],
      [`api_key_id=${keyId}`, (s) => s.key === keyId],
      [`from=${encodeURIComponent(mid)}`, (s) => byId.get(s.id).timestamp >= mid],
      [`to=${encodeURIComponent(mid)}`, (s) => byId.get(s.id).timestamp <= mid],
      [`from=${Date.parse(mid)}`, (s) => byId.get(s.id).timestamp >= mid],
      ['q=zebra42', (s) => s === sent[0]],
      [`api_key_id=${key2Id}&status=error`, (s) => s.key === key2Id && s.status >= 400],
      [`api_key_id=${key2Id}&model=fake-model&node_id=${good}`, (s) => s.key === key2Id && s.model === 'fake-model'],
      [`model=retry-model&status=success&to=${encodeURIComponent(mid)}`, (s) => s.model === 'retry-model' && byId.get(s.id).timestamp <= mid],
      [`status=error&from=${encodeURIComponent(mid)}`, (s) => s.status >= 400 && byId.get(s.id).timestamp >= mid],
      ['model=none-such', () => false],
    ];
    for (const [qs, pred] of cases) {
      const got = await allRows(ctx, qs);
      assert.deepEqual(sorted(ids(got)), sorted(sent.filter(pred).map((s) => s.id)), qs);
      assert.equal((await list(ctx, qs)).json.total, got.length, qs);
    }
  });

  test('paging and total; per_page capped; bad values are 400 naming the parameter', async () => {
    const all = ids(await allRows(ctx));
    const pages = [];
    let total_pages;
    for (let p = 1; p <= Math.ceil(all.length / 3); p++) {
      const r = await list(ctx, `per_page=3&page=${p}`);
      assert.equal(r.json.total, all.length);
      assert.equal(r.json.page, p);
      assert.equal(r.json.per_page, 3);
      total_pages = r.json.total_pages;
      pages.push(...ids(r.json.records));
    }
    assert.equal(total_pages, Math.ceil(all.length / 3));
    assert.deepEqual(pages, all);
    assert.deepEqual((await list(ctx, `per_page=3&page=${total_pages + 1}`)).json.records, []);
    assert.equal((await list(ctx, 'per_page=100000')).json.per_page, 500);
    assert.equal((await list(ctx)).json.per_page, 50);
    for (const [qs, param] of [['page=0', 'page'], ['page=x', 'page'], ['per_page=0', 'per_page'], ['per_page=-1', 'per_page'],
      ['status=bogus', 'status'], ['status=99', 'status'], ['from=yesterday', 'from'], ['to=2024-13-01T00:00:00Z', 'to'],
      [`model=${'m'.repeat(300)}`, 'model']]) {
      const r = await list(ctx, qs);
      assert.equal(r.status, 400, qs);
      assert.equal(r.json.error.param, param, qs);
      assert.equal(r.json.error.type, 'invalid_request_error');
    }
    const e = await http('GET', `${ctx.router.url}${H}/export?format=xml`, { headers: ctx.admin });
    assert.equal(e.status, 400);
    assert.equal(e.json.error.param, 'format');
    const nf = await detail(ctx, 'no-such-id');
    assert.equal(nf.status, 404);
    assert.equal(nf.json.error.code, 'not_found');
  });

  test('CSV export parsed back by a real CSV parser; JSONL; filters apply', async () => {
    const all = await allRows(ctx);
    const r = await fetch(`${ctx.router.url}${H}/export`, { headers: ctx.admin });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/csv/);
    assert.match(r.headers.get('content-disposition'), /^attachment; filename="request-history-\d{4}-\d{2}-\d{2}\.csv"$/);
    const rows = parseCsv(await r.text());
    assert.deepEqual(rows.map((x) => x.id), ids(all));
    const csvRow = rows.find((x) => x.id === 'e2e-csv');
    assert.equal(csvRow.request_body, sent.find((s) => s.id === 'e2e-csv').raw, 'commas, quotes, CR LF survive');
    assert.equal(csvRow.status, 'success');
    assert.equal(csvRow.client_id, key2Id);
    const first = rows.find((x) => x.id === sent[0].id);
    const h = await row(ctx, sent[0].id);
    assert.equal(Number(first.total_tokens), h.tokens.total);
    assert.equal(first.stream, 'false');
    assert.deepEqual(JSON.parse(first.response_body), h.response_body);
    const f = parseCsv(await (await fetch(`${ctx.router.url}${H}/export?format=csv&status=error`, { headers: ctx.admin })).text());
    assert.deepEqual(sorted(f.map((x) => x.id)), sorted(sent.filter((s) => s.status >= 400).map((s) => s.id)));
    const j = await fetch(`${ctx.router.url}${H}/export?format=jsonl&api_key_id=${key2Id}`, { headers: ctx.admin });
    assert.match(j.headers.get('content-disposition'), /\.jsonl"$/);
    const lines = (await j.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(sorted(lines.map((l) => l.id)), sorted(sent.filter((s) => s.key === key2Id).map((s) => s.id)));
    assert.equal(lines.find((l) => l.id === 'e2e-csv').request_body.model, 'fake-model');
  });
});

describe('caps, bodies off, history off', () => {
  test('small LLM_ROUTER_HISTORY_MAX_BODY_BYTES: both bodies cut and flagged', async () => {
    const ctx = await routerWithKey({ LLM_ROUTER_HISTORY_MAX_BODY_BYTES: '256' });
    const n = await fakeNode(ctx.router, { chunks: 80, chunkGapMs: 1 });
    try {
      const long = 'y'.repeat(1000);
      const r = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: long }] }, { headers: { 'X-Request-Id': 'cap-1' } });
      assert.ok(r.echo.length > 256);
      const h = await row(ctx, 'cap-1');
      assert.equal(h.request_truncated, true);
      assert.equal(h.request_body_bytes, 256);
      assert.equal(h.response_truncated, true);
      assert.equal(h.response_body_bytes, 256);
      assert.equal(typeof h.request_body, 'string', 'a cut body is shown as text');
      assert.deepEqual(h.tokens, { prompt: 1, completion: 3, total: 4 }, 'usage read past the cap');
      const s = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [], stream: true }, { headers: { 'X-Request-Id': 'cap-2' } });
      let text = '';
      for await (const c of s) text += c.choices?.[0]?.delta?.content ?? '';
      assert.ok(text.length > 256);
      const hs = await row(ctx, 'cap-2');
      assert.equal(hs.response_truncated, true);
      assert.ok(hs.response_body_bytes <= 256);
      const small = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [] }, { headers: { 'X-Request-Id': 'cap-3' } });
      assert.ok(small);
      const h3 = await row(ctx, 'cap-3');
      assert.equal(h3.request_truncated, false);
    } finally { await n.stop(); await ctx.router.stop(); }
  });

  test('LLM_ROUTER_HISTORY_BODIES=0: metadata and tokens, no body', async () => {
    const ctx = await routerWithKey({ LLM_ROUTER_HISTORY_BODIES: '0' });
    const n = await fakeNode(ctx.router, {});
    try {
      await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'private' }] }, { headers: { 'X-Request-Id': 'nb-1' } });
      const h = await row(ctx, 'nb-1');
      assert.equal(h.request_body, null);
      assert.equal(h.response_body, null);
      assert.equal(h.request_body_bytes, 0);
      assert.equal(h.response_body_bytes, 0);
      assert.deepEqual(h.tokens, { prompt: 1, completion: 3, total: 4 });
      assert.equal(h.client.name, 'e2e');
      assert.equal((await list(ctx, 'q=private')).json.total, 0);
      const csv = parseCsv(await (await fetch(`${ctx.router.url}${H}/export`, { headers: ctx.admin })).text());
      assert.equal(csv[0].request_body, '');
      const raw = execFileSync('python3', ['-c', 'import sqlite3,sys;c=sqlite3.connect(sys.argv[1]);print(c.execute("select count(*) from bodies").fetchone()[0])', path.join(ctx.router.dataDir, 'history.db')]).toString().trim();
      assert.equal(raw, '0', 'no body row in the file');
    } finally { await n.stop(); await ctx.router.stop(); }
  });

  test('LLM_ROUTER_HISTORY=0: /v1 works, nothing is listed', async () => {
    const ctx = await routerWithKey({ LLM_ROUTER_HISTORY: '0' });
    const n = await fakeNode(ctx.router, {});
    try {
      const r = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [] }, { headers: { 'X-Request-Id': 'off-1' } });
      assert.equal(r.object, 'chat.completion');
      const l = await list(ctx);
      assert.equal(l.status, 200);
      assert.deepEqual(l.json.records, []);
      assert.equal(l.json.total, 0);
      assert.equal(l.json.enabled, false);
      assert.equal((await detail(ctx, 'off-1')).status, 404);
      const e = await fetch(`${ctx.router.url}${H}/export`, { headers: ctx.admin });
      assert.equal(e.status, 200);
      assert.deepEqual(parseCsv(await e.text()), []);
      assert.ok(!existsSync(path.join(ctx.router.dataDir, 'history.db')));
    } finally { await n.stop(); await ctx.router.stop(); }
  });
});

describe('a held writer', () => {
  test('requests stay fast while the history file is locked; rows beyond the queue are dropped and counted', async () => {
    const ctx = await routerWithKey({ LLM_ROUTER_HISTORY_QUEUE: '16', LLM_ROUTER_LOG_LEVEL: 'warn' });
    const n = await fakeNode(ctx.router, {});
    const db = path.join(ctx.router.dataDir, 'history.db');
    // holds an exclusive lock for 8 s: longer than the store's 5 s busy wait, so
    // the batch the writer holds fails and is dropped too, and longer than the
    // 60 requests take even on a loaded machine
    const py = 'import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute("BEGIN EXCLUSIVE")\nprint("locked",flush=True)\ntime.sleep(8)\nc.execute("ROLLBACK")\n';
    const holder = spawn('python3', ['-c', py, db], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((res, rej) => { holder.stdout.once('data', res); holder.once('exit', rej); });
      const N = 60;
      const times = [];
      const t0 = Date.now();
      await Promise.all(Array.from({ length: 4 }, async (_, w) => {
        for (let i = w; i < N; i += 4) {
          const s = Date.now();
          await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [] }, { headers: { 'X-Request-Id': `held-${i}` } });
          times.push(Date.now() - s);
        }
      }));
      const wall = Date.now() - t0;
      assert.ok(holder.exitCode === null, 'the lock was still held while every request completed');
      const worst = Math.max(...times);
      console.log(`held writer: ${N} requests in ${wall} ms, worst ${worst} ms`);
      assert.ok(worst < 1000, `worst request ${worst} ms`);
      await new Promise((r) => holder.once('exit', r));
      let dropped, written;
      await waitFor(async () => {
        dropped = await metric(ctx, 'llm_router_history_dropped_total');
        written = await metric(ctx, 'llm_router_history_written_total');
        return dropped !== undefined && written !== undefined && dropped + written >= N;
      }, { what: 'every row written or dropped', timeoutMs: 30000 });
      console.log(`held writer: dropped ${dropped}, written ${written}`);
      // at most one batch in the writer's hands (popped before it blocked,
      // up to the queue's size) and a full queue survive the lock
      assert.ok(dropped >= N - 2 * 16 - 4, `dropped ${dropped}`);
      assert.equal(dropped + written, N);
      assert.equal((await list(ctx)).json.total, written);
      assert.match(ctx.router.output(), /history queue full \(16 rows\): rows are being dropped/);
    } finally { holder.kill(); await n.stop(); await ctx.router.stop(); }
  });
});

describe('retention and a 200k-row export', () => {
  test('old rows pruned at start; 200k rows exported with bounded memory', { timeout: 300000 }, async () => {
    const dataDir = tempDir('llmr-router-');
    // the router makes the file with its schema, then stops
    let r = await startRouter({ LLM_ROUTER_DATA_DIR: dataDir });
    await r.stop();
    const db = path.join(dataDir, 'history.db');
    const N = Number(process.env.LLMR_HISTORY_EXPORT_ROWS || 200000), OLD = 1000;
    const fill = `
import sqlite3,sys,time,json
c=sqlite3.connect(sys.argv[1])
fts=c.execute("select value from meta where key='fts'").fetchone()[0]==1
now=int(time.time()*1000)
def rows():
    for i in range(${N}+${OLD}):
        old=i<${OLD}
        ms=(now-8*86400000 if old else now-${N}+i)
        seq=(ms<<16)|(i&0xffff)
        req=json.dumps({"model":"m","messages":[{"role":"user","content":"row %d, with \\"quotes\\"\\nand a newline" % i}]})
        resp=json.dumps({"choices":[{"index":0,"message":{"role":"assistant","content":"answer %d " % i + "x"*200}}]})
        yield (seq,"fill-%d"%i,ms,ms+1,ms+2,"/v1/chat/completions","m","n1","node",1,"api_key","k1","key","127.0.0.1",200,0,None,None,2000,1000,1,2,3,0,len(req),0,len(resp),0,req,resp)
c.execute("begin")
for t in rows():
    c.execute("insert into requests values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",t[:28])
    c.execute("insert into bodies values (?,?,?)",(t[0],t[28],t[29]))
    if fts: c.execute("insert into bodies_fts (rowid,request_body,response_body) values (?,?,?)",(t[0],t[28],t[29]))
c.execute("commit")
print(c.execute("select count(*) from requests").fetchone()[0])
`;
    const t0 = Date.now();
    assert.equal(execFileSync('python3', ['-c', fill, db], { maxBuffer: 1 << 20 }).toString().trim(), String(N + OLD));
    console.log(`filled ${N + OLD} rows in ${Date.now() - t0} ms`);
    const ctx = await routerWithKey({ LLM_ROUTER_DATA_DIR: dataDir, LLM_ROUTER_LOG_RETENTION_DAYS: '7' });
    try {
      await waitFor(async () => (await list(ctx)).json.total === N, { what: 'the rows past retention pruned', timeoutMs: 60000 });
      assert.equal((await list(ctx, 'per_page=1')).json.records[0].id, `fill-${N + OLD - 1}`);
      const pid = ctx.router.proc.pid;
      const base = rss(pid, 'VmRSS'), hwmBefore = rss(pid, 'VmHWM');
      const t1 = Date.now();
      const res = await fetch(`${ctx.router.url}${H}/export`, { headers: ctx.admin });
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      let bytes = 0, newlines = 0, paused = false, peakWhilePaused = 0, peak = base, reads = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (++reads % 50 === 0) peak = Math.max(peak, rss(pid, 'VmRSS'));
        bytes += value.length;
        for (let i = 0; i < value.length; i++) if (value[i] === 10) newlines++;
        if (!paused && bytes > 20e6) { // a slow client: the export waits, memory does not grow
          paused = true;
          await new Promise((s) => setTimeout(s, 1500));
          peakWhilePaused = rss(pid, 'VmRSS');
        }
      }
      const secs = (Date.now() - t1) / 1000;
      const hwm = rss(pid, 'VmHWM');
      console.log(`export: ${N} rows, ${(bytes / 1e6).toFixed(1)} MB in ${secs.toFixed(1)} s (${Math.round(N / secs)} rows/s); RSS before ${(base / 1048576).toFixed(1)} MiB (VmHWM ${(hwmBefore / 1048576).toFixed(1)}), while paused ${(peakWhilePaused / 1048576).toFixed(1)} MiB, peak during ${(peak / 1048576).toFixed(1)} MiB, VmHWM ${(hwm / 1048576).toFixed(1)} MiB`);
      // the header and one line per row (the bodies hold no raw newline)
      assert.equal(newlines, 1 + N);
      // the export's own memory: a few chunks, the client's pending output and one reader's page cache
      assert.ok(peak - base < 48 * 1048576, `RSS grew by ${(peak - base) / 1048576} MiB during the export`);
      assert.ok(peakWhilePaused - base < 48 * 1048576);
      assert.ok(hwm - hwmBefore < 48 * 1048576, `VmHWM grew by ${(hwm - hwmBefore) / 1048576} MiB`);
    } finally { await ctx.router.stop(); }
  });
});
