// The dashboard's operator pages in a real browser (Debian's chromium via
// playwright-core): sign-in, overview, nodes and a node's detail, logs,
// users and API keys, against a real router, a real llm-node with the tiny
// model and two fake nodes. Every page: rendered with real data, no console
// errors, no request to another origin. Screenshots go to the artifacts
// folder and docs/screenshots/. Skips (with a reason) without chromium or
// llm-node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { buildDir, repoRoot, startNode, makeModel, tempDir, waitFor, http } from './lib/harness.mjs';
import { routerWithKey, fakeNode, JOIN } from './lib/routerkit.mjs';
import { openBrowser, signIn, signInAsAdmin, assertSameOrigin, assertNoConsoleErrors, screenshot, CHROMIUM } from './lib/browser.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} missing (apt-get install chromium)`
  : !existsSync(nodeBin) ? `llm-node is not built (${nodeBin} missing)` : false;
const docsDir = path.join(repoRoot, 'docs', 'screenshots');
// a 401 answer is logged by chromium itself ("Failed to load resource"):
// expected where the test provokes one
const ALLOW_401 = [/status of 401/];

let ctx, node, fakes = [], model, admin, realId;
const viewer = { username: 'viewer1', password: 'viewer-password-1' };

async function shot(page, name, opts) {
  // toasts of earlier steps would cover the page: dismiss them first
  await page.evaluate(() => document.querySelectorAll('.toast .btn-icon').forEach((b) => b.click()));
  const file = await screenshot(page, name, opts);
  mkdirSync(docsDir, { recursive: true });
  copyFileSync(file, path.join(docsDir, `${name}.png`));
}

