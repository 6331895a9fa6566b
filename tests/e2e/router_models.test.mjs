// The router's model catalogue through the real binary: mkgguf models placed
// in a temporary LLM_ROUTER_MODELS_DIR (and one outside it) registered with
// POST /api/models/discover-gguf, listed by GET /api/models/registered and
// /v1/models (an API key sees the model objects; a node token also sees the
// path, the files and the blob URLs), deleted with DELETE /api/models/:id
// (files inside the models directory go, files registered in place stay),
// kept across a restart; bad bodies get 400, viewers may list but only
// admins may discover or delete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir, cleanup, makeModel, http, waitFor } from './lib/harness.mjs';
import { routerWithKey, fakeNode } from './lib/routerkit.mjs';

let ctx, dir, models, outside, dataDir, node;
const files = {};

const sha256 = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const base = () => ctx.router.url;

async function registered(headers = ctx.admin) {
  const r = await http('GET', `${base()}/api/models/registered`, { headers });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

before(async () => {
  dir = tempDir('llmr-models-');
  models = path.join(dir, 'models');
  outside = path.join(dir, 'outside');
  dataDir = path.join(dir, 'data');
  mkdirSync(path.join(models, 'beta'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  files.f16 = path.join(models, 'alpha.F16.gguf');
  files.q8 = path.join(models, 'alpha.Q8_0.gguf');
  files.beta = path.join(models, 'beta', 'whatever-q4_0.gguf');
  files.gamma = path.join(outside, 'gamma.Q4_0.gguf');
  files.junk = path.join(models, 'notamodel.gguf');
  copyFileSync(makeModel('tiny', 'f16'), files.f16);
  copyFileSync(makeModel('tiny', 'q8_0'), files.q8);
  copyFileSync(makeModel('tiny', 'q4_0'), files.beta);
  copyFileSync(makeModel('tiny', 'q4_0', ['--seed', '7']), files.gamma);
  writeFileSync(files.junk, 'this is text, not a GGUF model, but long enough for a header\n');
  writeFileSync(path.join(models, 'partial.gguf.part'), 'a download in progress');
  ctx = await routerWithKey({ LLM_ROUTER_MODELS_DIR: models, LLM_ROUTER_DATA_DIR: dataDir });
});

after(async () => {
  if (node) await node.stop?.();
  if (ctx) await ctx.router.stop();
  cleanup(dir);
});

test('who may call: viewers list, only admins discover and delete, API keys and nobody get 401', async () => {
  const u = await http('POST', `${base()}/api/users`, { headers: ctx.admin, body: { username: 'vera', password: 'vera-password', role: 'viewer' } });
  assert.equal(u.status, 201, u.text);
  const login = await http('POST', `${base()}/api/auth/login`, { body: { username: 'vera', password: 'vera-password' } });
  assert.equal(login.status, 200, login.text);
  const viewer = { authorization: `Bearer ${login.json.token}` };
  assert.equal((await http('GET', `${base()}/api/models/registered`, { headers: viewer })).status, 200);
  const d = await http('POST', `${base()}/api/models/discover-gguf`, { headers: viewer, body: {} });
  assert.equal(d.status, 403, d.text);
  assert.equal((await http('DELETE', `${base()}/api/models/alpha`, { headers: viewer })).status, 403);
  assert.equal((await http('GET', `${base()}/api/models/registered`, { headers: ctx.v1 })).status, 401);
  assert.equal((await http('GET', `${base()}/api/models/registered`)).status, 401);
  assert.equal((await http('POST', `${base()}/api/models/discover-gguf`, { body: {} })).status, 401);
  assert.equal((await http('DELETE', `${base()}/api/models/alpha`)).status, 401);
  // nothing was registered by the refused calls
  assert.deepEqual((await registered()).models, []);
});

test('discover-gguf refuses bad bodies with 400', async () => {
  const post = (body) => http('POST', `${base()}/api/models/discover-gguf`, { headers: ctx.admin, body });
  for (const body of ['{not json', '[]', '"dir"', { dir: 5 }, { dir: 'relative/path' }, { dir: ['/tmp'] }, { folder: '/tmp' }]) {
    const r = await post(body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  let r = await post({ dir: path.join(dir, 'does-not-exist') });
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error.message, /not a directory/);
  r = await post({ dir: files.q8 });
  assert.equal(r.status, 400, r.text);
  assert.deepEqual((await registered()).models, []);
});

test('discover-gguf registers the models directory: ids, header facts, hashes, skips', async () => {
  const d = await http('POST', `${base()}/api/models/discover-gguf`, { headers: ctx.admin, body: {} });
  assert.equal(d.status, 200, d.text);
  const ids = d.json.registered.map((m) => m.id).sort();
  // sorted by path, alpha.F16 comes first and keeps the base id; the other
  // quantisation keeps its tag; the one model of beta/ is called beta
  assert.deepEqual(ids, ['alpha', 'alpha-Q8_0', 'beta']);
  const byId = Object.fromEntries(d.json.registered.map((m) => [m.id, m]));
  const expect = { alpha: [files.f16, 'F16'], 'alpha-Q8_0': [files.q8, 'Q8_0'], beta: [files.beta, 'Q4_0'] };
  for (const [id, [file, quant]] of Object.entries(expect)) {
    const m = byId[id];
    assert.equal(m.object, 'model');
    assert.equal(m.registered, true);
    assert.equal(m.format, 'gguf');
    assert.equal(m.sha256, sha256(file), id);
    assert.equal(m.size, readFileSync(file).length);
    assert.equal(m.info.architecture, 'llama');
    assert.equal(m.info.quantization, quant);
    assert.equal(m.info.context_length, 2048);
    assert.ok(m.info.parameters > 0);
    assert.equal(m.info.chat_template, true);
    assert.equal(m.source, null);
    assert.equal(m.path, undefined, 'no path outside a node token');
    assert.ok(Math.abs(m.created - Date.now() / 1000) < 120);
  }
  const junk = d.json.skipped.find((s) => s.file.endsWith('notamodel.gguf'));
  assert.ok(junk, JSON.stringify(d.json.skipped));
  assert.match(junk.reason, /not a GGUF file/);
  assert.ok(!d.json.skipped.some((s) => s.file.endsWith('.part')), 'a .part file is not mentioned');

  // a second run registers nothing and says why
  const again = await http('POST', `${base()}/api/models/discover-gguf`, { headers: ctx.admin });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json.registered, []);
  const s = again.json.skipped.find((x) => x.file.endsWith('alpha.Q8_0.gguf'));
  assert.match(s.reason, /already registered as 'alpha-Q8_0'/);

  const list = await registered();
  assert.deepEqual(list.models.map((m) => m.id).sort(), ids);
  assert.ok(Array.isArray(list.tasks));
  for (const m of list.models) assert.equal(m.ready_nodes, 0);
});

test('discover-gguf with a directory outside the models directory registers in place', async () => {
  const d = await http('POST', `${base()}/api/models/discover-gguf`, { headers: ctx.admin, body: { dir: outside } });
  assert.equal(d.status, 200, d.text);
  assert.deepEqual(d.json.registered.map((m) => m.id), ['gamma']);
  assert.equal(d.json.registered[0].sha256, sha256(files.gamma));
});

test('/v1/models: registered models for an API key; path, files and blob URLs for a node token', async () => {
  node = await fakeNode(ctx.router, { models: ['alpha', 'node-only'] });
  const key = await waitFor(async () => {
    const r = await http('GET', `${base()}/v1/models`, { headers: ctx.v1 });
    const a = r.json?.data?.find((m) => m.id === 'alpha');
    return a && a.ready_nodes === 1 ? r.json : null;
  }, { what: 'alpha ready on the fake node' });
  const ids = key.data.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `no duplicate ids: ${ids}`);
  for (const id of ['alpha', 'alpha-Q8_0', 'beta', 'gamma', 'node-only']) assert.ok(ids.includes(id), `${id} in ${ids}`);
  const alpha = key.data.find((m) => m.id === 'alpha');
  assert.equal(alpha.registered, true);
  assert.equal(alpha.sha256, sha256(files.f16));
  assert.equal(alpha.path, undefined);
  assert.equal(alpha.blob_url, undefined);
  assert.equal(key.data.find((m) => m.id === 'beta').ready_nodes, 0);
  assert.equal(key.data.find((m) => m.id === 'node-only').registered, undefined);

  const nodeList = await http('GET', `${base()}/v1/models`, { headers: { 'x-node-token': node.token } });
  assert.equal(nodeList.status, 200, nodeList.text);
  const na = nodeList.json.data.find((m) => m.id === 'alpha');
  assert.equal(na.path, files.f16);
  assert.equal(na.size, readFileSync(files.f16).length);
  assert.equal(na.blob_url, '/api/models/blob/alpha');
  assert.equal(na.files.length, 1);
  assert.deepEqual(na.files[0], { name: 'alpha.F16.gguf', size: na.size, sha256: na.sha256, path: files.f16, blob_url: '/api/models/blob/alpha' });
  const ng = nodeList.json.data.find((m) => m.id === 'gamma');
  assert.equal(ng.path, files.gamma);
  // the same with the token as a bearer
  const bearer = await http('GET', `${base()}/v1/models/beta`, { headers: { authorization: `Bearer ${node.token}` } });
  assert.equal(bearer.status, 200, bearer.text);
  assert.equal(bearer.json.path, files.beta);

  const one = await http('GET', `${base()}/v1/models/alpha-Q8_0`, { headers: ctx.v1 });
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.sha256, sha256(files.q8));
  assert.equal(one.json.path, undefined);
  assert.equal((await http('GET', `${base()}/v1/models/nope`, { headers: ctx.v1 })).status, 404);
  assert.equal((await http('GET', `${base()}/v1/models`)).status, 401);

  const list = await registered();
  assert.equal(list.models.find((m) => m.id === 'alpha').ready_nodes, 1);
});

test('DELETE removes the row and the files inside the models directory only', async () => {
  let r = await http('DELETE', `${base()}/api/models/nope`, { headers: ctx.admin });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.code, 'model_not_found');
  r = await http('DELETE', `${base()}/api/models/${encodeURIComponent('../alpha')}`, { headers: ctx.admin });
  assert.equal(r.status, 404, r.text);
  r = await http('DELETE', `${base()}/api/models/a%20b`, { headers: ctx.admin });
  assert.equal(r.status, 404, r.text);

  r = await http('DELETE', `${base()}/api/models/beta`, { headers: ctx.admin });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { deleted: 'beta' });
  assert.equal(existsSync(files.beta), false, 'the file inside the models directory is gone');
  assert.equal(existsSync(path.dirname(files.beta)), false, 'and its emptied directory');
  r = await http('DELETE', `${base()}/api/models/gamma`, { headers: ctx.admin });
  assert.equal(r.status, 200, r.text);
  assert.equal(existsSync(files.gamma), true, 'a file registered in place outside is never deleted');
  assert.equal((await http('DELETE', `${base()}/api/models/beta`, { headers: ctx.admin })).status, 404);

  const ids = (await registered()).models.map((m) => m.id).sort();
  assert.deepEqual(ids, ['alpha', 'alpha-Q8_0']);
  const v1 = await http('GET', `${base()}/v1/models`, { headers: ctx.v1 });
  assert.ok(!v1.json.data.some((m) => m.id === 'beta' || m.id === 'gamma'));
});

test('a restart keeps the catalogue', async () => {
  const before = (await registered()).models;
  if (node) { await node.stop?.(); node = null; }
  await ctx.router.stop();
  ctx = await routerWithKey({ LLM_ROUTER_MODELS_DIR: models, LLM_ROUTER_DATA_DIR: dataDir });
  const after = (await registered()).models;
  const pick = (l) => l.map(({ id, sha256: s, size, info, created }) => ({ id, s, size, info, created })).sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(pick(after), pick(before));
  // and a discovery after the restart still knows what is registered
  const d = await http('POST', `${base()}/api/models/discover-gguf`, { headers: ctx.admin, body: {} });
  assert.equal(d.status, 200, d.text);
  assert.deepEqual(d.json.registered, []);
});
