// Node-driven model sync (issue 15 item 7) through the real router and real
// llm-nodes. The router's catalogue gets mkgguf models with
// POST /api/models/discover-gguf; the nodes read /v1/models with their node
// token and pull the blobs by themselves. Each node talks to the router
// through a small proxy in this test that logs every request (path and
// Range) and, for node A, stalls the first blob answer halfway and then cuts
// it, so the resumed request must carry Range. Checked: both downloading
// nodes hold a verified copy at <models_dir>/<id>/<file> and answer chats
// through the router; progress reaches /api/nodes (downloading, then ready);
// a model registered later arrives through the heartbeat's models_version
// alone (periodic sync off); shared-path mode links the router's file and
// requests no blob; a delete on the router removes what sync placed and
// never a hand-placed file; the heartbeat's model_sync is parsed strictly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { buildDir, startNode, makeModel, tempDir, waitFor, http as req, cleanup } from './lib/harness.mjs';
import { routerWithKey, fakeNode, JOIN } from './lib/routerkit.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

let ctx, dir, routerModels, file1, sha1, idS, idH, file2, sha2;
let A, B, C, pA, pB, pC, dirA, dirB, dirC;

/** A logging HTTP proxy in front of the router. stallFirstBlob: the first
 * blob GET gets half its body, then (after stallMs) the connection drops. */
