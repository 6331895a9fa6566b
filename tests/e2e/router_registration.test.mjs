// Registration hardening (finding 4) and the router's credential for its
// nodes (finding 1), against the real router with fake nodes: each
// registration returns a router_secret that the router then presents to the
// node (rotated on re-registration, kept across a router restart, not stored
// in the clear); a join-token holder cannot take a live node's identity; the
// router connects to the registration's peer IP, never to a host name from
// the body; registrations are rate limited per address; offline nodes expire.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { http, waitFor, tempDir, cleanup } from './lib/harness.mjs';
import { routerWithKey, fakeNode, chat, nodeStatus, JOIN } from './lib/routerkit.mjs';

const stops = [];
after(async () => { for (const s of stops.reverse()) await s().catch(() => {}); });

const reg = (ctx, body, headers = {}) => http('POST', `${ctx.router.url}/api/nodes`, {
  body: { machine_name: 'm', ip_address: '127.0.0.1', runtime_version: '1', runtime_port: 41000, gpu_available: false,
    gpu_devices: [], available_models: ['x'], total_slots: 1, ...body },
  headers: { 'x-join-token': JOIN, ...headers },
});

test('the router presents the secret it issued; rotated on re-registration, kept across a restart, sealed at rest', async () => {
  const dataDir = tempDir('llmr-reg-');
  let ctx = await routerWithKey({ LLM_ROUTER_DATA_DIR: dataDir });
  stops.push(() => ctx.router.stop());
  const fake = await fakeNode(ctx.router, { name: 'sec' });
  stops.push(() => fake.stop());
  assert.match(fake.secret, /^rs_[A-Za-z0-9_-]{43}$/);
  assert.equal((await chat(ctx, {})).status, 200);
  assert.equal(fake.authorizations.at(-1), `Bearer ${fake.secret}`);
  const first = fake.secret;
  await fake.register(); // presents its node token: same identity, new secret
  assert.notEqual(fake.secret, first);
  assert.equal((await chat(ctx, {})).status, 200);
  assert.equal(fake.authorizations.at(-1), `Bearer ${fake.secret}`);
  // restart on the same data directory: the node's token and secret are back
  await ctx.router.stop();
  const dbFiles = readdirSync(dataDir).filter((f) => f.startsWith('router.db'));
  for (const f of dbFiles) {
    const bytes = readFileSync(path.join(dataDir, f));
    assert.ok(!bytes.includes(Buffer.from(fake.secret.slice(3))), `${f} holds the secret in the clear`);
  }
  const port = ctx.router.port;
  ctx = await routerWithKey({ LLM_ROUTER_DATA_DIR: dataDir, LLM_ROUTER_PORT: String(port) });
  stops.push(() => ctx.router.stop());
  await waitFor(async () => (await nodeStatus(ctx, fake.nodeId))?.status === 'online', { what: 'the heartbeat after the restart' });
  const n = fake.requests;
  assert.equal((await chat(ctx, {})).status, 200);
  assert.equal(fake.requests, n + 1);
  assert.equal(fake.authorizations.at(-1), `Bearer ${fake.secret}`);
  await fake.stop();
  await ctx.router.stop();
  cleanup(dataDir);
});

test('a live identity needs its node token; an admin frees it by deleting the node', async () => {
  const ctx = await routerWithKey({});
  stops.push(() => ctx.router.stop());
  const a = await reg(ctx, { machine_name: 'victim' });
  assert.equal(a.status, 201);
  const hijack = await reg(ctx, { machine_name: 'victim' });
  assert.equal(hijack.status, 409, hijack.text);
  assert.equal(hijack.json.error.code, 'node_identity_taken');
  assert.equal((await reg(ctx, { machine_name: 'victim' }, { 'x-node-token': 'nt_' + 'x'.repeat(43) })).status, 409);
  // the victim's token still works: nothing was rotated
  const hb = await http('POST', `${ctx.router.url}/api/health`, { body: { node_id: a.json.node_id }, headers: { 'x-node-token': a.json.node_token } });
  assert.equal(hb.status, 200, hb.text);
  const own = await reg(ctx, { machine_name: 'victim' }, { authorization: `Bearer ${a.json.node_token}` });
  assert.equal(own.status, 201);
  assert.equal(own.json.node_id, a.json.node_id);
  assert.equal((await http('DELETE', `${ctx.router.url}/api/nodes/${a.json.node_id}`, { headers: ctx.admin })).status, 204);
  const fresh = await reg(ctx, { machine_name: 'victim' });
  assert.equal(fresh.status, 201);
  assert.notEqual(fresh.json.node_id, a.json.node_id);
  await ctx.router.stop();
});