before(async () => {
  if (skip) return;
  ctx = await routerWithKey({ LLM_ROUTER_LOG_LEVEL: 'info' });
  const file = makeModel('tiny');
  const dir = tempDir('llmr-models-');
  const { symlinkSync } = await import('node:fs');
  symlinkSync(file, path.join(dir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  fakes.push(await fakeNode(ctx.router, { name: 'fake-a', models: ['fake-model'], heartbeatMs: 1000 }));
  fakes.push(await fakeNode(ctx.router, { name: 'fake-b', models: ['fake-model', 'fake-other'], heartbeatMs: 1000, gpu: true }));
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.find((x) => !x.id.startsWith('fake'))?.id;
    return model && m.json.data.find((x) => x.id === model).ready_nodes > 0;
  }, { timeoutMs: 60000, what: 'the llm-node registered with a ready model' });
  const nodes = (await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json;
  realId = nodes.find((n) => n.available_models.includes(model)).id;
  // some history for the cards and the trend
  await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  await ctx.openai.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
  const u = await http('POST', `${ctx.router.url}/api/users`, { body: { ...viewer, role: 'viewer' }, headers: ctx.admin });
  assert.equal(u.status, 201, u.text);
  admin = await openBrowser();
});

after(async () => {
  await admin?.close();
  for (const f of fakes) await f.stop?.();
  await node?.stop();
  await ctx?.router.stop();
});

test('a wrong password shows an error and stores nothing', { skip }, async () => {
  const b = await openBrowser();
  try {
    const msg = await signIn(b.page, ctx.router.url, { password: 'not-the-password', expectError: true });
    assert.match(msg, /wrong username or password/i);
    // by keyboard alone: the username has the focus, Tab goes on, Enter submits
    await b.page.reload();
    await b.page.waitForFunction(() => document.activeElement && document.activeElement.id === 'login-user');
    await b.page.keyboard.type('admin');
    await b.page.keyboard.press('Tab');
    await b.page.keyboard.type('still-wrong');
    await b.page.keyboard.press('Enter');
    await b.page.getByTestId('login-error').waitFor();
    assert.equal(await b.page.evaluate(() => localStorage.getItem('llmr_token')), null);
    await shot(b.page, 'login');
    assertSameOrigin(b.requests, ctx.router.url);
    assertNoConsoleErrors(b.consoleErrors, { allow: ALLOW_401 });
  } finally {
    await b.close();
  }
});

test('sign in; the overview shows cards, the trend chart and the live node list', { skip }, async () => {
  const { page } = admin;
  await signInAsAdmin(page, ctx.router.url);
  await page.waitForFunction(() => location.hash === '#/overview');
  const card = page.getByTestId('card-nodes').locator('.card-value');
  await waitFor(async () => (await card.textContent()) === '3 / 3', { timeoutMs: 10000, what: 'the nodes card' });
  await page.getByTestId('trend-chart').locator('canvas').waitFor();
  await waitFor(async () => (await page.getByTestId('card-requests').locator('.card-value').textContent()) !== '–', { what: 'the requests card' });
  assert.equal(await page.getByTestId('overview-nodes').locator('tbody tr').count(), 3);
  assert.equal(await page.getByTestId('card-models').locator('.card-value').textContent(), '3');
  // a reload stays signed in
  await page.reload();
  await page.getByTestId('card-nodes').waitFor();
  assert.equal(await page.evaluate(() => location.hash), '#/overview');
  assert.equal(await page.getByTestId('current-user').textContent(), 'admin');
  await page.waitForTimeout(300); // the chart's first paint
  await shot(page, 'overview');
  assertNoConsoleErrors(admin.consoleErrors);
});

test('live updates poll every 5 s while visible and stop while the tab is hidden', { skip }, async () => {
  const { page, requests } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/overview`);
  await page.getByTestId('card-nodes').waitFor();
  const polls = () => requests.filter((u) => u.includes('/api/dashboard/overview')).length;
  const setVisible = (v) => page.evaluate((vis) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (vis ? 'visible' : 'hidden') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, v);
  let n = polls();
  await page.waitForTimeout(5600);
  assert.ok(polls() - n >= 1 && polls() - n <= 2, `polls in 5.6 s while visible: ${polls() - n}`);
  await setVisible(false);
  await page.waitForTimeout(300);
  n = polls();
  await page.waitForTimeout(6000);
  assert.equal(polls() - n, 0, 'no poll while hidden');
  await setVisible(true);
  await waitFor(() => polls() > n, { timeoutMs: 2000, what: 'a poll at once when visible again' });
  assertNoConsoleErrors(admin.consoleErrors);
});

test('nodes: the table sorts and filters; the detail has a chart and logs', { skip }, async () => {
  const { page } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/nodes`);
  const rows = page.getByTestId('nodes-table').locator('tbody tr');
  await waitFor(async () => (await rows.count()) === 3, { what: 'three rows' });
  const names = async () => rows.locator('td:first-child a').allTextContents();
  const asc = await names();
  assert.deepEqual(asc, [...asc].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  await page.getByRole('button', { name: /^Name/ }).click();
  assert.deepEqual(await names(), [...asc].reverse());
  await page.getByLabel('Filter').fill('fake-other');
  await waitFor(async () => (await rows.count()) === 1, { what: 'the filter' });
  assert.match(await rows.first().textContent(), /fake-other/);
  await page.getByLabel('Filter').fill('');
  await waitFor(async () => (await rows.count()) === 3, { what: 'the filter cleared' });
  for (const h of ['Name', 'Address', 'Status', 'Models', 'Slots in use', 'CPU', 'Memory', 'GPU', 'Latency', 'Last heartbeat'])
    assert.equal(await page.getByRole('columnheader', { name: h, exact: false }).count() > 0, true, h);
  await shot(page, 'nodes');
  // keyboard: a row takes the focus and Enter opens the node
  await rows.first().focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash.startsWith('#/nodes/'));
  await page.getByTestId('node-title').waitFor();

  await page.goto(`${ctx.router.url}/dashboard#/nodes/${realId}`);
  await page.getByTestId('node-chart').locator('canvas').waitFor();
  await page.getByTestId('node-logs').locator('.log-line').first().waitFor({ timeout: 15000 });
  assert.ok(await page.getByTestId('node-logs').locator('.log-line').count() > 0);
  assert.equal(await page.getByTestId('node-disconnect').isVisible(), true);
  await shot(page, 'node-detail');
  assertSameOrigin(admin.requests, ctx.router.url);
  assertNoConsoleErrors(admin.consoleErrors);
});