function startProxy(target, { stallFirstBlob = false, stallMs = 2500 } = {}) {
  const log = [];
  let blobGets = 0;
  const srv = http.createServer((rq, rs) => {
    log.push({ method: rq.method, url: rq.url, range: rq.headers.range ?? null });
    const blob = rq.method === 'GET' && rq.url.startsWith('/api/models/blob/');
    const cut = blob && stallFirstBlob && blobGets++ === 0;
    const up = http.request(`${target}${rq.url}`, { method: rq.method, headers: rq.headers }, (ur) => {
      rs.writeHead(ur.statusCode, ur.headers);
      if (!cut) return ur.pipe(rs);
      const half = Math.floor(Number(ur.headers['content-length']) / 2);
      let sent = 0, done = false;
      ur.on('data', (d) => {
        if (done) return;
        if (sent + d.length < half) { sent += d.length; rs.write(d); return; }
        rs.write(d.subarray(0, half - sent));
        done = true;
        ur.destroy();
        setTimeout(() => rs.socket?.destroy(), stallMs);
      });
    });
    up.on('error', () => rs.destroy());
    rq.pipe(up);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}`, log,
    blobs: () => log.filter((e) => e.url.startsWith('/api/models/blob/')),
    close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }),
  })));
}

function nodeEnv(proxy, modelsDir, extra = {}) {
  return {
    LLM_ROUTER_URL: proxy.url, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_MODELS_DIR: modelsDir,
    LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_MODEL_SYNC_SECS: '0', LLM_NODE_LOG_LEVEL: 'info', ...extra,
  };
}

async function nodes() {
  const r = await req('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function nodeOf(n) {
  const id = (await req('GET', `${n.url}/health`, { headers: n.auth })).json?.node_id;
  return (await nodes()).find((x) => x.id === id);
}

async function advertises(n, id) {
  const v = await nodeOf(n);
  return v && v.online && v.available_models.includes(id);
}

async function discover() {
  const d = await req('POST', `${ctx.router.url}/api/models/discover-gguf`, { body: {}, headers: ctx.admin });
  assert.ok(d.status === 200 || d.status === 201, `discover-gguf: ${d.status} ${d.text}`);
  const reg = await req('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
  assert.equal(reg.status, 200, reg.text);
  return Array.isArray(reg.json) ? reg.json : reg.json.data ?? reg.json.models;
}

before(async () => {
  if (skip) return;
  dir = tempDir('llmr-sync-');
  routerModels = path.join(dir, 'router-models');
  mkdirSync(routerModels, { recursive: true });
  file1 = path.join(routerModels, 'synctest.Q8_0.gguf');
  copyFileSync(makeModel('tiny', 'q8_0'), file1);
  sha1 = sha256(readFileSync(file1));
  file2 = makeModel('tiny', 'q8_0', ['--seed', '7']);
  sha2 = sha256(readFileSync(file2));
  ctx = await routerWithKey({ LLM_ROUTER_MODELS_DIR: routerModels, LLM_ROUTER_LOAD_BALANCER_MODE: 'round_robin' });
  const list = await discover();
  const m = list.find((x) => x.sha256 === sha1);
  assert.ok(m, `the model is registered: ${JSON.stringify(list)}`);
  idS = m.id;
  pA = await startProxy(ctx.router.url, { stallFirstBlob: true });
  pB = await startProxy(ctx.router.url);
  pC = await startProxy(ctx.router.url);
  dirA = path.join(dir, 'node-a'); dirB = path.join(dir, 'node-b'); dirC = path.join(dir, 'node-c');
  for (const d of [dirA, dirB, dirC]) mkdirSync(d, { recursive: true });
  // the operator placed the second model on B by hand, before it is registered
  copyFileSync(file2, path.join(dirB, 'handy.Q8_0.gguf'));
  copyFileSync(file2, path.join(dirC, 'own.gguf'));
  [A, B, C] = await Promise.all([
    startNode(nodeEnv(pA, dirA, { LLM_NODE_MODEL_SYNC_SHARED: '0' })),
    startNode(nodeEnv(pB, dirB, { LLM_NODE_MODEL_SYNC_SHARED: '0' })),
    startNode(nodeEnv(pC, dirC)), // shared storage: the router's path is readable here
  ]);
});

after(async () => {
  await Promise.all([A?.stop(), B?.stop(), C?.stop()]);
  await Promise.all([pA?.close(), pB?.close(), pC?.close()]);
  await ctx?.router.stop();
  cleanup(dir);
});

test('progress shows in /api/nodes while a download is stalled, then ready', { skip }, async () => {
  const size = readFileSync(file1).length;
  const seen = await waitFor(async () => {
    const v = await nodeOf(A);
    const e = v?.model_sync?.find((x) => x.model === idS);
    return e && e.state === 'downloading' && e.bytes > 0 && e.bytes < e.total ? e : null;
  }, { timeoutMs: 30000, intervalMs: 100, what: 'node A reporting a download in progress' });
  assert.equal(seen.total, size);
  const done = await waitFor(async () => {
    const e = (await nodeOf(A))?.model_sync?.find((x) => x.model === idS);
    return e?.state === 'ready' ? e : null;
  }, { timeoutMs: 30000, intervalMs: 100, what: 'node A reporting the model ready' });
  assert.equal(done.bytes, size);
  assert.equal(done.total, size);
  assert.equal(done.error, undefined);
  // the dashboard's node list carries it too
  const dash = await req('GET', `${ctx.router.url}/api/dashboard/nodes`, { headers: ctx.admin });
  assert.equal(dash.status, 200, dash.text);
  const list = Array.isArray(dash.json) ? dash.json : dash.json.nodes ?? dash.json.data;
  assert.ok(list.some((n) => n.model_sync?.some((x) => x.model === idS)), dash.text.slice(0, 2000));
});

test('both downloading nodes sync the model, the broken download resumed with Range', { skip }, async () => {
  for (const n of [A, B]) await waitFor(() => advertises(n, idS), { timeoutMs: 60000, what: 'the node advertising the synced model' });
  for (const d of [dirA, dirB]) {
    const f = path.join(d, idS, path.basename(file1));
    assert.ok(lstatSync(f).isFile(), `${f} is a copy`);
    assert.equal(sha256(readFileSync(f)), sha1);
    assert.ok(!existsSync(`${f}.part`));
  }
  const a = pA.blobs();
  assert.ok(a.length >= 2, JSON.stringify(a));
  assert.equal(a[0].range, null);
  const size = readFileSync(file1).length;
  const m = /^bytes=(\d+)-$/.exec(a[1].range ?? '');
  assert.ok(m, `the second blob request carried Range: ${JSON.stringify(a)}`);
  assert.ok(Number(m[1]) > 0 && Number(m[1]) < size);
  assert.equal(pB.blobs().length, 1);
  assert.equal(pB.blobs()[0].range, null);
  // the node token, not a user credential, read the list
  assert.ok(pA.log.some((e) => e.url === '/v1/models'));
});

test('both nodes answer chats through the router with the synced model', { skip }, async () => {
  for (const n of [A, B, C]) await waitFor(() => advertises(n, idS), { timeoutMs: 60000, what: 'three nodes serving the model' });
  const before = new Map((await nodes()).map((n) => [n.id, n.total_requests]));
  for (let i = 0; i < 6; i++) {
    const r = await ctx.openai.chat.completions.create({ model: idS, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.equal(r.object, 'chat.completion');
  }
  for (const n of [A, B]) {
    const v = await nodeOf(n);
    assert.ok(v.total_requests > (before.get(v.id) ?? 0), `node ${v.id} answered: ${JSON.stringify(v)}`);
  }
  const models = await req('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
  const e = models.json.data.find((x) => x.id === idS);
  assert.ok(e && e.ready_nodes >= 2, models.text);
});

test('shared-path mode uses the router file in place and downloads nothing', { skip }, async () => {
  await waitFor(() => advertises(C, idS), { timeoutMs: 60000, what: 'node C serving the shared model' });
  const link = path.join(dirC, idS, path.basename(file1));
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(realpathSync(readlinkSync(link)), realpathSync(file1));
  assert.equal(pC.blobs().length, 0, JSON.stringify(pC.blobs()));
  const e = (await nodeOf(C)).model_sync.find((x) => x.model === idS);
  assert.equal(e.state, 'ready');
});

test('a model registered later arrives through models_version alone', { skip }, async () => {
  copyFileSync(file2, path.join(routerModels, 'handy.Q8_0.gguf'));
  const list = await discover();
  const m = list.find((x) => x.sha256 === sha2);
  assert.ok(m, JSON.stringify(list));
  idH = m.id;
  // the hand-placed copy on B already serves that id (the scan's rule)
  assert.equal(idH, 'handy');
  await waitFor(() => advertises(A, idH), { timeoutMs: 30000, what: 'node A syncing the second model' });
  await waitFor(() => advertises(C, idH), { timeoutMs: 30000, what: 'node C linking the second model' });
  assert.equal(sha256(readFileSync(path.join(dirA, idH, 'handy.Q8_0.gguf'))), sha2);
  assert.ok(await advertises(B, idH));
  assert.ok(!existsSync(path.join(dirB, idH)), 'B keeps its own copy and pulls nothing');
  assert.ok(!pB.blobs().some((e) => e.url.includes(idH)));
});

test('a delete on the router removes what sync placed, never hand-placed files', { skip }, async () => {
  for (const id of [idS, idH]) {
    const d = await req('DELETE', `${ctx.router.url}/api/models/${encodeURIComponent(id)}`, { headers: ctx.admin });
    assert.ok(d.status === 200 || d.status === 204, `delete ${id}: ${d.status} ${d.text}`);
  }
  await waitFor(() => !existsSync(path.join(dirA, idS)) && !existsSync(path.join(dirA, idH)) &&
    !existsSync(path.join(dirB, idS)) && !existsSync(path.join(dirC, idS)) && !existsSync(path.join(dirC, idH)),
  { timeoutMs: 30000, what: 'the synced copies and links removed' });
  assert.ok(existsSync(path.join(dirB, 'handy.Q8_0.gguf')), 'the hand-placed copy on B stays');
  assert.ok(existsSync(path.join(dirC, 'own.gguf')), 'an unrelated hand-placed file stays');
  await waitFor(async () => !(await advertises(A, idS)) && !(await advertises(C, idS)),
    { timeoutMs: 30000, what: 'the nodes no longer advertising the deleted model' });
  assert.ok(await advertises(B, idH), 'B still serves its own copy');
});

test('the heartbeat: models_version in the reply, model_sync parsed strictly', { skip }, async () => {
  const f = await fakeNode(ctx.router, { heartbeatMs: 60000 });
  try {
    const url = `${ctx.router.url}/api/health`;
    const send = (extra) => req('POST', url, { body: f.heartbeatBody(extra), headers: { 'x-node-token': f.token } });
    const ok = await send({ model_sync: [{ model: 'm1', state: 'downloading', bytes: 5, total: 10 },
      { model: 'm2', state: 'failed', bytes: 0, total: 10, error: 'SHA-256 mismatch' }] });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(typeof ok.json.models_version, 'number');
    const v = (await nodes()).find((n) => n.id === f.nodeId);
    assert.deepEqual(v.model_sync, [{ model: 'm1', state: 'downloading', bytes: 5, total: 10 },
      { model: 'm2', state: 'failed', bytes: 0, total: 10, error: 'SHA-256 mismatch' }]);
    const entry = { model: 'm', state: 'ready', bytes: 1, total: 1 };
    for (const bad of ['x', [{ ...entry, state: 'odd' }], [{ ...entry, model: '' }], [{ ...entry, bytes: -1 }],
      [{ ...entry, total: 1.5 }], [{ ...entry, model: 'x'.repeat(300) }], [{ ...entry, error: 'e'.repeat(600) }],
      Array.from({ length: 65 }, () => entry), [7]]) {
      const r = await send({ model_sync: bad });
      assert.equal(r.status, 400, `${JSON.stringify(bad).slice(0, 80)}: ${r.text}`);
      assert.equal(r.json.error.code, 'invalid_heartbeat');
    }
    // a heartbeat without the field keeps the last one; [] clears it
    assert.equal((await send({})).status, 200);
    assert.equal((await nodes()).find((n) => n.id === f.nodeId).model_sync.length, 2);
    assert.equal((await send({ model_sync: [] })).status, 200);
    assert.deepEqual((await nodes()).find((n) => n.id === f.nodeId).model_sync, []);
  } finally {
    await f.stop();
  }
});
