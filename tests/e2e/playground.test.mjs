// The chat playground (/playground) in Debian's chromium through
// playwright-core, against the real router, a real llm-node with the
// generated tiny model, and two fake nodes (lib/fakenode.mjs): one that
// streams slowly (for the stop button), one whose answer is HTML (for
// injection). Covered: the answer streams token by token (its text grows
// across several animation frames before the stream ends), TTFT, tokens/s
// and the serving node are shown, stop aborts the stream (the node sees its
// connection close), the request then appears in the history page with its
// reassembled response, a model answer with <script> or <img onerror> is
// shown as text and runs nothing, the curl command is offered; no console
// errors, no request to another origin. Saves docs/screenshots/playground.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { buildDir, repoRoot, startNode, makeModel, tempDir, waitFor, http, cleanup } from './lib/harness.mjs';
import { routerWithKey, fakeNode, JOIN } from './lib/routerkit.mjs';
import { FakeNode } from './lib/fakenode.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM}`
  : !existsSync(nodeBin) ? `llm-node is not built (${nodeBin} missing)` : false;
const SHOTS = path.join(repoRoot, 'docs', 'screenshots');
const EVIL = 'Look: <script>window.__xss = 1; alert(1)</script> and <img src=x onerror="window.__xss = 2"> and '
  + '[click](javascript:window.__xss=3) **bold** `<b>code</b>`\n\n```html\n<script>window.__xss = 4</script>\n```\n';

