// Admission queue, load spreading and restart, against fake nodes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { http, waitFor, startRouter } from './lib/harness.mjs';
import { routerWithKey, fakeNode, chat, nodeStatus, summary, JOIN } from './lib/routerkit.mjs';

const cleanups = [];
after(async () => { for (const f of cleanups.reverse()) await f().catch(() => {}); });
async function setup(env, nodeOpts = []) {
  const ctx = await routerWithKey(env);
  cleanups.push(() => ctx.router.stop());
  const nodes = [];
  for (const o of nodeOpts) { const n = await fakeNode(ctx.router, o); nodes.push(n); cleanups.push(() => n.stop()); }
  return { ctx, nodes };
}

test('queue: FIFO order, timeout with 503 + Retry-After, disconnecting waiters leave', async () => {
  const { ctx, nodes: [n] } = await setup({ LLM_ROUTER_QUEUE_TIMEOUT: '1' }, [{ name: 'q1', slots: 1 }]);
  n.hold = true;
  const order = [];
  const reqs = [];
  for (let i = 0; i < 4; i++) {
    reqs.push(chat(ctx, { tag: i }).then((r) => { order.push(i); return r; }));
    await waitFor(async () => n.requests === 1 && (await summary(ctx)).queued_requests === i, { what: `waiter ${i}` });
  }
  // release one at a time: they finish in arrival order
  for (let k = 0; k < 4; k++) {
    await waitFor(() => n.held.length === 1, { what: 'a held request' });
    n.release();
    await waitFor(() => order.length === k + 1, { what: `finish ${k}` });
  }
  assert.deepEqual(order, [0, 1, 2, 3]);
  for (const r of await Promise.all(reqs)) assert.equal(r.status, 200);
  const tags = n.bodies.map((b) => JSON.parse(b).tag);
  assert.deepEqual(tags, [0, 1, 2, 3]);
  // timeout
  const holder = chat(ctx, {});
  await waitFor(() => n.held.length === 1, { what: 'holder' });
  const t0 = Date.now();
  const late = await chat(ctx, {});
  assert.equal(late.status, 503);
  assert.ok(late.headers.get('retry-after'));
  assert.equal(late.json.error.code, 'queue_timeout');
  assert.ok(Date.now() - t0 >= 900 && Date.now() - t0 < 3000);
  // disconnecting waiters leave the queue
  const ctrls = [0, 1, 2].map(() => new AbortController());
  const gone = ctrls.map((c) => chat(ctx, {}, { timeoutMs: 30000 }).catch(() => null));
  void gone;
  const aborted = ctrls.map((c) => fetch(`${ctx.router.url}/v1/chat/completions`, {
    method: 'POST', headers: { ...ctx.v1, 'content-type': 'application/json' }, signal: c.signal,
    body: JSON.stringify({ model: 'fake-model', messages: [] }) }).catch(() => null));
  void aborted;
  await waitFor(async () => (await summary(ctx)).queued_requests === 6, { what: '6 waiting' });
  for (const c of ctrls) c.abort();
  await waitFor(async () => (await summary(ctx)).queued_requests === 3, { what: 'aborted waiters left' });
  n.hold = false;
  n.release();
  await holder;
  await waitFor(async () => (await summary(ctx)).queued_requests === 0 && (await summary(ctx)).active_requests === 0, { what: 'drained' });
  assert.equal((await nodeStatus(ctx, n.nodeId)).in_flight, 0);
});

test('queue: 1024 waiters fit, the 1025th gets 503 at once', async () => {
  const { ctx, nodes: [n] } = await setup({}, [{ name: 'q2', slots: 1 }]);
  n.hold = true;
  const all = [];
  all.push(chat(ctx, {}, { timeoutMs: 60000 }));
  await waitFor(() => n.held.length === 1, { what: 'holder' });
  for (let i = 0; i < 1024; i++) all.push(chat(ctx, {}, { timeoutMs: 60000 }));
  await waitFor(async () => (await summary(ctx)).queued_requests === 1024, { timeoutMs: 20000, what: '1024 waiting' });
  const extra = await chat(ctx, {});
  assert.equal(extra.status, 503);
  assert.equal(extra.json.error.code, 'queue_full');
  assert.ok(extra.headers.get('retry-after'));
  n.hold = false;
  n.release();
  const res = await Promise.all(all);
  assert.ok(res.every((r) => r.status === 200));
  assert.equal(n.maxActive, 1);
});