test('rename a node in the UI: GET /api/nodes and the table show the new name', { skip }, async () => {
  const { page } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/nodes/${realId}`);
  await page.getByLabel('Display name').fill('gpu-box-renamed');
  await page.getByLabel('Tags (comma-separated)').fill('rack1, tiny');
  await page.getByTestId('node-save').click();
  await page.getByText('Settings saved').waitFor();
  await waitFor(async () => (await page.getByTestId('node-title').textContent()) === 'gpu-box-renamed', { what: 'the title' });
  const n = (await http('GET', `${ctx.router.url}/api/nodes/${realId}`, { headers: ctx.admin })).json;
  assert.equal(n.custom_name, 'gpu-box-renamed');
  assert.deepEqual(n.tags, ['rack1', 'tiny']);
  const list = (await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin })).json;
  assert.equal(list.find((x) => x.id === realId).custom_name, 'gpu-box-renamed');
  await page.getByRole('link', { name: /All nodes/ }).click();
  await page.getByTestId('nodes-table').getByRole('link', { name: 'gpu-box-renamed' }).waitFor();
  assertNoConsoleErrors(admin.consoleErrors);
});

test("a node's model sync progress shows in its detail and in the table", { skip }, async () => {
  const { page } = admin;
  const f = fakes[1];
  f.heartbeating = false; // this test sends its heartbeats
  const beat = async (sync) => assert.equal(await f.heartbeat({ body: f.heartbeatBody({ model_sync: sync }) }), 200);
  try {
    await beat([{ model: 'big-model', state: 'downloading', bytes: 50 * 1048576, total: 100 * 1048576 }]);
    await page.goto(`${ctx.router.url}/dashboard#/nodes/${f.nodeId}`);
    const bar = page.getByTestId('model-sync').getByRole('progressbar');
    await bar.waitFor();
    assert.equal(await bar.getAttribute('aria-valuenow'), String(50 * 1048576));
    assert.match(await page.getByTestId('model-sync').textContent(), /big-model.*downloading.*50\.0 MB \/ 100 MB/);
    await beat([{ model: 'big-model', state: 'downloading', bytes: 90 * 1048576, total: 100 * 1048576 }]);
    await waitFor(async () => (await bar.getAttribute('aria-valuenow')) === String(90 * 1048576), { what: 'the progress to move' });
    await page.goto(`${ctx.router.url}/dashboard#/nodes`);
    await page.getByTestId('nodes-table').locator('tbody tr', { hasText: 'fake-b' }).getByText('syncing').waitFor();
    await beat([{ model: 'big-model', state: 'ready', bytes: 100 * 1048576, total: 100 * 1048576 }]);
    await waitFor(async () => (await page.getByTestId('nodes-table').getByText('syncing').count()) === 0, { what: 'the sync to end' });
  } finally {
    f.heartbeating = true;
  }
  assertNoConsoleErrors(admin.consoleErrors, { allow: [/status of 502/] });
});

test('disconnect and delete ask first; cancel changes nothing, confirm deletes', { skip }, async () => {
  const { page } = admin;
  const victim = fakes[0];
  await page.goto(`${ctx.router.url}/dashboard#/nodes/${victim.nodeId}`);
  await page.getByTestId('node-delete').click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await http('GET', `${ctx.router.url}/api/nodes/${victim.nodeId}`, { headers: ctx.admin })).status, 200);
  await page.getByTestId('node-disconnect').click();
  await page.getByTestId('confirm-ok').click();
  await page.getByText('Node disconnected').waitFor();
  victim.heartbeating = false; // or it would register again at once
  await victim.stop?.();
  fakes = fakes.slice(1);
  await page.getByTestId('node-delete').click();
  await page.getByTestId('confirm-ok').click();
  await page.waitForFunction(() => location.hash === '#/nodes');
  assert.equal((await http('GET', `${ctx.router.url}/api/nodes/${victim.nodeId}`, { headers: ctx.admin })).status, 404);
  // a fake node has no /api/logs: its detail showed the 502 in place
  assertNoConsoleErrors(admin.consoleErrors, { allow: [/status of 502/] });
  admin.consoleErrors.length = 0;
});

