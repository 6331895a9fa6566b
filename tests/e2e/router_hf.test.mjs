// Hugging Face registration, download tasks and conversion through the real
// router (issue 15 items 2 and 4). The Hub is lib/fake_hf.mjs (the Hub's
// wire format: model info, tree with LFS sha256, resolve answering 302 to a
// second "CDN" port that honours Range, the Hub's errors, misbehaviour on
// demand, a request log); the models are GGUFs made by mkgguf. Covered:
// register with and without filename (the quantisation preference), progress
// to ready, the model in /api/models/registered and /v1/models with its
// file under the models directory; a download cut halfway resumes with Range;
// corrupt bytes fail the SHA-256 check and leave no file; a router restart
// mid-download resumes; a missing repository (404), a gated one (403 naming
// HF_TOKEN), a rate limit (429 with Retry-After), answered by the POST itself;
// cancel (the part file goes); HF_TOKEN reaches the Hub and never the CDN;
// search; conversion with a fake converter (success registered, failure with
// its log, cancel kills its process group) and with none configured.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { routerWithKey } from './lib/routerkit.mjs';
import { http, waitFor, tempDir, makeModel, startRouter, cleanup } from './lib/harness.mjs';
import { startFakeHf, HF_TEST_TOKEN } from './lib/fake_hf.mjs';

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const TERMINAL = new Set(['ready', 'failed', 'cancelled']);

let hub; let ctx; let q8; let q4; let work;

// The fake converter: reads what to do from <input>/behaviour.txt ("ok",
// "fail", "hang"), takes convert_hf_to_gguf.py's arguments.
const CONVERTER = `#!/bin/bash
in="$1"; shift
out=""; outtype=""
while [ $# -gt 0 ]; do
  case "$1" in --outfile) out="$2"; shift 2;; --outtype) outtype="$2"; shift 2;; *) shift;; esac
done
b=$(cat "$in/behaviour.txt")
echo "fake converter: input=$in outtype=$outtype env_out=$LLM_ROUTER_CONVERT_OUTPUT token=\${HF_TOKEN:-none}"
case "$b" in
  ok) cp "$in/model.safetensors" "$out"; echo "wrote $out";;
  fail) echo "Traceback: something broke in the converter" >&2; exit 3;;
  hang) sleep 300 & echo $! > "$(cat "$in/pidfile.txt")"; echo "hanging"; wait;;
esac
`;