test('an admin issues a node a new token: the old one stops, the new one takes the live identity back with its id', async () => {
  const ctx = await routerWithKey({});
  stops.push(() => ctx.router.stop());
  const a = await reg(ctx, { machine_name: 'reinstalled' });
  assert.equal(a.status, 201);
  const id = a.json.node_id;
  const set = await http('PUT', `${ctx.router.url}/api/nodes/${id}/settings`, { body: { custom_name: 'gpu box' }, headers: ctx.admin });
  assert.equal(set.status, 200, set.text);
  // the re-installed machine lost its token: a join-token registration is refused while the entry is live
  assert.equal((await reg(ctx, { machine_name: 'reinstalled' })).status, 409);
  assert.equal((await http('POST', `${ctx.router.url}/api/nodes/nope/token`, { headers: ctx.admin })).status, 404);
  const t = await http('POST', `${ctx.router.url}/api/nodes/${id}/token`, { headers: ctx.admin });
  assert.equal(t.status, 200, t.text);
  assert.match(t.json.node_token, /^nt_[A-Za-z0-9_-]{43}$/);
  assert.equal(t.headers.get('cache-control'), 'no-store');
  // the old installation's token no longer works
  const hb = await http('POST', `${ctx.router.url}/api/health`, { body: { node_id: id }, headers: { 'x-node-token': a.json.node_token } });
  assert.equal(hb.status, 401, hb.text);
  assert.equal((await reg(ctx, { machine_name: 'reinstalled' }, { 'x-node-token': a.json.node_token })).status, 409);
  // the new one takes the identity back, settings kept
  const back = await reg(ctx, { machine_name: 'reinstalled' }, { 'x-node-token': t.json.node_token });
  assert.equal(back.status, 201, back.text);
  assert.equal(back.json.node_id, id);
  const view = await http('GET', `${ctx.router.url}/api/nodes/${id}`, { headers: ctx.admin });
  assert.equal(view.json.custom_name, 'gpu box');
  // and was used up: the registration issued the node its own token
  assert.equal((await reg(ctx, { machine_name: 'reinstalled' }, { 'x-node-token': t.json.node_token })).status, 409);
  await ctx.router.stop();
});

test('the router connects to the peer IP, not to a host name from the body (unless trusted, and then only IPs)', async () => {
  const ctx = await routerWithKey({});
  stops.push(() => ctx.router.stop());
  const r = await reg(ctx, { machine_name: 'aim', ip_address: 'metadata.internal' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.ip_address, '127.0.0.1');
  assert.equal((await nodeStatus(ctx, r.json.node_id)).ip_address, '127.0.0.1');
  const r2 = await reg(ctx, { machine_name: 'aim2', ip_address: '10.1.2.3' });
  assert.equal((await nodeStatus(ctx, r2.json.node_id)).ip_address, '127.0.0.1');
  await ctx.router.stop();

  const trusted = await routerWithKey({ LLM_ROUTER_TRUST_NODE_ADDRESS: '1' });
  stops.push(() => trusted.router.stop());
  const named = await reg(trusted, { machine_name: 'aim', ip_address: 'metadata.internal' });
  assert.equal(named.status, 400, named.text);
  const lit = await reg(trusted, { machine_name: 'aim', ip_address: '10.1.2.3' });
  assert.equal(lit.status, 201);
  assert.equal((await nodeStatus(trusted, lit.json.node_id)).ip_address, '10.1.2.3');
  await trusted.router.stop();
});

test('registrations are rate limited per address (429, Retry-After)', async () => {
  const ctx = await routerWithKey({ LLM_ROUTER_REGISTER_RATE_PER_MIN: '3' });
  stops.push(() => ctx.router.stop());
  for (let i = 0; i < 3; i++) assert.equal((await reg(ctx, { machine_name: `r${i}` })).status, 201);
  const r = await reg(ctx, { machine_name: 'r9' });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.error.code, 'too_many_registrations');
  const ra = Number(r.headers.get('retry-after'));
  assert.ok(ra >= 1 && ra <= 60, `Retry-After ${ra}`);
  await ctx.router.stop();
});

test('offline nodes expire: gone from the registry and the database', async () => {
  const dataDir = tempDir('llmr-exp-');
  const env = { LLM_ROUTER_DATA_DIR: dataDir, LLM_ROUTER_NODE_TIMEOUT: '1', LLM_ROUTER_HEALTH_CHECK_INTERVAL: '1', LLM_ROUTER_NODE_EXPIRE_SECS: '2' };
  let ctx = await routerWithKey(env);
  stops.push(() => ctx.router.stop());
  const live = await fakeNode(ctx.router, { name: 'live' });
  const gone = await fakeNode(ctx.router, { name: 'gone' });
  stops.push(() => live.stop(), () => gone.stop());
  gone.heartbeating = false;
  await waitFor(async () => !(await nodeStatus(ctx, gone.nodeId)), { timeoutMs: 15000, what: 'the silent node to expire' });
  assert.equal((await nodeStatus(ctx, live.nodeId))?.status, 'online');
  await ctx.router.stop();
  ctx = await routerWithKey({ ...env, LLM_ROUTER_NODE_EXPIRE_SECS: '86400' });
  stops.push(() => ctx.router.stop());
  assert.equal(await nodeStatus(ctx, gone.nodeId), undefined); // not in the database either
  await live.stop();
  await gone.stop();
  await ctx.router.stop();
  cleanup(dataDir);
});
