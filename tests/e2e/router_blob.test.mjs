// GET/HEAD /api/models/blob/:model_name against the real router: a mkgguf
// model placed in a temporary LLM_ROUTER_MODELS_DIR and registered with
// POST /api/models/discover-gguf, then served to a node token (or an admin):
// the whole file with its SHA-256 in ETag and Repr-Digest, single ranges
// (first byte, last byte, suffix, beyond the end), conditional requests,
// HEAD, who may call it, names that are not the model's, clients leaving
// halfway (no descriptor left open) and 100 concurrent pulls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { tempDir, cleanup, makeModel, http, waitFor } from './lib/harness.mjs';
import { routerWithKey, fakeNode } from './lib/routerkit.mjs';

let ctx, node, dir, file, bytes, sha, id, url, nodeAuth;

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** GET/HEAD with fetch, the body as a Buffer. */
async function get(u, headers = {}, method = 'GET') {
  const res = await fetch(u, { method, headers, signal: AbortSignal.timeout(30000) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body };
}

function openFds(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line.replace('VmRSS:', '').trim().split(/\s+/)[0]);
}

before(async () => {
  dir = tempDir('llmr-blob-');
  const models = path.join(dir, 'models');
  mkdirSync(models, { recursive: true });
  // demo: a few MiB, enough for the socket buffers to fill many times over
  file = path.join(models, 'blobtest.Q8_0.gguf');
  copyFileSync(makeModel('demo', 'q8_0'), file);
  bytes = readFileSync(file);
  sha = sha256(bytes);
  ctx = await routerWithKey({ LLM_ROUTER_MODELS_DIR: models, LLM_ROUTER_WORKERS: '2' });
  const d = await http('POST', `${ctx.router.url}/api/models/discover-gguf`, { body: {}, headers: ctx.admin });
  assert.ok(d.status === 200 || d.status === 201, `discover-gguf: ${d.status} ${d.text}`);
  const reg = await http('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
  assert.equal(reg.status, 200, reg.text);
  const list = Array.isArray(reg.json) ? reg.json : reg.json.data ?? reg.json.models;
  const m = list.find((x) => x.sha256 === sha);
  assert.ok(m, `the model is registered: ${reg.text}`);
  id = m.id;
  url = `${ctx.router.url}/api/models/blob/${encodeURIComponent(id)}`;
  node = await fakeNode(ctx.router);
  nodeAuth = { 'x-node-token': node.token };
});

after(async () => {
  await node?.stop?.();
  await ctx?.router.stop();
  cleanup(dir);
});

test('the whole file: length, ETag and Repr-Digest are the SHA-256 of what arrives', async () => {
  const r = await get(url, nodeAuth);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.equal(Number(r.headers.get('content-length')), bytes.length);
  assert.equal(r.headers.get('accept-ranges'), 'bytes');
  assert.equal(r.body.length, bytes.length);
  assert.equal(r.headers.get('etag'), `"${sha256(r.body)}"`);
  assert.equal(sha256(r.body), sha);
  const b64 = createHash('sha256').update(r.body).digest('base64');
  assert.equal(r.headers.get('repr-digest'), `sha-256=:${b64}:`);
  // files[0] by its name answers too
  const byName = await get(`${url}/${encodeURIComponent(path.basename(file))}`, nodeAuth);
  assert.equal(byName.status, 200);
  assert.equal(sha256(byName.body), sha);
});

test('single ranges: first byte, last byte, suffix, open end, a span, an end past the size', async () => {
  const n = bytes.length;
  const cases = [
    ['bytes=0-0', 0, 0],
    [`bytes=${n - 1}-${n - 1}`, n - 1, n - 1],
    [`bytes=${n - 1}-`, n - 1, n - 1],
    ['bytes=-100', n - 100, n - 1],
    [`bytes=-${n + 5}`, 0, n - 1],
    ['bytes=1000-1999', 1000, 1999],
    [`bytes=${n - 10}-${n + 1000}`, n - 10, n - 1],
    ['bytes=4096-', 4096, n - 1],
  ];
  for (const [range, a, b] of cases) {
    const r = await get(url, { ...nodeAuth, range });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${n}`, range);
    assert.equal(Number(r.headers.get('content-length')), b - a + 1, range);
    assert.ok(r.body.equals(bytes.subarray(a, b + 1)), `${range}: the bytes`);
    assert.equal(r.headers.get('etag'), `"${sha}"`, range);
  }
});

test('unsatisfiable ranges get 416 with Content-Range bytes */size; others the whole file', async () => {
  const n = bytes.length;
  for (const range of [`bytes=${n}-`, `bytes=${n + 100}-${n + 200}`, 'bytes=-0', 'bytes=99999999999999999999999-']) {
    const r = await get(url, { ...nodeAuth, range });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers.get('content-range'), `bytes */${n}`, range);
    const j = JSON.parse(r.body.toString());
    assert.equal(j.error.code, 'range_not_satisfiable');
  }
  // several ranges, another unit, garbage, last < first: 200 and the whole file
  for (const range of ['bytes=0-0,5-9', 'items=0-1', 'bytes=abc', 'bytes=10-5', 'bytes=', 'bytes=--1']) {
    const r = await get(url, { ...nodeAuth, range });
    assert.equal(r.status, 200, range);
    assert.equal(r.body.length, n, range);
    assert.equal(r.headers.get('content-range'), null, range);
  }
});

test('If-None-Match answers 304; If-Range other than the ETag gets the whole file', async () => {
  for (const inm of [`"${sha}"`, `W/"${sha}"`, `"other", "${sha}"`, '*']) {
    const r = await get(url, { ...nodeAuth, 'if-none-match': inm });
    assert.equal(r.status, 304, inm);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers.get('etag'), `"${sha}"`);
  }
  const other = await get(url, { ...nodeAuth, 'if-none-match': '"0000"' });
  assert.equal(other.status, 200);
  assert.equal(other.body.length, bytes.length);
  const same = await get(url, { ...nodeAuth, range: 'bytes=10-19', 'if-range': `"${sha}"` });
  assert.equal(same.status, 206);
  assert.ok(same.body.equals(bytes.subarray(10, 20)));
  for (const ir of ['"0000"', `W/"${sha}"`, 'Tue, 15 Nov 1994 08:12:31 GMT']) {
    const r = await get(url, { ...nodeAuth, range: 'bytes=10-19', 'if-range': ir });
    assert.equal(r.status, 200, ir);
    assert.equal(r.body.length, bytes.length, ir);
  }
});

test('HEAD: the GET head, no body; a Range is ignored', async () => {
  for (const range of [undefined, 'bytes=0-9']) {
    const r = await get(url, { ...nodeAuth, ...(range ? { range } : {}) }, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers.get('content-length')), bytes.length);
    assert.equal(r.headers.get('etag'), `"${sha}"`);
    assert.ok(r.headers.get('repr-digest').startsWith('sha-256=:'));
    assert.equal(r.body.length, 0);
  }
  // the raw bytes: nothing follows the head on the connection but the next reply
  const raw = await rawExchange(ctx.router.port,
    `HEAD /api/models/blob/${encodeURIComponent(id)} HTTP/1.1\r\nHost: x\r\nX-Node-Token: ${node.token}\r\n\r\n` +
    'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const heads = raw.split('HTTP/1.1 ');
  assert.equal(heads.length, 3, raw);
  assert.ok(heads[1].endsWith('\r\n\r\n'), 'the HEAD reply is a head only');
});

/** Sends req on a raw connection and resolves with everything until the server closes. */
function rawExchange(port, req) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(req));
    let out = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error(`no close in time: ${out}`)); }, 5000);
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('end', () => { clearTimeout(t); resolve(out); });
    s.on('error', (e) => { clearTimeout(t); reject(e); });
  });
}

test('who may pull: a node token or an admin; an API key, a bad token or nothing get 401', async () => {
  const range = { range: 'bytes=0-3' };
  assert.equal((await get(url, { ...nodeAuth, ...range })).status, 206);
  assert.equal((await get(url, { authorization: `Bearer ${node.token}`, ...range })).status, 206);
  assert.equal((await get(url, { ...ctx.admin, ...range })).status, 206);
  for (const h of [ctx.v1, { 'x-api-key': ctx.apiKey }, { 'x-node-token': 'nt_not_a_token' }, {}]) {
    const r = await get(url, { ...h, ...range });
    assert.equal(r.status, 401, JSON.stringify(h));
    assert.ok(JSON.parse(r.body.toString()).error, 'OpenAI error shape');
  }
  const h = await get(url, {}, 'HEAD');
  assert.equal(h.status, 401);
});

test('unknown ids, other names, traversal: 404 in the error shape, never a file from the URL', async () => {
  // sent raw: fetch would resolve the dot segments before the router saw them
  const e = encodeURIComponent(id);
  const names = [
    'no-such-model',
    `${e}/other.gguf`,
    `${e}/..`,
    `${e}/%2e%2e`,
    `${e}/../${e}`,
    `${e}/./${encodeURIComponent(path.basename(file))}`,
    `${e}%2f..%2f..%2fetc%2fpasswd`,
    '..%2f..%2f..%2fetc%2fpasswd',
    '../../../../etc/passwd',
    '%2fetc%2fpasswd',
    `${e}/${encodeURIComponent(file)}`, // its absolute path as a name
    `${e}/`,
    `x/${encodeURIComponent(path.basename(file))}`,
    `${e}%00`,
  ];
  for (const n of names) {
    const raw = await rawExchange(ctx.router.port,
      `GET /api/models/blob/${n} HTTP/1.1\r\nHost: x\r\nX-Node-Token: ${node.token}\r\nConnection: close\r\n\r\n`);
    const status = Number(raw.split(' ')[1]);
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    assert.ok(status === 404 || status === 400, `${n}: ${status}`);
    assert.ok(body.length < 4096, `${n}: an error, not a file`);
    assert.ok(JSON.parse(body).error, `${n}: OpenAI error shape`);
    if (status === 404) assert.equal(JSON.parse(body).error.type, 'not_found_error', n);
  }
});

test('clients leaving mid-transfer: transfers stop, no descriptor stays open, others are served', async () => {
  const pid = ctx.router.proc.pid;
  await get(url, { ...nodeAuth, range: 'bytes=0-0' }); // warm the keep-alive pools
  const fds0 = openFds(pid);
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve, reject) => {
      const s = net.connect(ctx.router.port, '127.0.0.1', () => {
        s.write(`GET /api/models/blob/${encodeURIComponent(id)} HTTP/1.1\r\nHost: x\r\nX-Node-Token: ${node.token}\r\n\r\n`);
      });
      let got = 0;
      const t = setTimeout(() => { s.destroy(); reject(new Error('no bytes in time')); }, 5000);
      s.on('data', (d) => {
        got += d.length;
        if (got > 100000) { clearTimeout(t); i % 2 ? s.resetAndDestroy() : s.destroy(); resolve(); }
      });
      s.on('error', () => {});
    });
  }
  await waitFor(() => openFds(pid) <= fds0, { timeoutMs: 5000, what: `descriptors back to ${fds0} (now ${openFds(pid)})` });
  const r = await get(url, nodeAuth);
  assert.equal(sha256(r.body), sha);
});

test('100 concurrent pulls of one blob are all complete and correct, memory stays flat', async () => {
  const pid = ctx.router.proc.pid;
  const rss0 = rssKb(pid);
  const n = 100;
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: n }, () => get(url, nodeAuth)));
  const ms = Date.now() - t0;
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.body.length, bytes.length);
    assert.equal(sha256(r.body), sha);
  }
  const grown = rssKb(pid) - rss0;
  console.log(`100 x ${bytes.length} bytes in ${ms} ms; router RSS +${grown} KiB`);
  // 100 copies in memory would be 100 x the file; sendfile keeps none
  assert.ok(grown < 32 * 1024, `router RSS grew by ${grown} KiB`);
});
