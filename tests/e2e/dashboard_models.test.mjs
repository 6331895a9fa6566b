// The dashboard's Models and Request history pages in Debian's chromium
// through playwright-core, against the real router, a real llm-node with the
// generated tiny model (it syncs the router's registered models), and the
// fake Hugging Face Hub (lib/fake_hf.mjs, throttled so that the download is
// seen moving). Covered: search the Hub and register a model in the UI, the
// progress bar moving to ready, the node then ready with it; discover a local
// GGUF file; a conversion's failure shown with its reason; an API error
// shown; delete after a confirmation; the history lists chats made through
// the router, filters (status, model, text) query the server, the detail of
// a stream shows the reassembled answer, CSV export of the filter downloads
// and parses; no console errors, no request to another origin. Saves
// docs/screenshots/models.png and history.png.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { buildDir, repoRoot, startNode, makeModel, tempDir, waitFor, http, cleanup } from './lib/harness.mjs';
import { routerWithKey, JOIN } from './lib/routerkit.mjs';
import { startFakeHf } from './lib/fake_hf.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM}`
  : !existsSync(nodeBin) ? `llm-node is not built (${nodeBin} missing)` : false;
const SHOTS = path.join(repoRoot, 'docs', 'screenshots');

let hub, ctx, node, nodeDir, browser, page;
const requests = [];
const consoleErrors = [];