test('logs: the router log with a level filter and follow mode', { skip }, async () => {
  const { page } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/logs`);
  const lines = page.getByTestId('log-view').locator('.log-line');
  await lines.first().waitFor();
  assert.ok(await lines.count() > 0);
  await page.getByLabel('Level (and more severe)').selectOption('error');
  await waitFor(async () => {
    const lv = await page.getByTestId('log-view').locator('.log-level').allTextContents().catch(() => []);
    return lv.every((x) => x === 'ERROR') || (await page.getByText('No log lines at this level.').count()) > 0;
  }, { what: 'the level filter' });
  await page.getByLabel('Level (and more severe)').selectOption('info');
  await lines.first().waitFor();
  // the node's log through the router
  await page.getByLabel('Source').selectOption(realId);
  await waitFor(async () => (await page.getByTestId('log-view').locator('.log-line').count()) > 0, { timeoutMs: 15000, what: "the node's log" });
  await page.getByLabel('Source').selectOption('router');
  await lines.first().waitFor();
  await shot(page, 'logs');
  assertSameOrigin(admin.requests, ctx.router.url);
  assertNoConsoleErrors(admin.consoleErrors);
});

test('users and keys: create a key (shown once), use it with the openai SDK, revoke it', { skip }, async () => {
  const { page } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/users`);
  await page.getByTestId('users-table').getByRole('cell', { name: 'viewer1', exact: true }).waitFor();
  await page.getByTestId('join-command').waitFor();
  assert.doesNotMatch(await page.getByTestId('join-command').textContent(), new RegExp(JOIN));
  await page.getByTestId('join-show').click();
  assert.match(await page.getByTestId('join-command').textContent(), new RegExp(`LLM_ROUTER_JOIN_TOKEN=${JOIN}`));
  await page.getByTestId('join-show').click();

  await page.getByLabel('Key name').fill('from-the-ui');
  await page.getByTestId('key-create').click();
  const keyEl = page.getByTestId('new-key');
  await keyEl.waitFor();
  const key = (await keyEl.textContent()).trim();
  assert.match(key, /^sk_/);
  await shot(page, 'users-new-key', { fullPage: false }); // a modal: the viewport
  await page.getByTestId('key-done').click();
  await page.getByTestId('keys-table').getByText('from-the-ui').waitFor();
  // shown once: gone from the page, the list has only its prefix
  assert.equal((await page.content()).includes(key), false);

  const client = new OpenAI({ apiKey: key, baseURL: `${ctx.router.url}/v1`, maxRetries: 0, timeout: 30000 });
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 });
  assert.ok(r.choices[0].message.content !== undefined);

  const row = page.getByTestId('keys-table').locator('tbody tr', { hasText: 'from-the-ui' });
  await row.getByTestId('key-revoke').click();
  await page.getByTestId('confirm-ok').click();
  await waitFor(async () => (await page.getByTestId('keys-table').getByText('from-the-ui').count()) === 0, { what: 'the key gone' });
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }), (e) => e.status === 401);
  // users: create one, change its password, both seen through the API
  await page.getByTestId('user-name').fill('ops2');
  await page.getByTestId('user-password').fill('ops2-password-1');
  await page.getByTestId('user-role').selectOption('admin');
  await page.getByTestId('user-create').click();
  await page.getByTestId('users-table').getByRole('cell', { name: 'ops2', exact: true }).waitFor();
  const login = (username, password) => http('POST', `${ctx.router.url}/api/auth/login`, { body: { username, password } });
  const l1 = await login('ops2', 'ops2-password-1');
  assert.equal(l1.status, 200);
  assert.equal(l1.json.user.role, 'admin');
  await page.getByTestId('users-table').locator('tbody tr', { hasText: 'ops2' }).getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('dialog').getByRole('textbox', { name: 'New password' }).fill('ops2-password-2');
  await page.getByRole('dialog').getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password of ops2 changed').waitFor();
  assert.equal((await login('ops2', 'ops2-password-2')).status, 200);
  assert.equal((await login('ops2', 'ops2-password-1')).status, 401);
  await shot(page, 'users');
  assertSameOrigin(admin.requests, ctx.router.url);
  assertNoConsoleErrors(admin.consoleErrors);
});

test('phone width (375 px): the overview and the nodes table fit', { skip }, async () => {
  const b = await openBrowser({ viewport: { width: 375, height: 800 } });
  try {
    await signInAsAdmin(b.page, ctx.router.url);
    await b.page.getByTestId('overview-nodes').locator('tbody tr').first().waitFor();
    await b.page.waitForTimeout(300);
    const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow} px`);
    // the nav collapses behind a menu button
    await b.page.getByRole('button', { name: 'Menu' }).click();
    await b.page.getByRole('link', { name: 'Nodes' }).click();
    await b.page.getByTestId('nodes-table').waitFor();
    const overflow2 = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow2 <= 1, `the nodes page scrolls sideways by ${overflow2} px`);
    await shot(b.page, 'nodes-phone');
    for (const [hash, ready] of [[`#/nodes/${realId}`, 'node-chart'], ['#/logs', 'log-view'], ['#/users', 'keys-table']]) {
      await b.page.goto(`${ctx.router.url}/dashboard${hash}`);
      await b.page.getByTestId(ready).waitFor();
      const o = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(o <= 1, `${hash} scrolls sideways by ${o} px at 375 px`);
    }
    await b.page.goto(`${ctx.router.url}/dashboard#/overview`);
    await b.page.getByTestId('overview-nodes').locator('tbody tr').first().waitFor();
    await b.page.waitForTimeout(300);
    await shot(b.page, 'overview-phone');
    assertSameOrigin(b.requests, ctx.router.url);
    assertNoConsoleErrors(b.consoleErrors);
  } finally {
    await b.close();
  }
});

