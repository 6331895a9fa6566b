// The dashboard's weight and speed, measured in Debian's chromium
// (playwright-core, tests/e2e/lib/browser.mjs) against the real router:
//
//   node bench/web/run.mjs            (LLMR_BUILD_DIR: the build, default build/)
//
// Needs the build's router/llm-router and bench/history_bench
// (cmake --build <dir> --target llm-router history_bench), chromium, and the
// npm packages of tests/e2e (cd tests/e2e && npm ci).
//
// Set-up: one router (its own data directory), BENCH_NODES (100) fake nodes
// (tests/e2e/lib/fakenode.mjs: real registrations and heartbeats every
// BENCH_HEARTBEAT_MS, 10 s like llm-node's default), and a request history of
// BENCH_ROWS (1,000,000) real rows written by history_bench through the
// router's own history module into BENCH_HISTORY_DB (reused when it already
// holds them; filling takes ~2.5 min with a Debug build), which the router
// then serves (LLM_ROUTER_HISTORY_PATH).
//
// Measures:
// - first load: the bytes of the dashboard's page, scripts and styles as the
//   browser received them (Resource Timing encodedBodySize: compressed
//   bodies), cold cache; the API calls of the overview counted apart;
// - first render of the overview: from the navigation's start to the moment
//   its cards show numbers (every [data-testid^=card-] value holds a digit)
//   and its node list shows rows (a MutationObserver records the time), with
//   a cold cache and warm (median of BENCH_RUNS reloads);
// - router CPU: the router's threads' time on CPU (the first field of
//   /proc/<pid>/task/*/schedstat, summed) over BENCH_CPU_SECS (60): once with
//   no browser (nodes and heartbeats only), once with the dashboard open on
//   the overview, polling as it does while visible; the difference is the
//   dashboard's.
// Prints one markdown table (and writes it to BENCH_OUT when set).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const e2e = path.resolve(here, '../../tests/e2e/lib');
const { startRouter, buildDir, cleanup } = await import(path.join(e2e, 'harness.mjs'));
const { FakeNode } = await import(path.join(e2e, 'fakenode.mjs'));
const { openBrowser, signInAsAdmin, foreignRequests } = await import(path.join(e2e, 'browser.mjs'));

const env = (k, d) => (process.env[k] === undefined ? d : process.env[k]);
const NODES = Number(env('BENCH_NODES', 100));
const ROWS = Number(env('BENCH_ROWS', 1000000));
const HEARTBEAT_MS = Number(env('BENCH_HEARTBEAT_MS', 10000));
const CPU_SECS = Number(env('BENCH_CPU_SECS', 60));
const RUNS = Number(env('BENCH_RUNS', 5));
const HISTORY_DB = env('BENCH_HISTORY_DB', '/tmp/llmr-web-bench-history.db');
const JOIN = 'jt_bench_join_token_0123456789';

const log = (...a) => console.error('bench/web:', ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function fillHistory() {
  const bin = path.join(buildDir, 'bench', 'history_bench');
  if (!existsSync(bin)) throw new Error(`${bin} missing: cmake --build ${buildDir} --target history_bench`);
  log(`history: ${ROWS} rows in ${HISTORY_DB} (history_bench; reused when present)`);
  const t0 = Date.now();
  execFileSync(bin, ['-n', String(ROWS), '-f', HISTORY_DB, '-s', '400', '--phases', 'fill'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 1800000 });
  log(`history ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** The build type of buildDir (its CMakeCache.txt), for the table's note. */
function readCache(dir) {
  try {
    return /CMAKE_BUILD_TYPE:STRING=(\w*)/.exec(readFileSync(path.join(dir, 'CMakeCache.txt'), 'utf8'))[1] || 'no build type';
  } catch {
    return 'build type unknown';
  }
}

/** ns on CPU of all of pid's threads (schedstat's first field). */
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns;
}

async function cpuOver(pid, secs) {
  const a = cpuNs(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, secs * 1000));
  const wall = Number(process.hrtime.bigint() - t0);
  return (cpuNs(pid) - a) / wall * 100; // % of one core
}

// Before any script of the page: records when the overview first shows its
// numbers and node rows (performance.now(): ms since the navigation began).
function recorder() {
  const ready = () => {
    const cards = document.querySelectorAll('[data-testid^="card-"] .card-value');
    if (cards.length < 4 || ![...cards].every((c) => /\d/.test(c.textContent))) return false;
    // the live node list: a table row or list item naming a node
    return document.querySelectorAll('tbody tr, [data-testid="node-row"], .node-list li').length > 0;
  };
  const mark = () => {
    if (window.__firstRender === undefined && ready()) {
      window.__firstRender = performance.now();
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(mark);
  const start = () => obs.observe(document.documentElement, { subtree: true, childList: true, characterData: true });
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start);
}

async function loadOverview(page, base) {
  await page.goto('about:blank');
  await page.goto(`${base}/dashboard#/overview`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__firstRender !== undefined, null, { timeout: 30000 });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const assets = res.filter((r) => r.initiatorType !== 'fetch' && r.initiatorType !== 'xmlhttprequest');
    const apis = res.filter((r) => r.initiatorType === 'fetch' || r.initiatorType === 'xmlhttprequest');
    const firstApis = apis.filter((r) => r.startTime < window.__firstRender);
    return {
      firstRender: window.__firstRender,
      domContentLoaded: nav.domContentLoadedEventEnd,
      page: nav.encodedBodySize,
      pageDecoded: nav.decodedBodySize,
      assets: assets.map((r) => ({ name: r.name, encoded: r.encodedBodySize, decoded: r.decodedBodySize, transfer: r.transferSize })),
      apis: firstApis.map((r) => ({ name: r.name, encoded: r.encodedBodySize, ms: r.responseEnd - r.startTime })),
    };
  });
}