/** RFC 4180 CSV: rows of fields (quoted fields may hold commas, quotes, CR and LF). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (c === '"') q = false; else f += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(f); f = ''; } else if (c === '\r' && text[i + 1] === '\n') { row.push(f); rows.push(row); row = []; f = ''; i++; } else if (c === '\n') { row.push(f); rows.push(row); row = []; f = ''; } else f += c;
  }
  if (f || row.length) { row.push(f); rows.push(row); }
  return rows;
}

before(async () => {
  if (skip) return;
  const q8 = makeModel('tiny', 'q8_0');
  hub = await startFakeHf();
  hub.addRepo('acme/tiny-GGUF', { files: [{ path: 'README.md', data: Buffer.from('# tiny\n') }, { path: 'tiny.Q8_0.gguf', file: q8 }], downloads: 500 });
  hub.addRepo('acme/other-GGUF', { files: [{ path: 'other.Q8_0.gguf', file: q8 }], downloads: 10 });
  ctx = await routerWithKey({ ...hub.env });
  nodeDir = tempDir('llmr-nodemodels-');
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: nodeDir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  await waitFor(async () => ((await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json || []).length === 1,
    { timeoutMs: 30000, what: 'the node registered' });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(`${ctx.router.url}/dashboard#/login`);
  await page.fill('#login-user', 'admin');
  await page.fill('#login-pass', 'admin-test-password');
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('[data-testid=current-user]');
});

after(async () => {
  await browser?.close();
  await node?.stop();
  await ctx?.router.stop();
  await hub?.close();
  if (nodeDir) cleanup(nodeDir);
});

const modelRow = (id) => page.locator('[data-testid=models-table] tbody tr', { has: page.locator('[data-testid=model-id]', { hasText: new RegExp(`^${id}$`) }) });

describe('models', () => {
  test('the page renders with its empty state, search finds GGUF repositories', { skip }, async () => {
    await page.goto(`${ctx.router.url}/dashboard#/models`);
    await page.waitForSelector('[data-testid=page-models]');
    await page.waitForSelector('[data-testid=models-table] .empty');
    await page.fill('[data-testid=hf-search]', 'acme');
    await page.click('[data-testid=hf-search-go]');
    const rows = page.locator('[data-testid=hf-results] tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 2);
    assert.match(await rows.first().innerText(), /acme\/tiny-GGUF/, 'most downloaded first');
    await rows.first().locator('[data-testid=hf-use]').click();
    assert.equal(await page.inputValue('[data-testid=register-repo]'), 'acme/tiny-GGUF');
  });

  test('register in the UI: the progress bar moves to ready, the node gets the model', { skip }, async () => {
    hub.mode.rateBps = 60000; // ~2.7 s for the 160 KB model: the bar is seen moving
    await page.click('[data-testid=register-submit]');
    const task = page.locator('[data-testid=tasks-download] [data-testid=task]').first();
    await task.waitFor();
    // progress seen part way, then ready (bounded by the waits' timeouts)
    const seen = new Set();
    await waitFor(async () => {
      const st = await task.getAttribute('data-state');
      const bar = task.locator('[data-testid=task-progress] [role=progressbar]');
      const now = Number(await bar.getAttribute('aria-valuenow'));
      const max = Number(await bar.getAttribute('aria-valuemax'));
      if (st === 'downloading' && now > 0 && now < max) seen.add('partial');
      return st === 'ready' || st === 'failed';
    }, { timeoutMs: 30000, intervalMs: 100, what: 'the download to finish' });
    assert.equal(await task.getAttribute('data-state'), 'ready', await task.innerText());
    assert.ok(seen.has('partial'), 'the bar was seen between 0 and 100%');
    const bar = task.locator('[data-testid=task-progress] [role=progressbar]');
    assert.equal(await bar.getAttribute('aria-valuenow'), await bar.getAttribute('aria-valuemax'));
    // the catalogue was read again: the model is listed with its size and quantisation
    const row = modelRow('tiny');
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /Q8_0/i);
    assert.match(text, /\b1\d\d(\.\d)? KB\b/);
    assert.match(text, /acme\/tiny-GGUF/);
    // the node pulls it (model sync) and the readiness column says so
    await waitFor(async () => /1\s*ready of 1 node/.test(await row.locator('[data-testid=model-readiness]').innerText()),
      { timeoutMs: 30000, intervalMs: 250, what: 'the node to be ready with the model' });
    assert.match(await row.locator('[data-testid=model-readiness]').innerText(), /ready/);
    hub.mode.rateBps = 0;
  });

  test('an API error is shown: a repository the Hub does not have', { skip }, async () => {
    await page.fill('[data-testid=register-repo]', 'acme/missing-GGUF');
    await page.click('[data-testid=register-submit]');
    const err = page.locator('[data-testid=register-error]');
    await err.waitFor();
    assert.ok((await err.innerText()).length > 5);
  });

  test('discover a local GGUF file in the router\'s models directory', { skip }, async () => {
    const dir = path.join(ctx.router.dataDir, 'models');
    mkdirSync(dir, { recursive: true });
    copyFileSync(makeModel('tiny', 'q4_0'), path.join(dir, 'local-tiny.Q4_0.gguf'));
    await page.click('[data-testid=discover-run]');
    const res = page.locator('[data-testid=discover-result]');
    await res.waitFor();
    assert.match(await res.innerText(), /Registered: local-tiny/);
    await modelRow('local-tiny').waitFor();
    assert.match(await modelRow('local-tiny').innerText(), /local file|local-tiny/);
  });

  test('a conversion without a converter fails, its reason shown', { skip }, async () => {
    await page.fill('[data-testid=convert-repo]', 'acme/tiny-GGUF');
    await page.click('[data-testid=convert-submit]');
    const t = page.locator('[data-testid=tasks-convert] [data-testid=task]').first();
    await t.waitFor();
    assert.equal(await t.getAttribute('data-state'), 'failed');
    assert.match(await t.locator('[data-testid=task-error]').innerText(), /LLM_ROUTER_CONVERTER/);
    assert.equal(await t.locator('[data-testid=task-log]').count(), 1, 'the log is offered');
  });

  test('delete asks first, then the model goes', { skip }, async () => {
    mkdirSync(SHOTS, { recursive: true });
    // the whole page in one viewport (a full-page capture repeats the sticky header)
    await page.setViewportSize({ width: 1280, height: 1300 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, 'models.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
    const row = modelRow('local-tiny');
    await row.locator('[data-testid=model-delete]').click();
    // cancel first: nothing happens
    await page.locator('.modal').getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await row.count(), 1);
    await row.locator('[data-testid=model-delete]').click();
    await page.click('[data-testid=confirm-ok]');
    await row.waitFor({ state: 'detached' });
    const reg = await http('GET', `${ctx.router.url}/api/models/registered`, { headers: ctx.admin });
    assert.deepEqual(reg.json.models.map((m) => m.id), ['tiny']);
    assert.ok(!existsSync(path.join(ctx.router.dataDir, 'models', 'local-tiny.Q4_0.gguf')), 'the file inside the models directory went too');
  });
});

describe('request history', () => {
  let streamText;
  before(async () => {
    if (skip) return;
    await waitFor(async () => {
      const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
      return (m.json?.data || []).some((x) => x.id === 'tiny' && x.ready_nodes > 0);
    }, { timeoutMs: 30000, what: 'tiny ready on the node' });
    await ctx.openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'plain question' }], max_tokens: 8 }, { headers: { 'X-Request-Id': 'e2e-ui-plain' } });
    const s = await ctx.openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'streamed question' }], max_tokens: 16, temperature: 0, stream: true },
      { headers: { 'X-Request-Id': 'e2e-ui-stream' } });
    streamText = '';
    for await (const c of s) streamText += c.choices?.[0]?.delta?.content || '';
    await assert.rejects(ctx.openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Request-Id': 'e2e-ui-error' } }));
    await waitFor(async () => (await http('GET', `${ctx.router.url}/api/dashboard/request-responses`, { headers: ctx.admin })).json.total >= 3,
      { timeoutMs: 10000, what: 'three recorded requests' });
  });

  const rows = () => page.locator('[data-testid=history-table] tbody tr');
  async function rowIds() {
    return page.locator('[data-testid=history-table] tbody tr a').evaluateAll((as) => as.map((a) => decodeURIComponent(a.getAttribute('href').replace('#/history/', ''))));
  }

  test('the list shows the chats made through the router', { skip }, async () => {
    await page.goto(`${ctx.router.url}/dashboard#/history`);
    await rows().first().waitFor();
    const ids = await rowIds();
    for (const id of ['e2e-ui-plain', 'e2e-ui-stream', 'e2e-ui-error']) assert.ok(ids.includes(id), `${id} in ${ids}`);
    assert.match(await page.locator('[data-testid=history-total]').innerText(), /^3 requests$/);
    await page.screenshot({ path: path.join(SHOTS, 'history.png') });
  });

  test('filters query the server: status, model, text', { skip }, async () => {
    await page.selectOption('[data-testid=filter-status]', 'error');
    await waitFor(async () => JSON.stringify(await rowIds()) === JSON.stringify(['e2e-ui-error']), { timeoutMs: 5000, what: 'only the error' });
    await page.selectOption('[data-testid=filter-status]', '');
    await page.selectOption('[data-testid=filter-model]', 'tiny');
    await waitFor(async () => (await rowIds()).sort().join() === 'e2e-ui-plain,e2e-ui-stream', { timeoutMs: 5000, what: 'the tiny model\'s two' })
      .catch(async (e) => { throw new Error(`${e.message}: ${await rowIds()} ${requests.filter((u) => u.includes('request-responses')).join(' ')}`); });
    await page.fill('[data-testid=filter-q]', 'streamed');
    await page.click('[data-testid=filter-apply]');
    await waitFor(async () => (await rowIds()).join() === 'e2e-ui-stream', { timeoutMs: 5000, what: 'the text match' });
    assert.ok(requests.some((u) => u.includes('/api/dashboard/request-responses?') && u.includes('q=streamed') && u.includes('model=tiny')), 'the filter went to the server');
  });

  test('CSV export of the current filter downloads and parses', { skip }, async () => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=history-export]')]);
    assert.match(dl.suggestedFilename(), /^request-history-.*\.csv$/);
    const file = await dl.path();
    const rowsCsv = parseCsv(readFileSync(file, 'utf8'));
    assert.equal(rowsCsv[0][0], 'id');
    assert.ok(rowsCsv[0].includes('response_body'));
    assert.equal(rowsCsv.length, 2, 'the header and the one row of the filter');
    const rec = Object.fromEntries(rowsCsv[0].map((k, i) => [k, rowsCsv[1][i]]));
    assert.equal(rec.id, 'e2e-ui-stream');
    assert.equal(rec.model, 'tiny');
    assert.equal(rec.stream, 'true');
    assert.equal(JSON.parse(rec.response_body).choices[0].message.content, streamText);
  });

  test('the detail of a stream shows the reassembled answer and both bodies', { skip }, async () => {
    await rows().first().click();
    await page.waitForSelector('[data-testid=page-history-detail] [data-testid=history-answer]');
    assert.equal(await page.locator('[data-testid=history-answer] .convo-text').textContent(), streamText);
    const req = await page.locator('[data-testid=history-request] pre').textContent();
    assert.equal(JSON.parse(req).messages[0].content, 'streamed question');
    const res = JSON.parse(await page.locator('[data-testid=history-response] pre').textContent());
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0].message.content, streamText);
    assert.match(await page.locator('[data-testid=page-history-detail]').innerText(), /yes \(stored reassembled\)/);
    // back keeps the filter
    await page.click('[data-testid=history-back]');
    await waitFor(async () => (await rowIds()).join() === 'e2e-ui-stream', { timeoutMs: 5000, what: 'the filtered list again' });
    assert.equal(await page.inputValue('[data-testid=filter-q]'), 'streamed');
  });

  test('an unknown id says so', { skip }, async () => {
    await page.goto(`${ctx.router.url}/dashboard#/history/no-such-request`);
    await page.waitForSelector('[data-testid=page-history-detail] .empty');
    assert.match(await page.locator('[data-testid=page-history-detail]').innerText(), /No recorded request has this id/);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !/404/.test(e))); // the browser logs that 404
  });
});

test('no console errors; every request went to the router', { skip }, async () => {
  // the register of a missing repository is a 404 the browser logs as a failed load
  const real = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e));
  assert.deepEqual(real, []);
  const origin = ctx.router.url;
  const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, []);
});