test('a viewer sees no admin actions, and the API refuses them anyway', { skip }, async () => {
  const b = await openBrowser();
  try {
    const token = await signIn(b.page, ctx.router.url, viewer);
    assert.equal(await b.page.getByTestId('current-role').textContent(), 'viewer');
    assert.equal(await b.page.getByRole('link', { name: 'Users and keys' }).count(), 0);
    await b.page.goto(`${ctx.router.url}/dashboard#/nodes/${realId}`);
    await b.page.getByTestId('node-title').waitFor();
    assert.equal(await b.page.getByTestId('node-disconnect').count(), 0);
    assert.equal(await b.page.getByTestId('node-delete').count(), 0);
    assert.equal(await b.page.getByTestId('node-save').count(), 0);
    assert.equal(await b.page.getByLabel('Display name').isDisabled(), true);
    await b.page.goto(`${ctx.router.url}/dashboard#/users`);
    await b.page.getByText('This page needs an admin.').waitFor();
    const h = { authorization: `Bearer ${token}` };
    assert.equal((await http('PUT', `${ctx.router.url}/api/nodes/${realId}/settings`, { body: { custom_name: 'x' }, headers: h })).status, 403);
    assert.equal((await http('DELETE', `${ctx.router.url}/api/nodes/${realId}`, { headers: h })).status, 403);
    assert.equal((await http('POST', `${ctx.router.url}/api/api-keys`, { body: { name: 'v' }, headers: h })).status, 403);
    assert.equal((await http('GET', `${ctx.router.url}/api/dashboard/nodes`, { headers: h })).status, 200);
    assertSameOrigin(b.requests, ctx.router.url);
    assertNoConsoleErrors(b.consoleErrors);
  } finally {
    await b.close();
  }
});

test('sign-out returns to login and revokes the token; a dead session returns to login with a message', { skip }, async () => {
  const { page } = admin;
  await page.goto(`${ctx.router.url}/dashboard#/overview`);
  await page.getByTestId('card-nodes').waitFor();
  const token = await page.evaluate(() => localStorage.getItem('llmr_token'));
  assert.equal((await http('GET', `${ctx.router.url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  await page.getByTestId('sign-out').click();
  await page.waitForFunction(() => location.hash === '#/login');
  await page.getByTestId('login-note').filter({ hasText: /signed out/i }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('llmr_token')), null);
  assert.equal((await http('GET', `${ctx.router.url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 401);

  // a session revoked elsewhere: the next poll gets 401 and returns to login
  const t2 = await signInAsAdmin(page, ctx.router.url);
  await page.getByTestId('card-nodes').waitFor();
  assert.equal((await http('POST', `${ctx.router.url}/api/auth/logout`, { headers: { authorization: `Bearer ${t2}` } })).status < 300, true);
  await page.waitForFunction(() => location.hash === '#/login', null, { timeout: 15000 });
  await page.getByTestId('login-note').filter({ hasText: /expired|revoked/i }).waitFor();
  assertSameOrigin(admin.requests, ctx.router.url);
  assertNoConsoleErrors(admin.consoleErrors, { allow: ALLOW_401 });
});

test('no nodes yet: the overview and the nodes page say how to start one (with the join token)', { skip }, async () => {
  const empty = await routerWithKey({});
  const b = await openBrowser();
  try {
    await signInAsAdmin(b.page, empty.router.url);
    await b.page.getByText('No nodes yet.').waitFor();
    await waitFor(async () => (await b.page.getByTestId('node-command').textContent()).includes(`LLM_ROUTER_JOIN_TOKEN=${JOIN}`), { what: 'the command with the token' });
    assert.match(await b.page.getByTestId('node-command').textContent(), new RegExp(`LLM_ROUTER_URL=${empty.router.url}`));
    await b.page.goto(`${empty.router.url}/dashboard#/nodes`);
    await b.page.getByText('No nodes yet.').waitFor();
    await shot(b.page, 'nodes-empty');
    assertSameOrigin(b.requests, empty.router.url);
    assertNoConsoleErrors(b.consoleErrors);
  } finally {
    await b.close();
    await empty.router.stop();
  }
});
