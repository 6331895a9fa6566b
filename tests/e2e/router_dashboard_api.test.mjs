// The dashboard's data APIs (api_dashboard.c) against the real router and a
// real llm-node with the generated `tiny` model, called as a viewer: overview
// cards, stats, the node table, the request trend (continuity and bounds), a
// node's heartbeat history, the router's log ring (tail, level) and a node's
// logs fetched by the router with that node's credential. Names with markup
// come back as plain JSON strings. Skips (with a reason) until
// build/node/llm-node exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { buildDir, startNode, makeModel, tempDir, waitFor, http, cleanup } from './lib/harness.mjs';
import { routerWithKey, fakeNode, JOIN } from './lib/routerkit.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
const MARKUP = '<script>alert("x")</script>&amp;<img src=x onerror=alert(1)>';
const USER = '<b>viewer</b>';
let ctx, node, nodeId, model, viewer, historyOn, recording = false;

const get = (p, headers = viewer) => http('GET', `${ctx.router.url}${p}`, { headers });
const MIN = 60000, HOUR = 3600000;

before(async () => {
  if (skip) return;
  ctx = await routerWithKey({ LLM_ROUTER_LOG_LEVEL: 'info' });
  const u = await http('POST', `${ctx.router.url}/api/users`, { headers: ctx.admin, body: { username: USER, password: 'viewer-password', role: 'viewer' } });
  assert.equal(u.status, 201, u.text);
  const l = await http('POST', `${ctx.router.url}/api/auth/login`, { body: { username: USER, password: 'viewer-password' } });
  assert.equal(l.status, 200, l.text);
  viewer = { authorization: `Bearer ${l.json.token}` };
  const dir = tempDir('llmr-models-');
  const file = makeModel('tiny');
  symlinkSync(file, path.join(dir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.[0]?.id;
    return model && m.json.data[0].ready_nodes > 0;
  }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
  nodeId = (await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json[0].id;
  const s = await http('PUT', `${ctx.router.url}/api/nodes/${nodeId}/settings`, { headers: ctx.admin, body: { custom_name: MARKUP, tags: ['<b>t</b>', '"q"'], notes: '</textarea><script>1</script>' } });
  assert.equal(s.status, 200, s.text);
  // a few requests for the counters (and, with the history store, the cards)
  for (let i = 0; i < 3; i++) {
    const r = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.ok(r.usage.completion_tokens > 0);
  }
  // Three states while issue 14 lands: no history store (figures null,
  // "history": false), a store without a recorder feeding it (figures zero),
  // and both (the requests above counted). Once the recorder has landed the
  // middle state is a bug: recording is then required whenever enabled.
  historyOn = (await get('/api/dashboard/stats')).json.history.enabled;
  if (historyOn) {
    await waitFor(async () => (await get('/api/dashboard/stats')).json.history.queued >= 3, { timeoutMs: 5000, what: 'rows queued' })
      .then(() => { recording = true; }, () => { recording = false; });
  }
});
after(async () => {
  await node?.stop();
  await ctx?.router.stop();
  cleanup(ctx?.router.dataDir);
  // under a sanitizer build (LLMR_SANITIZE) the router's report is the verdict
  const out = ctx?.router.output() ?? '';
  const at = out.search(/ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:/);
  assert.equal(at, -1, out.slice(Math.max(0, at), at + 4000));
});

test('dashboard data needs a session: 401 without one, 200 for a viewer', { skip }, async () => {
  for (const p of ['/api/dashboard/overview', '/api/dashboard/stats', '/api/dashboard/nodes', '/api/dashboard/request-history',
    `/api/dashboard/metrics/${nodeId}`, '/api/dashboard/logs/router', `/api/nodes/${nodeId}/logs`]) {
    assert.equal((await get(p, {})).status, 401, p);
    const r = await get(p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.match(r.headers.get('content-type'), /^application\/json/);
  }
});

test('nodes: the dashboard table, names with markup as plain JSON strings', { skip }, async () => {
  const r = await get('/api/dashboard/nodes');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.json.length, 1);
  const n = r.json[0];
  assert.equal(n.id, nodeId);
  assert.equal(n.status, 'online');
  assert.equal(n.online, true);
  assert.equal(n.custom_name, MARKUP);
  assert.equal(n.display_name, MARKUP);
  assert.deepEqual(n.tags, ['<b>t</b>', '"q"']);
  assert.equal(n.notes, '</textarea><script>1</script>');
  assert.ok(n.total_slots >= 1);
  assert.equal(n.in_flight, 0);
  assert.ok(n.available_models.includes(model));
  assert.ok(typeof n.cpu_usage === 'number' && typeof n.memory_usage === 'number');
  assert.ok('gpu_usage' in n && 'gpu_memory_usage' in n);
  assert.ok(Date.now() - Date.parse(n.last_seen) < 10000);
  assert.ok(n.total_requests >= 3 && n.successful_requests >= 3);
  // the bytes are a JSON string: no HTML entity encoding, nothing rendered
  assert.ok(r.text.includes(JSON.stringify(MARKUP).slice(1, -1)));
});

test('overview: the cards', { skip }, async (t) => {
  let o;
  await waitFor(async () => {
    o = (await get('/api/dashboard/overview')).json;
    return !recording || o.last_hour.requests >= 3;
  }, { timeoutMs: 10000, what: 'the requests recorded' });
  assert.equal(o.nodes_online, 1);
  assert.equal(o.nodes_total, 1);
  assert.deepEqual(o.models_served, [model]);
  assert.equal(o.models_served_count, 1);
  assert.ok(o.uptime_seconds > 0 && o.uptime_seconds < 3600);
  assert.ok(Math.abs(Date.parse(o.generated_at) - Date.now()) < 10000);
  assert.ok(Date.parse(o.started_at) <= Date.parse(o.generated_at));
  assert.ok(o.requests_since_start >= 3);
  assert.equal(o.errors_since_start, 0);
  assert.equal(o.active_requests, 0);
  assert.equal(o.queued_requests, 0);
  assert.equal(o.history, historyOn);
  const keys = ['requests', 'errors', 'error_rate', 'average_latency_ms', 'p95_latency_ms', 'tokens_per_second',
    'prompt_tokens', 'completion_tokens', 'total_tokens'];
  for (const w of [o.last_hour, o.last_day]) {
    assert.deepEqual(Object.keys(w).sort(), [...keys].sort());
    if (!historyOn) {
      // the documented fallback without a history store: figures are null
      for (const k of keys) assert.equal(w[k], null, k);
      continue;
    }
    for (const k of keys) assert.equal(typeof w[k], 'number', k);
    if (!recording) continue; // nothing feeds the store yet: zeros
    assert.ok(w.requests >= 3);
    assert.equal(w.errors, 0);
    assert.equal(w.error_rate, 0);
    assert.ok(w.average_latency_ms > 0);
    assert.ok(w.p95_latency_ms > 0);
    assert.ok(w.completion_tokens >= 3 && w.prompt_tokens > 0);
    assert.equal(w.total_tokens, w.prompt_tokens + w.completion_tokens);
    assert.ok(w.tokens_per_second > 0);
  }
  if (!historyOn) t.diagnostic('history store off or not landed: overview request figures are null');
  else if (!recording) t.diagnostic('history store without a recorder: overview request figures are zero');
});

test('stats: registry totals, nodes by status, queue and history figures', { skip }, async () => {
  const s = (await get('/api/dashboard/stats')).json;
  assert.equal(s.total_nodes, 1);
  assert.equal(s.online_nodes, 1);
  assert.equal(s.offline_nodes, 0);
  assert.deepEqual(s.nodes_by_status, { online: 1, initializing: 0, suspended: 0, offline: 0 });
  assert.ok(s.total_requests >= 3);
  assert.equal(s.successful_requests, s.total_requests);
  assert.equal(s.failed_requests, 0);
  assert.ok(s.average_response_time_ms > 0);
  assert.equal(s.queued_requests, 0);
  assert.equal(s.active_requests, 0);
  assert.ok(typeof s.load_balancer_mode === 'string');
  assert.ok(typeof s.average_cpu_usage === 'number');
  assert.ok(Date.now() - Date.parse(s.last_metrics_updated_at) < 10000);
  assert.ok(s.uptime_seconds > 0);
  assert.equal(typeof s.history.enabled, 'boolean');
  for (const k of ['queued', 'written', 'dropped', 'queue_depth']) assert.equal(typeof s.history[k], 'number', k);
  if (recording) {
    await waitFor(async () => (await get('/api/dashboard/stats')).json.history.rows >= 3, { what: 'the rows counted' });
    assert.equal(s.history.dropped, 0);
  } else if (historyOn) {
    assert.equal(typeof s.history.rows, 'number');
  } else {
    assert.equal(s.history.rows, null);
  }
});

test('request-history: a continuous series of minute and hour buckets', { skip }, async () => {
  let r;
  await waitFor(async () => {
    r = await get('/api/dashboard/request-history');
    return !recording || r.json.buckets.reduce((a, b) => a + b.requests, 0) >= 3;
  }, { what: 'the requests in the trend' });
  assert.equal(r.status, 200);
  assert.equal(r.json.bucket, 'minute');
  assert.equal(r.json.bucket_ms, MIN);
  assert.equal(r.json.history, historyOn);
  const b = r.json.buckets;
  assert.equal(b.length, 61); // the last hour, both ends' minutes included
  const t0 = Date.parse(b[0].timestamp);
  assert.equal(t0 % MIN, 0);
  assert.equal(Date.parse(r.json.from), t0);
  assert.equal(Date.parse(r.json.to), t0 + 61 * MIN - 1);
  b.forEach((x, i) => {
    assert.equal(Date.parse(x.timestamp), t0 + i * MIN, `bucket ${i}`);
    for (const k of ['requests', 'success', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'average_latency_ms', 'tokens_per_second'])
      assert.equal(typeof x[k], 'number', k);
    assert.equal(x.success + x.errors, x.requests);
  });
  assert.ok(Date.now() - Date.parse(b[60].timestamp) < 2 * MIN);
  const total = b.reduce((a, x) => a + x.requests, 0);
  if (recording) assert.ok(total >= 3); else assert.equal(total, 0);

  const h = (await get('/api/dashboard/request-history?bucket=hour')).json;
  assert.equal(h.bucket, 'hour');
  assert.equal(h.buckets.length, 25);
  h.buckets.forEach((x, i) => assert.equal(Date.parse(x.timestamp), Date.parse(h.buckets[0].timestamp) + i * HOUR));
  if (recording) assert.ok(h.buckets.reduce((a, x) => a + x.requests, 0) >= 3);

  // an explicit range in RFC 3339, then in ms; both ends widen to whole buckets
  const e = (await get('/api/dashboard/request-history?from=2024-01-01T00:00:30Z&to=2024-01-01T00:10:00Z')).json;
  assert.equal(e.buckets.length, 11);
  assert.equal(e.buckets[0].timestamp, '2024-01-01T00:00:00.000Z');
  assert.equal(e.buckets[10].timestamp, '2024-01-01T00:10:00.000Z');
  assert.equal(e.to, '2024-01-01T00:10:59.999Z');
  assert.ok(e.buckets.every((x) => x.requests === 0 && x.total_tokens === 0));
  const t = Date.parse('2024-01-01T00:00:00Z');
  const m = (await get(`/api/dashboard/request-history?from=${t}&to=${t + MIN - 1}`)).json;
  assert.equal(m.buckets.length, 1);
  const offset = (await get('/api/dashboard/request-history?bucket=hour&from=2024-01-01T05:30:00%2B05:30&to=2024-01-01T02:00:00Z')).json;
  assert.equal(offset.buckets[0].timestamp, '2024-01-01T00:00:00.000Z');
  assert.equal(offset.buckets.length, 3);
});

test('request-history: bounds and malformed parameters are 400', { skip }, async () => {
  // 10,000 buckets is the limit
  const ok = await get(`/api/dashboard/request-history?from=0&to=${9999 * MIN}`);
  assert.equal(ok.status, 200);
  assert.equal(ok.json.buckets.length, 10000);
  for (const q of [`from=0&to=${10000 * MIN}`, 'bucket=hour&from=0', 'from=1970-01-01T00:00:00Z']) {
    const r = await get(`/api/dashboard/request-history?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.code, 'range_too_large', q);
  }
  for (const [q, param] of [['bucket=week', 'bucket'], ['bucket=', 'bucket'], ['from=yesterday', 'from'], ['from=-5', 'from'],
    ['to=1e12', 'to'], ['from=', 'from'], ['from=2024-02-30T00:00:00Z', 'from'], ['from=99999999999999999999', 'from'],
    ['from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z', 'from']]) {
    const r = await get(`/api/dashboard/request-history?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.type, 'invalid_request_error', q);
    assert.equal(r.json.error.param, param, q);
  }
});

test('metrics/:node_id: the heartbeat history, oldest first; 404 for an unknown node', { skip }, async () => {
  let r;
  await waitFor(async () => {
    r = await get(`/api/dashboard/metrics/${nodeId}`);
    return r.json.samples >= 3;
  }, { timeoutMs: 15000, what: 'three heartbeats' });
  assert.equal(r.json.node_id, nodeId);
  assert.equal(r.json.custom_name, MARKUP);
  assert.equal(r.json.status, 'online');
  const h = r.json.history;
  assert.equal(h.length, r.json.samples);
  for (let i = 1; i < h.length; i++) assert.ok(Date.parse(h[i].timestamp) >= Date.parse(h[i - 1].timestamp));
  for (const s of h) {
    for (const k of ['cpu_usage', 'memory_usage', 'gpu_usage', 'gpu_memory_usage']) assert.ok(k in s, k);
    for (const k of ['active_requests', 'in_flight', 'average_response_time_ms', 'tokens_per_second']) assert.equal(typeof s[k], 'number', k);
  }
  assert.ok(Date.now() - Date.parse(h.at(-1).timestamp) < 10000);
  for (const id of ['00000000-0000-0000-0000-000000000000', 'no-such-node', '%3Cscript%3E']) {
    const n = await get(`/api/dashboard/metrics/${id}`);
    assert.equal(n.status, 404, id);
    assert.equal(n.json.error.code, 'node_not_found');
    assert.ok(!n.text.includes('<script>'));
  }
});

test("node logs through the router with the node's credential; the node refuses callers without one", { skip }, async () => {
  const r = await get(`/api/nodes/${nodeId}/logs?tail=5`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.source, 'node');
  assert.equal(r.json.node_id, nodeId);
  assert.ok(r.json.entries.length >= 1 && r.json.entries.length <= 5);
  for (const e of r.json.entries) for (const k of ['timestamp', 'level', 'target', 'message']) assert.equal(typeof e[k], 'string', k);
  const d = await get(`/api/nodes/${nodeId}/logs`);
  assert.ok(d.json.entries.length >= r.json.entries.length && d.json.entries.length <= 100);
  // the node's own endpoint: the credential is required
  for (const headers of [{ authorization: '' }, { authorization: 'Bearer rs_not_the_secret' }, { authorization: 'Basic eDp5' }]) {
    const n = await http('GET', `${node.url}/api/logs`, { headers });
    assert.equal(n.status, 401, JSON.stringify(headers));
    assert.ok(!('entries' in (n.json ?? {})));
  }
  assert.equal((await http('GET', `${node.url}/api/logs?tail=1`, { headers: node.auth })).status, 200);
  // bounds and unknown nodes
  for (const q of ['tail=0', 'tail=1001', 'tail=abc', 'tail=-1', 'tail=', 'tail=5x']) {
    const b = await get(`/api/nodes/${nodeId}/logs?${q}`);
    assert.equal(b.status, 400, q);
    assert.equal(b.json.error.param, 'tail');
  }
  const u = await get('/api/nodes/no-such-node/logs');
  assert.equal(u.status, 404);
  assert.equal(u.json.error.code, 'node_not_found');
});

test('node logs: an offline node and one that answers no logs are 502, with a generic message', { skip }, async () => {
  // a node that answers /api/logs with something else (the fake's completion shape)
  const bad = await fakeNode(ctx.router, { name: '<i>fake</i>' });
  try {
    const r = await get(`/api/nodes/${bad.nodeId}/logs`);
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, 'node_unavailable');
    assert.ok(!r.text.includes('fake'));
    // the router presented that node's own secret
    assert.equal(bad.authorizations.at(-1), `Bearer ${bad.secret}`);
    bad.fail500 = 1;
    const f = await get(`/api/nodes/${bad.nodeId}/logs`);
    assert.equal(f.status, 502);
    // the machine name with markup, as a plain string
    const n = (await get('/api/dashboard/nodes')).json.find((x) => x.id === bad.nodeId);
    assert.equal(n.machine_name, '<i>fake</i>');
    assert.equal(n.display_name, '<i>fake</i>');
    // offline: no request goes out
    bad.heartbeating = false;
    assert.equal((await http('POST', `${ctx.router.url}/api/nodes/${bad.nodeId}/disconnect`, { headers: ctx.admin })).status, 200);
    const before = bad.requests;
    const o = await get(`/api/nodes/${bad.nodeId}/logs`);
    assert.equal(o.status, 502);
    assert.equal(o.json.error.code, 'node_unavailable');
    assert.equal(bad.requests, before);
    const st = (await get('/api/dashboard/stats')).json;
    assert.equal(st.nodes_by_status.offline, 1);
    assert.equal((await get('/api/dashboard/overview')).json.nodes_online, 1);
  } finally {
    await bad.stop?.();
    await http('DELETE', `${ctx.router.url}/api/nodes/${bad.nodeId}`, { headers: ctx.admin });
  }
  // a node that does not answer at all (its port closed): 502 within the bound
  const gone = await fakeNode(ctx.router, { name: 'gone' });
  try {
    gone.heartbeating = false;
    const closed = new Promise((r) => gone.server.close(r));
    for (const s of gone.sockets) s.destroy();
    await closed;
    const t = Date.now();
    const r = await get(`/api/nodes/${gone.nodeId}/logs`);
    assert.equal(r.status, 502);
    assert.ok(Date.now() - t < 6000);
  } finally {
    clearInterval(gone.timer);
    await http('DELETE', `${ctx.router.url}/api/nodes/${gone.nodeId}`, { headers: ctx.admin });
  }
});

test('router logs: tail, level filter (that level or more severe), 400s; no secrets', { skip }, async () => {
  const all = await get('/api/dashboard/logs/router?tail=1000');
  assert.equal(all.status, 200);
  assert.equal(all.json.source, 'router');
  assert.ok(all.json.entries.length > 3);
  for (const e of all.json.entries) for (const k of ['timestamp', 'level', 'target', 'message']) assert.equal(typeof e[k], 'string', k);
  const three = (await get('/api/dashboard/logs/router?tail=3')).json;
  assert.equal(three.entries.length, 3);
  assert.equal(three.tail, 3);
  const def = (await get('/api/dashboard/logs/router')).json;
  assert.equal(def.tail, 100);
  assert.ok(def.entries.length <= 100);
  const rank = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
  // the 502s above logged warnings
  const warn = (await get('/api/dashboard/logs/router?level=warn&tail=1000')).json;
  assert.equal(warn.level, 'warn');
  assert.ok(warn.entries.length >= 1);
  assert.ok(warn.entries.every((e) => rank[e.level] >= 3));
  assert.ok(warn.entries.some((e) => e.message.includes('logs of node')));
  const info = (await get('/api/dashboard/logs/router?level=INFO&tail=2')).json;
  assert.equal(info.entries.length, 2);
  assert.ok(info.entries.every((e) => rank[e.level] >= 2));
  assert.ok(Date.parse(info.entries[0].timestamp) <= Date.parse(info.entries[1].timestamp));
  assert.ok((await get('/api/dashboard/logs/router?level=warning')).json.entries.every((e) => rank[e.level] >= 3));
  assert.ok((await get('/api/dashboard/logs/router?level=error')).json.entries.every((e) => e.level === 'error'));
  for (const [q, param] of [['tail=0', 'tail'], ['tail=1001', 'tail'], ['tail=abc', 'tail'], ['tail=1e3', 'tail'], ['tail=-3', 'tail'],
    ['level=verbose', 'level'], ['level=llm_router=debug', 'level'], ['level=', 'level']]) {
    const r = await get(`/api/dashboard/logs/router?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.param, param, q);
  }
  // the node secrets the router presents never reach its logs
  const text = JSON.stringify(all.json) + JSON.stringify((await get('/api/dashboard/logs/router?tail=1000')).json);
  assert.ok(!/rs_[A-Za-z0-9_-]{20,}/.test(text));
  assert.ok(!text.includes(ctx.apiKey));
});

test('the viewer name with markup is a plain JSON string', { skip }, async () => {
  const me = await get('/api/auth/me');
  assert.equal(me.status, 200);
  assert.equal((me.json.user ?? me.json).username, USER);
});

test('with the history off (LLM_ROUTER_HISTORY=0): "history": false, figures null, the trend all zeros', { skip }, async () => {
  const off = await routerWithKey({ LLM_ROUTER_HISTORY: '0' });
  try {
    const g = (p) => http('GET', `${off.router.url}${p}`, { headers: off.admin });
    const o = (await g('/api/dashboard/overview')).json;
    assert.equal(o.history, false);
    assert.equal(o.nodes_total, 0);
    assert.deepEqual(o.models_served, []);
    for (const w of [o.last_hour, o.last_day]) for (const v of Object.values(w)) assert.equal(v, null);
    const s = (await g('/api/dashboard/stats')).json;
    assert.equal(s.history.enabled, false);
    assert.equal(s.history.rows, null);
    assert.equal(s.average_cpu_usage, null);
    assert.equal(s.last_metrics_updated_at, null);
    const r = (await g('/api/dashboard/request-history?bucket=hour')).json;
    assert.equal(r.history, false);
    assert.equal(r.buckets.length, 25);
    assert.ok(r.buckets.every((b) => b.requests === 0));
    assert.deepEqual((await g('/api/dashboard/nodes')).json, []);
  } finally {
    await off.router.stop();
    cleanup(off.router.dataDir);
  }
});
