// The browser test kit: Debian's chromium driven by playwright-core, with the
// page's request log and console errors collected, sign-in through the
// dashboard's login page, and screenshots saved as test artifacts.
//
// Exports (stable: the page suites use them):
//   openBrowser(opts)  -> { browser, context, page, requests, consoleErrors, close() }
//   signIn(page, baseUrl, { username, password, expectError })
//   signInAsAdmin(page, baseUrl)
//   foreignRequests(requests, baseUrl) -> the URLs not on baseUrl's origin
//   assertSameOrigin(requests, baseUrl), assertNoConsoleErrors(consoleErrors)
//   screenshot(page, name) -> the file written (artifactsDir/<name>.png)
//   artifactsDir, CHROMIUM, ADMIN_USER, ADMIN_PASSWORD
//
// Everything is bounded in time: every playwright action and navigation has a
// default timeout (actionTimeoutMs, 10 s), launches have 30 s.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { buildDir } from './harness.mjs';

export const CHROMIUM = process.env.LLMR_CHROMIUM || '/usr/bin/chromium';
export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'admin-test-password'; // harness.mjs's LLM_ROUTER_ADMIN_PASSWORD
/** Where screenshots go: $LLMR_ARTIFACTS_DIR, else <build>/e2e-artifacts. */
export const artifactsDir = process.env.LLMR_ARTIFACTS_DIR || path.join(buildDir, 'e2e-artifacts');

/**
 * Starts a headless chromium with one context and one page.
 *   viewport: { width, height } (default 1280x800; a phone: 390x844)
 *   actionTimeoutMs: default timeout of every action and navigation (10 s)
 *   acceptDownloads: true (CSV export)
 * Returns { browser, context, page, requests, consoleErrors, close }:
 *   requests: every URL any page of the context requested (in order; also
 *     the ones that failed or were blocked), for assertSameOrigin;
 *   consoleErrors: console.error messages, uncaught exceptions ("pageerror:
 *     ...") and failed requests ("requestfailed: ...") of every page; a CSP
 *     violation shows here as a console error.
 *   close(): closes the browser (idempotent; bounded).
 * The browser has no proxy and reaches only what the page asks for; tests
 * assert that this is the router's origin and nothing else.
 */
export async function openBrowser({ viewport = { width: 1280, height: 800 }, actionTimeoutMs = 10000,
  acceptDownloads = true, args = [] } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install chromium (scripts/install-deps.sh)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-default-apps', '--disable-sync', ...args],
    timeout: 30000,
  });
  const context = await browser.newContext({ viewport, acceptDownloads, serviceWorkers: 'block' });
  context.setDefaultTimeout(actionTimeoutMs);
  context.setDefaultNavigationTimeout(actionTimeoutMs);
  const requests = [];
  const consoleErrors = [];
  const watch = (p) => {
    p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    p.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    p.on('requestfailed', (r) => {
      // a navigation or poll cut short by the test itself (page closed, hash
      // change, aborted fetch) is not an error of the page
      const f = r.failure()?.errorText || '';
      if (!/ERR_ABORTED|NS_BINDING_ABORTED/.test(f)) consoleErrors.push(`requestfailed: ${r.url()} ${f}`);
    });
  };
  context.on('request', (r) => requests.push(r.url()));
  context.on('page', watch);
  const page = await context.newPage();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 10000))]);
  };
  return { browser, context, page, requests, consoleErrors, close };
}

/**
 * Signs in through the dashboard's login page (#/login): fills the inputs
 * labelled "Username" and "Password" and presses the "Sign in" button. With
 * expectError it waits for the page's error (role "alert") and returns its
 * text; else it waits until the hash leaves #/login and returns the token
 * the page stored (localStorage "llmr_token").
 */
export async function signIn(page, baseUrl, { username = ADMIN_USER, password = ADMIN_PASSWORD, expectError = false } = {}) {
  const url = `${baseUrl}/dashboard#/login`;
  if (page.url() !== url) await page.goto(url);
  await page.getByLabel(/user ?name/i).fill(username);
  await page.getByLabel(/password/i).fill(password);
  await page.getByRole('button', { name: /sign in|log in/i }).click();
  if (expectError) {
    const alert = page.getByRole('alert').filter({ hasText: /\S/ }).first();
    await alert.waitFor();
    return (await alert.textContent()).trim();
  }
  await page.waitForFunction(() => !location.hash.startsWith('#/login') && !!localStorage.getItem('llmr_token'));
  return page.evaluate(() => localStorage.getItem('llmr_token'));
}

export function signInAsAdmin(page, baseUrl) {
  return signIn(page, baseUrl, { username: ADMIN_USER, password: ADMIN_PASSWORD });
}

/** The requested URLs that are not on baseUrl's origin (data: and blob: are the page's own). */
export function foreignRequests(requests, baseUrl) {
  const origin = new URL(baseUrl).origin;
  return requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).origin !== origin);
}

export function assertSameOrigin(requests, baseUrl) {
  assert.ok(requests.length > 0, 'the page made no request at all');
  assert.deepEqual(foreignRequests(requests, baseUrl), [], 'requests to another origin');
}

export function assertNoConsoleErrors(consoleErrors, { allow = [] } = {}) {
  const left = consoleErrors.filter((e) => !allow.some((re) => re.test(e)));
  assert.deepEqual(left, [], 'console errors');
}

/** Saves a full-page screenshot as <artifactsDir>/<name>.png and returns its path. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name.replace(/[^a-z0-9_.-]/gi, '_')}.png`);
  await page.screenshot({ path: file, fullPage, timeout: 15000 });
  return file;
}