async function main() {
  fillHistory();
  const router = await startRouter({
    LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_ROUTER_LOG_LEVEL: 'warn', LLM_ROUTER_HISTORY_PATH: HISTORY_DB,
  }, { timeoutMs: 120000 });
  const base = router.url;
  const nodes = [];
  let b;
  try {
    log(`${NODES} fake nodes, heartbeat every ${HEARTBEAT_MS} ms`);
    for (let i = 0; i < NODES; i++) {
      nodes.push(await new FakeNode({ routerUrl: base, joinToken: JOIN, name: `bench-node-${String(i).padStart(3, '0')}`,
        models: [`bench-model-${i % 10}`], heartbeatMs: HEARTBEAT_MS }).start());
    }
    // spread the heartbeats over the interval as independent nodes would be
    await Promise.all(nodes.map((n, i) => new Promise((r) => setTimeout(() => n.heartbeat().then(r, r), (i * HEARTBEAT_MS) / NODES % 2000))));

    log(`router CPU for ${CPU_SECS} s without a browser`);
    const idleCpu = await cpuOver(router.proc.pid, CPU_SECS);

    b = await openBrowser({ actionTimeoutMs: 30000 });
    await b.page.addInitScript(recorder);
    await signInAsAdmin(b.page, base);
    const cdp = await b.context.newCDPSession(b.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.clearBrowserCache');
    const cold = await loadOverview(b.page, base);
    const warm = [];
    for (let i = 0; i < RUNS; i++) warm.push(await loadOverview(b.page, base));

    log(`router CPU for ${CPU_SECS} s with the overview open`);
    await b.page.goto('about:blank');
    await b.page.goto(`${base}/dashboard#/overview`, { waitUntil: 'load' });
    await b.page.waitForFunction(() => window.__firstRender !== undefined, null, { timeout: 30000 });
    const reqBefore = b.requests.length;
    const dashCpu = await cpuOver(router.proc.pid, CPU_SECS);
    const polls = b.requests.length - reqBefore;
    const foreign = foreignRequests(b.requests, base);

    const sum = (xs, k) => xs.reduce((n, x) => n + x[k], 0);
    const assetBytes = cold.page + sum(cold.assets, 'encoded');
    const assetDecoded = cold.pageDecoded + sum(cold.assets, 'decoded');
    const apiBytes = sum(cold.apis, 'encoded');
    const ms = (v) => `${v.toFixed(0)} ms`;
    const chromium = execFileSync('/usr/bin/chromium', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const rows = [
      ['First load, compressed (page + JS + CSS, cold cache)', `${(assetBytes / 1024).toFixed(1)} KiB (${assetBytes} B) in ${cold.assets.length + 1} files; ${(assetDecoded / 1024).toFixed(1)} KiB uncompressed`, '< 150 KB'],
      ['Overview API calls before the first render', `${cold.apis.length} calls, ${(apiBytes / 1024).toFixed(1)} KiB; slowest ${ms(Math.max(0, ...cold.apis.map((a) => a.ms)))}`, ''],
      [`Overview first render, cold cache (${NODES} nodes, ${ROWS.toLocaleString('en')} history rows)`, ms(cold.firstRender), '< 1 s'],
      [`Overview first render, warm (median of ${RUNS})`, `${ms(median(warm.map((w) => w.firstRender)))} (DOMContentLoaded ${ms(median(warm.map((w) => w.domContentLoaded)))})`, '< 1 s'],
      [`Router CPU, ${CPU_SECS} s, no browser (${NODES} nodes heartbeating)`, `${idleCpu.toFixed(3)} % of one core`, ''],
      [`Router CPU, ${CPU_SECS} s, overview open (live updates)`, `${dashCpu.toFixed(3)} % of one core (${polls} requests from the page)`, ''],
      ['Router CPU of the open dashboard (difference)', `${(dashCpu - idleCpu).toFixed(3)} % of one core`, '< 1 %'],
      ['Requests to another origin', String(foreign.length), '0'],
    ];
    const table = [
      `Measured ${new Date().toISOString()} with ${chromium}; router from ${path.basename(buildDir)} ` +
        `(${readCache(buildDir)}), ${NODES} fake nodes heartbeating every ${HEARTBEAT_MS / 1000} s, ${ROWS.toLocaleString('en')} history rows.`,
      '',
      '| Measure | Result | Target |',
      '|---|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
    ].join('\n');
    console.log(table);
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, table);
    if (process.env.BENCH_VERBOSE) console.error(JSON.stringify({ cold, warm }, null, 1));
  } finally {
    await b?.close();
    for (const n of nodes) await n.stop().catch(() => {});
    await router.stop();
    cleanup(router.dataDir);
  }
}

await main();