test('spreading: 2 nodes x 4 slots under 16 concurrent never exceed their slots; auto sends a 4x slower node less', async () => {
  const { ctx, nodes: [a, b] } = await setup({}, [{ name: 'fast', slots: 4, delayMs: 30 }, { name: 'slow', slots: 4, delayMs: 120 }]);
  const res = await Promise.all(Array.from({ length: 48 }, () => chat(ctx, {})));
  assert.ok(res.every((r) => r.status === 200));
  assert.ok(a.maxActive <= 4 && b.maxActive <= 4, `max ${a.maxActive}/${b.maxActive}`);
  assert.ok(a.maxActive === 4, 'the fast node was filled');
  // 4 clients in a loop (below capacity): round-robin would give each node half
  const before = { a: a.requests, b: b.requests };
  await Promise.all(Array.from({ length: 4 }, async () => { for (let i = 0; i < 10; i++) await chat(ctx, {}); }));
  const fast = a.requests - before.a;
  const slow = b.requests - before.b;
  assert.equal(fast + slow, 40);
  assert.ok(slow < 20, `slow node got ${slow} of 40`);
});

test('a node that takes the request but never answers: after the head timeout the request is retried on another node', async () => {
  const { ctx, nodes: [mute, ok] } = await setup({ LLM_ROUTER_NODE_HEADER_TIMEOUT: '1', LLM_ROUTER_LOAD_BALANCER_MODE: 'round_robin' },
    [{ name: 'mute', slots: 4 }, { name: 'ok', slots: 4 }]);
  mute.hold = true; // reads the request, sends nothing
  const t0 = Date.now();
  const res = await Promise.all(Array.from({ length: 4 }, () => chat(ctx, {})));
  for (const r of res) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.node, 'ok');
  }
  assert.ok(mute.requests >= 1, 'the mute node was tried');
  assert.ok(Date.now() - t0 >= 900, 'the retry came after the timeout, not before');
  assert.equal((await nodeStatus(ctx, mute.nodeId)).in_flight, 0);
  mute.release();
});

test('restart: nodes, settings and token hashes survive; offline until a heartbeat', async () => {
  const { ctx, nodes: [n] } = await setup({}, [{ name: 'persist', slots: 2 }]);
  await http('PUT', `${ctx.router.url}/api/nodes/${n.nodeId}/settings`, { body: { custom_name: 'Kept', tags: ['x'] }, headers: ctx.admin });
  n.heartbeating = false;
  await ctx.router.stop();
  const router2 = await startRouter({ LLM_ROUTER_DATA_DIR: ctx.router.dataDir, LLM_ROUTER_JOIN_TOKEN: JOIN });
  cleanups.push(() => router2.stop());
  const login = await http('POST', `${router2.url}/api/auth/login`, { body: { username: 'admin', password: 'admin-test-password' } });
  const admin = { authorization: `Bearer ${login.json.token}` };
  let list = await http('GET', `${router2.url}/api/nodes`, { headers: admin });
  const kept = list.json.find((x) => x.id === n.nodeId);
  assert.ok(kept, 'node kept');
  assert.equal(kept.status, 'offline');
  assert.equal(kept.custom_name, 'Kept');
  n.routerUrl = router2.url;
  assert.equal(await n.heartbeat(), 200); // the old token still works
  list = await http('GET', `${router2.url}/api/nodes`, { headers: admin });
  assert.equal(list.json.find((x) => x.id === n.nodeId).status, 'online');
});
