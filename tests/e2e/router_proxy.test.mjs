// The router's proxy against fake nodes: registration, the OpenAI surface
// through the official SDK, body passthrough, streaming, retry, mid-stream
// failure, heartbeat checks and timeouts.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { http, waitFor } from './lib/harness.mjs';
import { routerWithKey, fakeNode, chat, nodeStatus, JOIN } from './lib/routerkit.mjs';

let ctx;
const nodes = [];
async function node(opts) { const n = await fakeNode(ctx.router, opts); nodes.push(n); return n; }
async function dropNodes() {
  for (const n of nodes.splice(0)) {
    await n.stop().catch(() => {});
    await http('DELETE', `${ctx.router.url}/api/nodes/${n.nodeId}`, { headers: ctx.admin });
  }
}

before(async () => {
  ctx = await routerWithKey({ LLM_ROUTER_NODE_TIMEOUT: '2', LLM_ROUTER_HEALTH_CHECK_INTERVAL: '1', LLM_ROUTER_NODE_SUSPEND_SECS: '30' });
});
afterEach(async () => { await dropNodes(); });
after(async () => { await ctx?.router.stop(); });

test('registration: join token required, same machine and port keeps its id, GPU optional', async () => {
  const reg = { machine_name: 'm1', ip_address: '127.0.0.1', runtime_version: '1', runtime_port: 40000, gpu_available: false, gpu_devices: [], available_models: ['x'], total_slots: 2 };
  const noTok = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg });
  assert.equal(noTok.status, 401);
  const a = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg, headers: { 'x-join-token': JOIN } });
  assert.equal(a.status, 201);
  assert.equal(a.json.status, 'registered');
  assert.equal(a.json.node_api_port, 40001); // runtime_port + 1 when absent
  assert.match(a.json.node_token, /^nt_/);
  // re-registering a live identity needs that node's current token (the join token alone gets 409)
  const steal = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg, headers: { 'x-join-token': JOIN } });
  assert.equal(steal.status, 409);
  const b = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg, headers: { 'x-join-token': JOIN, 'x-node-token': a.json.node_token } });
  assert.equal(b.status, 201);
  assert.equal(b.json.node_id, a.json.node_id);
  assert.notEqual(b.json.node_token, a.json.node_token);
  const bad = await http('POST', `${ctx.router.url}/api/nodes`, { body: { ...reg, runtime_port: 'x' }, headers: { 'x-join-token': JOIN } });
  assert.equal(bad.status, 400);
  const list = await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
  assert.equal(list.status, 200);
  assert.ok(list.json.some((n) => n.id === a.json.node_id && n.status === 'online'));
  assert.equal((await http('GET', `${ctx.router.url}/api/nodes`)).status, 401);
  const del = await http('DELETE', `${ctx.router.url}/api/nodes/${a.json.node_id}`, { headers: ctx.admin });
  assert.equal(del.status, 204);
  // the deleted node's token no longer works
  const hb = await http('POST', `${ctx.router.url}/api/health`, { body: { node_id: a.json.node_id }, headers: { 'x-node-token': b.json.node_token } });
  assert.equal(hb.status, 401);
});

test('chat, completions, embeddings and models through the openai SDK; body forwarded untouched', async () => {
  const n = await node({ name: 'n-basic', models: ['fake-model'] });
  const r = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], temperature: 0.5, unknown_field: { keep: [1, 'two'] } });
  assert.equal(r.choices[0].message.content, 'hello from n-basic');
  const sent = JSON.parse(r.echo);
  assert.deepEqual(sent.unknown_field, { keep: [1, 'two'] });
  assert.equal(sent.temperature, 0.5);
  const c = await ctx.openai.completions.create({ model: 'fake-model', prompt: 'x' });
  assert.equal(c.choices[0].text, 'hello from n-basic');
  const e = await ctx.openai.embeddings.create({ model: 'fake-model', input: 'x', encoding_format: 'float' });
  assert.deepEqual(e.data[0].embedding, [0.1, 0.2, 0.3]);
  const models = await ctx.openai.models.list();
  const m = models.data.find((x) => x.id === 'fake-model');
  assert.ok(m);
  assert.equal(m.ready_nodes, 1);
  const one = await ctx.openai.models.retrieve('fake-model');
  assert.equal(one.id, 'fake-model');
  await assert.rejects(ctx.openai.models.retrieve('nope'), (err) => err.status === 404 && err.code === 'model_not_found');
  await assert.rejects(ctx.openai.chat.completions.create({ model: 'nope', messages: [] }),
    (err) => err.status === 404 && err.code === 'model_not_found');
  // a node token may read /v1/models too
  const viaNode = await http('GET', `${ctx.router.url}/v1/models`, { headers: { 'x-node-token': n.token } });
  assert.equal(viaNode.status, 200);
  assert.equal((await http('GET', `${ctx.router.url}/v1/models`)).status, 401);
});