// A fake node whose streamed answer is EVIL, in a few pieces.
class EvilNode extends FakeNode {
  async stream(res, body) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const pieces = EVIL.match(/[\s\S]{1,9}/g);
    for (const p of pieces) {
      res.write(`data: ${JSON.stringify({ id: 'evil', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })}\n\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
    res.write(`data: ${JSON.stringify({ id: 'evil', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  }
}

let ctx, node, model, slow, evil, browser, page, modelsDir;
const requests = [];
const consoleErrors = [];
const dialogs = [];

before(async () => {
  if (skip) return;
  ctx = await routerWithKey({});
  const file = makeModel('tiny');
  modelsDir = tempDir('llmr-models-');
  symlinkSync(file, path.join(modelsDir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: modelsDir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.find((x) => x.id === 'tiny' && x.ready_nodes > 0)?.id;
    return model;
  }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
  slow = await fakeNode(ctx.router, { name: 'slow-node', models: ['slow-model'], chunks: 400, chunkGapMs: 40 });
  evil = await new EvilNode({ routerUrl: ctx.router.url, joinToken: JOIN, name: 'evil-node', models: ['evil-model'] }).start();
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    const ids = (m.json?.data || []).map((x) => x.id);
    return ids.includes('slow-model') && ids.includes('evil-model');
  }, { timeoutMs: 10000, what: 'the fake nodes' });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  // sign in on the dashboard, as a user does; the playground shares the session
  await page.goto(`${ctx.router.url}/dashboard#/login`);
  await page.fill('#login-user', 'admin');
  await page.fill('#login-pass', 'admin-test-password');
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('[data-testid=current-user]');
  await page.goto(`${ctx.router.url}/playground`);
  try {
    await hasModel('tiny');
  } catch (e) {
    throw new Error(`the playground did not list the model: ${e.message}\nconsole: ${consoleErrors.join('\n')}\nselect: ${await page.locator("#pg-model").evaluate((e) => e.outerHTML)}`);
  }
});

after(async () => {
  await browser?.close();
  await slow?.stop();
  await evil?.stop();
  await node?.stop();
  await ctx?.router.stop();
  if (modelsDir) cleanup(modelsDir);
});

// option values are properties (preact), not always attributes
function hasModel(id) {
  return page.waitForFunction((v) => [...(document.querySelector('#pg-model')?.options || [])].some((o) => o.value === v), id);
}

async function setParam(name, value) {
  await page.fill(`[data-testid=pg-${name}]`, String(value));
}

// Sends text and records the last answer's text length at every animation
// frame until it is done (bounded: 30 s).
async function sendAndSample(text) {
  const before = await page.locator('[data-testid=pg-answer]').count();
  await page.evaluate((n) => {
    window.__samples = [];
    const t0 = performance.now();
    const tick = () => {
      const all = document.querySelectorAll('[data-testid=pg-answer]');
      const a = all.length > n ? all[all.length - 1] : null;
      const md = a && a.querySelector('.md');
      window.__samples.push({ len: md ? md.textContent.length : 0, done: a ? a.dataset.done === 'true' : false });
      if ((a && a.dataset.done === 'true') || performance.now() - t0 > 30000) return;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, before);
  await page.fill('[data-testid=pg-input]', text);
  await page.press('[data-testid=pg-input]', 'Enter');
  const answer = page.locator('[data-testid=pg-answer]').nth(before);
  await answer.and(page.locator('[data-done=true]')).waitFor({ timeout: 30000 });
  return { answer, samples: await page.evaluate(() => window.__samples) };
}

test('the answer streams token by token from the real llm-node; TTFT, tokens/s and the node shown', { skip }, async () => {
  await page.selectOption('[data-testid=pg-model]', 'tiny');
  await page.fill('[data-testid=pg-system]', 'You are terse.');
  await setParam('temperature', 0);
  await setParam('max_tokens', 300);
  await setParam('seed', 7);
  const { answer, samples } = await sendAndSample('Tell me a long story about routers.');
  // the text grew over several frames before the stream ended
  const growing = samples.filter((s) => !s.done).map((s) => s.len);
  const distinct = [...new Set(growing.filter((l) => l > 0))];
  assert.ok(distinct.length >= 3, `the text grew across ${distinct.length} frames only: ${JSON.stringify(growing.slice(0, 40))}`);
  for (let i = 1; i < growing.length; i++) assert.ok(growing[i] >= growing[i - 1], 'the text never shrinks while streaming');
  const finalLen = samples[samples.length - 1].len;
  assert.ok(finalLen >= distinct[distinct.length - 1]);
  assert.match(await answer.locator('[data-testid=pg-ttft]').innerText(), /^TTFT \d/);
  assert.match(await answer.locator('[data-testid=pg-tps]').innerText(), /tokens\/s$/);
  assert.match(await answer.locator('[data-testid=pg-tokens]').innerText(), /^\d+ tokens?$/);
  // the node: from the request's history record (the router names no node in a header)
  await waitFor(async () => /node: (?!–)/.test(await answer.locator('[data-testid=pg-node]').innerText()), { timeoutMs: 8000, what: 'the serving node' });
  const nodes = (await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json;
  const real = nodes.find((n) => n.available_models.includes('tiny'));
  const shown = (await answer.locator('[data-testid=pg-node]').innerText()).replace(/^node: /, '');
  assert.ok([real.machine_name, real.custom_name, real.id].includes(shown), `node shown: ${shown}`);
  // the request as curl: the JSON the playground sent, the key left to the reader
  const curl = await page.locator('[data-testid=pg-curl-text]').textContent();
  assert.match(curl, /^curl -N http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
  assert.match(curl, /Bearer \$LLM_ROUTER_API_KEY/);
  const json = JSON.parse(/-d '([\s\S]*)'$/.exec(curl)[1].replace(/'\\''/g, "'"));
  assert.equal(json.model, 'tiny');
  assert.equal(json.temperature, 0);
  assert.equal(json.max_tokens, 300);
  assert.equal(json.seed, 7);
  assert.equal(json.stream, true);
  assert.deepEqual(json.messages[0], { role: 'system', content: 'You are terse.' });
  assert.ok(!curl.includes(await page.evaluate(() => localStorage.getItem('llmr_token'))), 'the session token is not in the curl');
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'playground.png') });
});

test('the request appears in the history with its reassembled response', { skip }, async () => {
  const answer = page.locator('[data-testid=pg-answer]').last();
  const id = await answer.getAttribute('data-request-id');
  const shownText = await answer.locator('.md').textContent();
  const row = (await http('GET', `${ctx.router.url}/api/dashboard/request-responses/${id}`, { headers: ctx.admin })).json;
  const stored = row.response_body.choices[0].message.content;
  await page.goto(`${ctx.router.url}/dashboard#/history`);
  const link = page.locator(`[data-testid=history-table] a[href="#/history/${id}"]`);
  await link.waitFor();
  await link.click();
  await page.waitForSelector('[data-testid=history-answer]');
  const detail = await page.locator('[data-testid=history-answer] .convo-text').textContent();
  assert.equal(detail, stored, 'the detail shows the stored (reassembled) answer');
  assert.equal(row.stream, true);
  // what the playground showed came from the same tokens (Markdown aside)
  assert.ok(shownText.length > 0 && stored.length >= shownText.replace(/\s+/g, '').length / 2);
  assert.ok(stored.length > 0);
  assert.match(await page.locator('[data-testid=history-response]').textContent(), /"chat\.completion"/);
  await page.goto(`${ctx.router.url}/playground`);
  await hasModel('slow-model');
});

test('stop aborts the stream: partial text kept, marked stopped, the node sees the connection close', { skip }, async () => {
  await page.selectOption('[data-testid=pg-model]', 'slow-model');
  const closedBefore = slow.closedEarly;
  const n = await page.locator('[data-testid=pg-answer]').count();
  await page.fill('[data-testid=pg-input]', 'go slowly');
  await page.click('[data-testid=pg-send]');
  const answer = page.locator('[data-testid=pg-answer]').nth(n);
  await waitFor(async () => ((await answer.locator('.md').count()) ? (await answer.locator('.md').textContent()).includes('tok3') : false),
    { timeoutMs: 10000, what: 'a few tokens' });
  await page.click('[data-testid=pg-stop]');
  await answer.and(page.locator('[data-done=true]')).waitFor();
  assert.equal(await answer.locator('.badge', { hasText: 'stopped' }).count(), 1);
  const text = await answer.locator('.md').textContent();
  assert.ok(text.includes('tok3') && !text.includes('tok399'), text.slice(0, 80));
  await waitFor(() => slow.closedEarly > closedBefore, { timeoutMs: 5000, what: 'the node to see the stream closed' });
  assert.equal(await page.locator('[data-testid=pg-send]').count(), 1, 'the send button is back');
  assert.match(await answer.locator('[data-testid=pg-ttft]').innerText(), /^TTFT/);
});

test('a model answer with <script> and <img onerror> is shown as text and runs nothing', { skip }, async () => {
  await page.selectOption('[data-testid=pg-model]', 'evil-model');
  const n = await page.locator('[data-testid=pg-answer]').count();
  await page.fill('[data-testid=pg-input]', 'say something nasty');
  await page.press('[data-testid=pg-input]', 'Enter');
  const answer = page.locator('[data-testid=pg-answer]').nth(n);
  await answer.and(page.locator('[data-done=true]')).waitFor();
  const text = await answer.locator('.md').textContent();
  assert.ok(text.includes('<script>window.__xss = 1; alert(1)</script>'), text);
  assert.ok(text.includes('<img src=x onerror="window.__xss = 2">'), text);
  assert.equal(await answer.locator('script, img, iframe, [onerror]').count(), 0, 'no element came from the answer');
  assert.equal(await answer.locator('a[href^="javascript"]').count(), 0);
  assert.equal(await answer.locator('strong').textContent(), 'bold', 'Markdown still renders');
  assert.equal(await answer.locator('pre code').textContent(), '<script>window.__xss = 4</script>');
  await page.waitForTimeout(300); // an onerror would have fired by now
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(dialogs, []);
});

test('no console errors; every request went to the router', { skip }, async () => {
  assert.deepEqual(consoleErrors, []);
  const origin = ctx.router.url;
  const foreign = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, []);
  assert.ok(requests.some((u) => u.startsWith(`${origin}/v1/chat/completions`)));
});