async function task(c, id) {
  const r = await http('GET', `${c.router.url}/api/models/tasks/${id}`, { headers: c.admin });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function finished(c, id, timeoutMs = 30000) {
  return waitFor(async () => { const t = await task(c, id); return TERMINAL.has(t.state) && t; }, { timeoutMs, intervalMs: 100, what: `task ${id} to finish` });
}
function register(c, body) {
  return http('POST', `${c.router.url}/api/models/register`, { headers: c.admin, body });
}
function modelsDir(c) { return path.join(c.router.dataDir, 'models'); }

before(async () => {
  q8 = makeModel('tiny', 'q8_0');
  q4 = makeModel('tiny', 'q4_0');
  hub = await startFakeHf();
  hub.addRepo('acme/tiny-GGUF', {
    files: [
      { path: 'README.md', data: Buffer.from('# tiny\n') },
      { path: 'tiny.Q8_0.gguf', file: q8 },
      { path: 'tiny.Q4_K_M.gguf', file: q4 },
      { path: '.gitattributes', data: Buffer.from('*.gguf filter=lfs\n') },
    ],
  });
  hub.addRepo('acme/other-GGUF', {
    files: [{ path: 'a/config.json', data: Buffer.from('{}') }, { path: 'b/notes.txt', data: Buffer.from('x') }, { path: 'other.Q4_0.gguf', file: q4 }],
  });
  hub.addRepo('acme/slow-GGUF', { files: [{ path: 'slow.Q8_0.gguf', file: q8 }] });
  hub.addRepo('acme/bad-GGUF', { files: [{ path: 'bad.Q8_0.gguf', file: q8 }] });
  hub.addRepo('acme/cut-GGUF', { files: [{ path: 'cut.Q8_0.gguf', file: q8 }] });
  hub.addRepo('acme/gated-GGUF', { gated: true, files: [{ path: 'gated.Q8_0.gguf', file: q8 }] });
  work = tempDir('llmr-hf-');
  writeFileSync(path.join(work, 'convert.sh'), CONVERTER);
  chmodSync(path.join(work, 'convert.sh'), 0o755);
  for (const b of ['ok', 'fail', 'hang']) {
    hub.addRepo(`acme/conv-${b}`, {
      files: [
        { path: 'config.json', data: Buffer.from('{"architectures":["LlamaForCausalLM"]}') },
        { path: 'behaviour.txt', data: Buffer.from(b) },
        { path: 'pidfile.txt', data: Buffer.from(path.join(work, 'child.pid')) },
        { path: 'model.safetensors', file: q8 }, // the fake "converts" by copying
        { path: 'pytorch_model.bin', data: crypto.randomBytes(1000) }, // skipped: safetensors are there
      ],
    });
  }
  ctx = await routerWithKey({
    ...hub.env, HF_TOKEN: HF_TEST_TOKEN, LLM_ROUTER_LOG_LEVEL: 'info',
    LLM_ROUTER_CONVERTER: path.join(work, 'convert.sh'), LLM_ROUTER_CONVERT_TIMEOUT: '60',
  });
});
after(async () => {
  await ctx?.router.stop();
  await hub?.close();
  cleanup(work);
});

describe('register', () => {
  let readyTask;
  test('without filename: Q4_K_M preferred, progress to ready, file in place, token only to the Hub', async () => {
    hub.reset();
    const r = await register(ctx, { repo: 'acme/tiny-GGUF' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.filename, 'tiny.Q4_K_M.gguf');
    assert.equal(r.json.model_id, 'tiny');
    assert.equal(r.json.kind, 'download');
    assert.equal(r.json.bytes_total, statSync(q4).size);
    assert.ok(['queued', 'downloading'].includes(r.json.state));
    const t = await finished(ctx, r.json.id);
    assert.equal(t.state, 'ready', JSON.stringify(t));
    assert.equal(t.bytes_done, t.bytes_total);
    assert.equal(t.model_id, 'tiny');
    readyTask = t;
    const file = path.join(modelsDir(ctx), 'tiny', 'tiny.Q4_K_M.gguf');
    assert.equal(sha256(readFileSync(file)), sha256(readFileSync(q4)));
    assert.ok(!existsSync(`${file}.part`));
    // in the catalogue, with its source
    const reg = await http('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
    const m = reg.json.models.find((x) => x.id === 'tiny');
    assert.ok(m, reg.text);
    assert.equal(m.sha256, sha256(readFileSync(q4)));
    assert.deepEqual(m.source, { repo: 'acme/tiny-GGUF', revision: 'main', file: 'tiny.Q4_K_M.gguf' });
    const v1 = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    assert.ok(v1.json.data.some((x) => x.id === 'tiny'), v1.text);
    // the token went to the Hub, never to the CDN; the file came from the CDN at the commit
    const hubReqs = hub.log.filter((e) => e.server === 'hub');
    const cdnReqs = hub.log.filter((e) => e.server === 'cdn');
    assert.ok(hubReqs.length >= 3);
    for (const e of hubReqs) assert.equal(e.headers.authorization, `Bearer ${HF_TEST_TOKEN}`, e.path);
    assert.ok(cdnReqs.length >= 1);
    for (const e of cdnReqs) assert.equal(e.headers.authorization, undefined);
    assert.ok(hubReqs.some((e) => e.path.includes('/resolve/') && e.method === 'GET' && /[0-9a-f]{40}/.test(e.path)));
    // the token is in no log line and no task
    assert.ok(!ctx.router.output().includes(HF_TEST_TOKEN));
    assert.ok(!JSON.stringify(t).includes(HF_TEST_TOKEN));
  });

  test('again while registered: 409 naming the model', async () => {
    const r = await register(ctx, { repo: 'acme/tiny-GGUF' });
    assert.equal(r.status, 409, r.text);
    assert.match(r.json.error.message, /already registered as tiny/);
  });

  test('with filename: the other quantisation gets an id keeping its tag', async () => {
    const r = await register(ctx, { repo: 'acme/tiny-GGUF', filename: 'tiny.Q8_0.gguf', revision: 'main' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.model_id, 'tiny-Q8_0');
    const t = await finished(ctx, r.json.id);
    assert.equal(t.state, 'ready', JSON.stringify(t));
    assert.ok(existsSync(path.join(modelsDir(ctx), 'tiny-Q8_0', 'tiny.Q8_0.gguf')));
    const list = await http('GET', `${ctx.router.url}/api/models/tasks`, { headers: ctx.admin });
    assert.ok(list.json.tasks.some((x) => x.id === readyTask.id));
  });

  test('bad input: 400 before the Hub is asked', async () => {
    hub.reset();
    for (const body of [{}, { repo: 5 }, { repo: '../etc' }, { repo: 'a/b/c' }, { repo: 'acme/tiny-GGUF', filename: '../../x.gguf' }, { repo: 'acme/tiny-GGUF', revision: '' }]) {
      const r = await register(ctx, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    assert.equal(hub.log.length, 0);
    const r = await register(ctx, { repo: 'acme/tiny-GGUF', filename: 'README.md' });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /not a GGUF/);
  });

  test('a missing repository, file or revision: 404 from the POST', async () => {
    let r = await register(ctx, { repo: 'acme/nope-GGUF' });
    assert.equal(r.status, 404, r.text);
    assert.match(r.json.error.message, /repository not found: acme\/nope-GGUF/);
    r = await register(ctx, { repo: 'acme/tiny-GGUF', filename: 'nope.gguf' });
    assert.equal(r.status, 404, r.text);
    assert.match(r.json.error.message, /file not found/);
    r = await register(ctx, { repo: 'acme/tiny-GGUF', revision: 'v9' });
    assert.equal(r.status, 404, r.text);
    assert.match(r.json.error.message, /revision not found/);
  });

  test('a gated repository without an accepted token: 403 naming HF_TOKEN; with it, it downloads', async () => {
    const bare = await routerWithKey({ ...hub.env });
    try {
      const r = await register(bare, { repo: 'acme/gated-GGUF' });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.error.code, 'gated_repository');
      assert.match(r.json.error.message, /HF_TOKEN/);
      const list = await http('GET', `${bare.router.url}/api/models/tasks`, { headers: bare.admin });
      assert.equal(list.json.tasks.length, 0);
    } finally { await bare.router.stop(); }
    const r = await register(ctx, { repo: 'acme/gated-GGUF' });
    assert.equal(r.status, 202, r.text);
    assert.equal((await finished(ctx, r.json.id)).state, 'ready');
  });

  test('rate limited: 429 with Retry-After', async () => {
    hub.reset();
    hub.mode.rateLimit = 1;
    const r = await register(ctx, { repo: 'acme/other-GGUF' });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers.get('retry-after'), '7');
    assert.match(r.json.error.message, /rate limited/);
  });

  test('paginated tree listings are followed (Link: rel="next")', async () => {
    hub.reset();
    hub.mode.pageSize = 1;
    const r = await register(ctx, { repo: 'acme/other-GGUF' });
    assert.equal(r.status, 202, r.text);
    hub.mode.pageSize = 0;
    const t = await finished(ctx, r.json.id);
    assert.equal(t.state, 'ready');
    assert.equal(r.json.filename, 'other.Q4_0.gguf');
    // three files and two directories, one entry a page
    const pages = hub.log.filter((e) => e.path.includes('/tree/'));
    assert.equal(pages.length, 5, JSON.stringify(pages.map((e) => e.query)));
    assert.deepEqual(pages.map((e) => e.query.cursor ?? '0'), ['0', '1', '2', '3', '4']);
  });
});

describe('transfers', () => {
  test('a connection cut halfway resumes with Range', async () => {
    hub.reset();
    hub.mode.dropAfter = 70000;
    const r = await register(ctx, { repo: 'acme/cut-GGUF' });
    assert.equal(r.status, 202, r.text);
    const t = await finished(ctx, r.json.id);
    assert.equal(t.state, 'ready', JSON.stringify(t));
    const cdn = hub.log.filter((e) => e.server === 'cdn' && e.method === 'GET');
    assert.ok(cdn.length >= 2, JSON.stringify(cdn.map((e) => e.range)));
    assert.equal(cdn[0].range, null);
    const resumed = cdn.find((e) => e.range && /^bytes=(\d+)-$/.test(e.range));
    assert.ok(resumed, 'a request carried Range');
    assert.ok(Number(/^bytes=(\d+)-$/.exec(resumed.range)[1]) > 0);
    assert.equal(resumed.status, 206);
    const file = path.join(modelsDir(ctx), t.model_id, 'cut.Q8_0.gguf');
    assert.equal(sha256(readFileSync(file)), sha256(readFileSync(q8)));
  });

  test('corrupt bytes fail the SHA-256 check and leave no file', async () => {
    hub.reset();
    hub.mode.corrupt = true;
    const r = await register(ctx, { repo: 'acme/bad-GGUF' });
    assert.equal(r.status, 202, r.text);
    const t = await finished(ctx, r.json.id);
    hub.mode.corrupt = false;
    assert.equal(t.state, 'failed');
    assert.match(t.error, /checksum mismatch/);
    const dir = path.join(modelsDir(ctx), t.model_id);
    assert.ok(!existsSync(dir) || readdirSync(dir).length === 0, existsSync(dir) ? readdirSync(dir).join(',') : '');
    const reg = await http('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
    assert.ok(!reg.json.models.some((m) => m.id === t.model_id));
  });

  test('cancel stops the transfer and removes the part file; a second DELETE drops the record', async () => {
    hub.reset();
    hub.mode.rateBps = 16384;
    const r = await register(ctx, { repo: 'acme/slow-GGUF' });
    assert.equal(r.status, 202, r.text);
    const id = r.json.id;
    const part = path.join(modelsDir(ctx), r.json.model_id, 'slow.Q8_0.gguf.part');
    await waitFor(async () => (await task(ctx, id)).bytes_done > 0 && existsSync(part), { timeoutMs: 15000, what: 'bytes' });
    const mid = await task(ctx, id);
    assert.equal(mid.state, 'downloading');
    assert.ok(mid.speed_bps > 0 || mid.bytes_done > 0);
    const d = await http('DELETE', `${ctx.router.url}/api/models/tasks/${id}`, { headers: ctx.admin });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.state, 'cancelled');
    hub.mode.rateBps = 0;
    assert.ok(!existsSync(part));
    const n = hub.log.length;
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(hub.log.length, n, 'no request after the cancel');
    assert.equal((await task(ctx, id)).state, 'cancelled');
    const d2 = await http('DELETE', `${ctx.router.url}/api/models/tasks/${id}`, { headers: ctx.admin });
    assert.equal(d2.status, 204);
    const g = await http('GET', `${ctx.router.url}/api/models/tasks/${id}`, { headers: ctx.admin });
    assert.equal(g.status, 404);
  });

  test('a router restart mid-download resumes the task', async () => {
    const dataDir = tempDir('llmr-hf-restart-');
    const env = { ...hub.env, LLM_ROUTER_DATA_DIR: dataDir, LLM_ROUTER_JOIN_TOKEN: 'jt_x_0123456789abcdef' };
    let c = await routerWithKey(env);
    hub.reset();
    hub.mode.rateBps = 16384;
    const r = await register(c, { repo: 'acme/slow-GGUF' });
    assert.equal(r.status, 202, r.text);
    const id = r.json.id;
    await waitFor(async () => (await task(c, id)).bytes_done >= 32768, { timeoutMs: 15000, what: 'bytes' });
    await c.router.stop();
    hub.mode.rateBps = 0;
    const before = hub.log.length;
    c = await routerWithKey(env);
    try {
      const t = await finished(c, id);
      assert.equal(t.state, 'ready', JSON.stringify(t));
      const after = hub.log.slice(before).filter((e) => e.server === 'cdn');
      assert.ok(after.some((e) => e.range && /^bytes=[1-9]\d*-$/.test(e.range) && e.status === 206), JSON.stringify(after.map((e) => e.range)));
      const file = path.join(dataDir, 'models', t.model_id, 'slow.Q8_0.gguf');
      assert.equal(sha256(readFileSync(file)), sha256(readFileSync(q8)));
      const reg = await http('GET', `${c.router.url}/api/models/registered`, { headers: c.admin });
      assert.ok(reg.json.models.some((m) => m.id === t.model_id));
    } finally {
      await c.router.stop();
      cleanup(dataDir);
    }
  });
});

describe('limits', () => {
  test('LLM_ROUTER_MODEL_DOWNLOADS bounds the tasks running at once; LLM_ROUTER_CONVERT_TIMEOUT kills a converter', async () => {
    const c = await routerWithKey({
      ...hub.env, LLM_ROUTER_MODEL_DOWNLOADS: '1',
      LLM_ROUTER_CONVERTER: path.join(work, 'convert.sh'), LLM_ROUTER_CONVERT_TIMEOUT: '2',
    });
    try {
      hub.reset();
      hub.mode.rateBps = 16384;
      const a = await register(c, { repo: 'acme/slow-GGUF' });
      const b = await register(c, { repo: 'acme/cut-GGUF' });
      assert.equal(a.status, 202, a.text);
      assert.equal(b.status, 202, b.text);
      await waitFor(async () => (await task(c, a.json.id)).bytes_done > 0, { timeoutMs: 15000, what: 'the first task running' });
      assert.equal((await task(c, b.json.id)).state, 'queued');
      assert.ok(!hub.log.some((e) => e.method === 'GET' && e.path.includes('/resolve/') && e.path.includes('cut.Q8_0.gguf')), 'the second waits');
      // the same repository and file again while active: that task, 200
      const again = await register(c, { repo: 'acme/slow-GGUF' });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.id, a.json.id);
      for (const id of [a.json.id, b.json.id]) {
        const d = await http('DELETE', `${c.router.url}/api/models/tasks/${id}`, { headers: c.admin });
        assert.equal(d.status, 200, d.text);
        assert.equal(d.json.state, 'cancelled');
      }
      hub.mode.rateBps = 0;
      const pidfile = path.join(work, 'child.pid');
      cleanup(pidfile);
      const cv = await http('POST', `${c.router.url}/api/models/convert`, { headers: c.admin, body: { repo: 'acme/conv-hang' } });
      assert.equal(cv.status, 202, cv.text);
      const t = await finished(c, cv.json.id, 30000);
      assert.equal(t.state, 'failed');
      assert.match(t.error, /longer than 2 s \(LLM_ROUTER_CONVERT_TIMEOUT\)/);
      assert.match(t.log, /hanging/);
      const child = Number(readFileSync(pidfile, 'utf8').trim());
      await waitFor(() => { try { process.kill(child, 0); return false; } catch (e) { return e.code === 'ESRCH'; } }, { timeoutMs: 8000, what: 'the child to be gone' });
    } finally { await c.router.stop(); }
  });
});

describe('search', () => {
  test('GGUF repositories from the Hub, bounded by limit', async () => {
    const r = await http('GET', `${ctx.router.url}/api/models/available?source=hf&search=acme&limit=3`, { headers: ctx.admin });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.source, 'hf');
    assert.equal(r.json.models.length, 3);
    for (const m of r.json.models) assert.match(m.repo, /^acme\//);
    assert.ok(!r.json.models.some((m) => m.repo.startsWith('acme/conv-')), 'non-GGUF repositories are not listed');
    const all = await http('GET', `${ctx.router.url}/api/models/available?source=hf&search=GGUF&limit=100`, { headers: ctx.admin });
    assert.equal(all.json.models.length, 6);
    assert.equal(all.json.models.find((m) => m.repo === 'acme/gated-GGUF').gated, true);
    const bad = await http('GET', `${ctx.router.url}/api/models/available?source=civitai`, { headers: ctx.admin });
    assert.equal(bad.status, 400);
  });
});

describe('convert', () => {
  function convert(c, body) {
    return http('POST', `${c.router.url}/api/models/convert`, { headers: c.admin, body });
  }
  test('success: the converter\'s GGUF is registered, its output in the log, no secrets in its environment', async () => {
    hub.reset();
    const r = await convert(ctx, { repo: 'acme/conv-ok', outtype: 'q8_0', name: 'conv-ok' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.kind, 'convert');
    const t = await waitFor(async () => {
      const x = (await http('GET', `${ctx.router.url}/api/models/convert/${r.json.id}`, { headers: ctx.admin })).json;
      return TERMINAL.has(x.state) && x;
    }, { timeoutMs: 30000, what: 'convert' });
    assert.equal(t.state, 'ready', JSON.stringify(t));
    assert.equal(t.model_id, 'conv-ok');
    assert.match(t.log, /fake converter: input=.*outtype=q8_0/);
    assert.match(t.log, /env_out=.*conv-ok\.Q8_0\.gguf/);
    assert.match(t.log, /token=none/);
    assert.ok(!hub.log.some((e) => e.path.endsWith('pytorch_model.bin')), 'duplicate weights not fetched');
    const reg = await http('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
    const m = reg.json.models.find((x) => x.id === 'conv-ok');
    assert.ok(m, reg.text);
    assert.equal(m.sha256, sha256(readFileSync(q8)));
    assert.ok(existsSync(path.join(modelsDir(ctx), 'conv-ok', 'conv-ok.Q8_0.gguf')));
    assert.ok(!existsSync(path.join(modelsDir(ctx), '.convert', r.json.id)), 'the work directory is gone');
    const list = await http('GET', `${ctx.router.url}/api/models/convert`, { headers: ctx.admin });
    assert.ok(list.json.tasks.every((x) => x.kind === 'convert'));
    assert.ok(list.json.tasks.some((x) => x.id === r.json.id));
  });

  test('failure: the task fails with the converter\'s output kept', async () => {
    const r = await convert(ctx, { repo: 'acme/conv-fail' });
    assert.equal(r.status, 202, r.text);
    const t = await finished(ctx, r.json.id);
    assert.equal(t.state, 'failed');
    assert.match(t.error, /exited with status 3/);
    assert.match(t.log, /Traceback: something broke/);
  });

  test('cancel kills the converter\'s whole process group', async () => {
    const pidfile = path.join(work, 'child.pid');
    cleanup(pidfile);
    const r = await convert(ctx, { repo: 'acme/conv-hang' });
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim() && (await task(ctx, r.json.id)).state === 'converting', { timeoutMs: 20000, what: 'converter running' });
    const child = Number(readFileSync(pidfile, 'utf8').trim());
    assert.doesNotThrow(() => process.kill(child, 0), 'the child runs');
    const d = await http('DELETE', `${ctx.router.url}/api/models/convert/${r.json.id}`, { headers: ctx.admin });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.state, 'cancelled');
    await waitFor(() => { try { process.kill(child, 0); return false; } catch (e) { return e.code === 'ESRCH'; } }, { timeoutMs: 8000, what: 'the child to be gone' });
    assert.ok(!existsSync(path.join(modelsDir(ctx), '.convert', r.json.id)));
  });

  test('no converter configured: the task fails at once naming LLM_ROUTER_CONVERTER', async () => {
    const bare = await routerWithKey({ ...hub.env });
    try {
      const r = await convert(bare, { repo: 'acme/conv-ok' });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.json.state, 'failed');
      assert.match(r.json.error, /LLM_ROUTER_CONVERTER/);
      const bad = await convert(bare, { repo: 'acme/conv-ok', outtype: 'q2' });
      assert.equal(bad.status, 400);
    } finally { await bare.router.stop(); }
  });
});