test('streaming is relayed chunk by chunk', async () => {
  await node({ name: 'n-stream', chunks: 5, chunkGapMs: 30 });
  const stream = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
  const times = [];
  let text = '';
  for await (const chunk of stream) { times.push(Date.now()); text += chunk.choices[0].delta.content ?? ''; }
  assert.equal(text, 'tok0 tok1 tok2 tok3 tok4 ');
  assert.equal(times.length, 5);
  assert.ok(times[4] - times[0] >= 80, 'chunks arrived spread out, not buffered whole');
});

/** A raw HTTP/1.1 client on one socket: sends a streamed chat request and
 * reads the answer only when told to. */
function rawStream(port, apiKey) {
  const sock = net.connect(port, '127.0.0.1');
  const body = JSON.stringify({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return sock;
}

const routerRss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${ctx.router.proc.pid}/status`, 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a client that stops reading holds its stream: the node is paused, router memory stays bounded, nothing is lost', async () => {
  const n = await node({ name: 'n-flood' });
  n.floodBytes = 64 << 20;
  const rss0 = routerRss();
  const sock = rawStream(ctx.router.port, ctx.apiKey);
  sock.pause(); // reads nothing: the kernel buffers fill, then the router must stop reading the node
  await waitFor(async () => n.flooded > 0, { what: 'the flood started' });
  await sleep(1500);
  const held = n.flooded;
  await sleep(700);
  assert.ok(n.flooded - held < (1 << 20), `the node kept writing while the client read nothing (${held} -> ${n.flooded})`);
  assert.ok(held < (32 << 20), `far less than the whole answer left the node while paused: ${held} bytes`);
  const grown = routerRss() - rss0;
  assert.ok(grown < (16 << 20), `router RSS grew by ${grown} bytes while the client was paused`);
  // reading again: every byte arrives, in order, and the stream ends properly
  let got = 0;
  let tail = '';
  const done = new Promise((resolve, reject) => {
    sock.on('data', (d) => { got += d.length; tail = (tail + d.toString('latin1')).slice(-64); if (tail.includes('data: [DONE]')) resolve(); });
    sock.on('error', reject);
    sock.on('close', resolve);
  });
  sock.resume();
  await done;
  sock.destroy();
  assert.ok(got >= n.floodBytes, `the client got ${got} of ${n.floodBytes} bytes`);
  assert.ok(tail.includes('data: [DONE]'));
});

test('a client leaving mid-stream cancels the request on the node at once', async () => {
  const n = await node({ name: 'n-long', chunks: 400, chunkGapMs: 10 });
  const sock = rawStream(ctx.router.port, ctx.apiKey);
  let got = '';
  await new Promise((resolve) => sock.on('data', (d) => { got += d; if (got.split('data:').length > 5) resolve(); }));
  sock.destroy();
  await waitFor(async () => n.closedEarly === 1, { what: 'the node saw its stream closed', timeoutMs: 2000 });
  await waitFor(async () => (await nodeStatus(ctx, n.nodeId)).in_flight === 0, { what: 'the router released the slot' });
});

test('a 500 or a dead node is retried on another node: the client sees one clean answer', async () => {
  const bad = await node({ name: 'n-bad' });
  const good = await node({ name: 'n-good' });
  bad.fail500 = Infinity;
  for (let i = 0; i < 6; i++) {
    const r = await chat(ctx, {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.node, 'n-good');
  }
  assert.ok(bad.requests >= 1, 'the failing node was tried');
  const st = await nodeStatus(ctx, bad.nodeId);
  assert.ok(st.failed_requests >= 1);
  // with every node failing, one clean OpenAI-shaped 502 after the retries
  good.fail500 = Infinity;
  const r = await chat(ctx, {});
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'upstream_error');
  // with retries used up on a single node, its own 500 answer is relayed
  bad.fail500 = 0;
});

test('a node killed mid-stream ends that stream with an SSE error event; later requests avoid it', async () => {
  const a = await node({ name: 'n-dies', chunks: 5, chunkGapMs: 20 });
  a.killMidStream = true;
  const stream = await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [], stream: true });
  let got = 0;
  await assert.rejects((async () => { for await (const _ of stream) got++; })(),
    (err) => /The node serving this request failed \(request id /.test(String(err.message)) && !/n-dies/.test(String(err.message)));
  assert.ok(got >= 1, 'the chunks before the failure reached the client');
  const served = a.requests;
  const b = await node({ name: 'n-lives' });
  for (let i = 0; i < 5; i++) {
    const r = await chat(ctx, {});
    assert.equal(r.status, 200, r.text); // a is dead: a try on it is retried on b invisibly
    assert.equal(r.json.node, 'n-lives');
  }
  assert.equal(a.requests, served);
  assert.equal(b.requests, 5);
  const st = await nodeStatus(ctx, a.nodeId);
  assert.ok(['suspended', 'offline'].includes(st.status), st.status);
});

test('every node of a model suspended: 503 with Retry-After at once, not a wait; a heartbeat brings it back', async () => {
  const a = await node({ name: 'n-down', models: ['down-model'] });
  // the node's port refuses connections and it stops heartbeating (a heartbeat
  // would lift the suspension); LLM_ROUTER_NODE_TIMEOUT is 2 s in this file
  a.heartbeating = false;
  await new Promise((r) => { a.server.close(r); for (const s of a.sockets) s.destroy(); });
  const first = await chat(ctx, { model: 'down-model' });
  assert.equal(first.status, 502, first.text); // the failure itself, generic: no node address
  assert.ok(!/127\.0\.0\.1|connect/.test(first.json.error.message), first.text);
  assert.equal(first.json.error.code, 'upstream_error');
  assert.equal((await nodeStatus(ctx, a.nodeId)).status, 'suspended');
  const t0 = Date.now();
  const second = await chat(ctx, { model: 'down-model' }, { timeoutMs: 5000 });
  assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
  assert.equal(second.status, 503, second.text);
  assert.equal(second.json.error.code, 'no_node_available');
  const ra = Number(second.headers.get('retry-after'));
  assert.ok(ra >= 28 && ra <= 30, `Retry-After ${ra}`); // LLM_ROUTER_NODE_SUSPEND_SECS 30
  assert.equal(a.requests, 0);
  // the node comes back on the same port and heartbeats: served at once
  await new Promise((r) => a.server.listen(a.port, '127.0.0.1', r));
  assert.equal(await a.heartbeat(), 200);
  const third = await chat(ctx, { model: 'down-model' });
  assert.equal(third.status, 200, third.text);
  assert.equal(third.json.node, 'n-down');
});

test('the raw SSE error event is well formed and followed by [DONE]', async () => {
  const a = await node({ name: 'n-dies2', chunks: 5, chunkGapMs: 20 });
  a.killMidStream = true;
  const r = await http('POST', `${ctx.router.url}/v1/chat/completions`, { body: { model: 'fake-model', messages: [], stream: true }, headers: ctx.v1 });
  assert.equal(r.status, 200);
  // the client is told a generic message and the request id, never the node
  assert.match(r.text, /event: error\ndata: \{"error":\{"message":"The node serving this request failed \(request id [^")]+\)".*\}\}\n\n/s);
  const ev = r.text.slice(r.text.indexOf('event: error'));
  assert.ok(!/n-dies2|127\.0\.0\.1/.test(ev), `no node name or address in the error event: ${ev}`);
  assert.ok(r.text.endsWith('data: [DONE]\n\n'));
});

test('heartbeats: token bound to its node, unknown node 404, silence goes offline, a heartbeat brings it back', async () => {
  const a = await node({ name: 'n-hb-a' });
  const b = await node({ name: 'n-hb-b' });
  assert.equal(await a.heartbeat(), 200);
  assert.equal(await a.heartbeat({ token: b.token }), 403);
  assert.equal(await a.heartbeat({ token: 'nt_wrong' }), 401);
  a.heartbeating = false;
  const t0 = Date.now();
  await waitFor(async () => (await nodeStatus(ctx, a.nodeId)).status === 'offline', { timeoutMs: 6000, what: 'offline' });
  assert.ok(Date.now() - t0 < 4500);
  assert.equal((await nodeStatus(ctx, b.nodeId)).status, 'online');
  for (let i = 0; i < 3; i++) assert.equal((await chat(ctx, {})).json.node, 'n-hb-b');
  a.heartbeating = true;
  await waitFor(async () => (await nodeStatus(ctx, a.nodeId)).status === 'online', { timeoutMs: 3000, what: 'online again' });
});

test('dashboard data: per-node stats, metrics history, summary, settings', async () => {
  const a = await node({ name: 'n-dash' });
  for (let i = 0; i < 3; i++) await chat(ctx, {});
  await a.heartbeat();
  const st = await nodeStatus(ctx, a.nodeId);
  assert.equal(st.total_requests, 3);
  assert.equal(st.successful_requests, 3);
  assert.equal(st.in_flight, 0);
  assert.ok(st.average_latency_ms > 0);
  const m = await http('GET', `${ctx.router.url}/api/nodes/metrics`, { headers: ctx.admin });
  const mine = m.json.find((x) => x.node_id === a.nodeId);
  assert.ok(mine.history.length >= 1 && mine.history.length <= 120);
  assert.equal(mine.cpu_usage, 10);
  const s = await http('GET', `${ctx.router.url}/api/metrics/summary`, { headers: ctx.admin });
  assert.ok(s.json.online_nodes >= 1);
  assert.ok(s.json.total_requests >= 3);
  const put = await http('PUT', `${ctx.router.url}/api/nodes/${a.nodeId}/settings`, { body: { custom_name: 'Box', tags: ['gpu', 'lab'], notes: 'n' }, headers: ctx.admin });
  assert.equal(put.status, 200);
  assert.equal(put.json.custom_name, 'Box');
  assert.deepEqual(put.json.tags, ['gpu', 'lab']);
  const disc = await http('POST', `${ctx.router.url}/api/nodes/${a.nodeId}/disconnect`, { headers: ctx.admin });
  assert.equal(disc.json.status, 'offline');
  assert.equal((await http('POST', `${ctx.router.url}/api/nodes/nope/disconnect`, { headers: ctx.admin })).status, 404);
});
