#!/usr/bin/env node
// Benchmark of llm-router-mcp against a real router and a real llm-node (the
// tiny model): the round trip of tools/call for a read-only tool (list_nodes)
// and for a chat (chat_completion), against the same router call made with
// curl directly; and the start-up time (spawn to the initialize answer) and
// RSS of llm-router-mcp against the seed's kind of server (seed_server.mjs:
// the SDK's minimal McpServer with tools that call the router with fetch,
// started with node). Not a timed test: run it by hand.
//
//   node bench/mcp/run.mjs [--runs 200] [--chat-runs 30] [--starts 10] [--max-tokens 8]
//   (LLMR_BUILD_DIR picks the build, as in the e2e suites)
//
// Both MCP servers are driven by the same raw JSON-lines client (one message
// per line on stdin/stdout, the time from writing a request to reading its
// answer), so the client's own cost is the same for both and small. curl runs
// in blocks of keep-alive requests (one curl process, several URLs), and its
// figure is its own time_total per request. Calls alternate between the
// three in blocks, so that drift of the machine hits all of them. Figures are
// medians.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDir, startNode, makeModel, tempDir, waitFor, http } from '../../tests/e2e/lib/harness.mjs';
import { routerWithKey, JOIN } from '../../tests/e2e/lib/routerkit.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const runs = Number(args.runs ?? 200);
const chatRuns = Number(args['chat-runs'] ?? 30);
const starts = Number(args.starts ?? 10);
const maxTokens = Number(args['max-tokens'] ?? 8);
const BLOCK = 10;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
const procKb = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** A raw MCP client over a child's stdio: request() resolves to
 * { msg, ms, at } (ms from writing the line to reading the answer; at: when
 * it arrived). */
function rawMcp(cmd, argv, env) {
  const t0 = performance.now();
  const proc = spawn(cmd, argv, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map();
  let buf = '', err = '', nextId = 1;
  proc.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const t = performance.now();
      const msg = JSON.parse(line);
      const p = pending.get(msg.id);
      if (p) { pending.delete(msg.id); clearTimeout(p.timer); p.resolve({ msg, ms: t - p.t, at: t }); }
    }
  });
  proc.stderr.on('data', (d) => { err += d.toString(); if (err.length > 1e6) err = err.slice(-5e5); });
  const request = (method, params, timeoutMs = 60000) => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${cmd}: no answer to ${method} in ${timeoutMs} ms\n${err.slice(-2000)}`)); }, timeoutMs);
    pending.set(id, { resolve, timer, t: performance.now() });
    proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
  });
  const notify = (method) => proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', method }) + '\n');
  const close = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => { clearTimeout(t); resolve(); });
    proc.stdin.end();
  });
  return { proc, t0, request, notify, close, stderr: () => err };
}

async function initialize(c) {
  const r = await c.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } }, 20000);
  if (!r.msg.result) throw new Error(`initialize failed: ${JSON.stringify(r.msg)}`);
  c.notify('notifications/initialized');
  return r;
}

async function tool(c, name, a) {
  const r = await c.request('tools/call', { name, arguments: a });
  const res = r.msg.result;
  if (!res || res.isError) throw new Error(`${name} failed: ${JSON.stringify(r.msg).slice(0, 500)}`);
  return r;
}

/** n keep-alive requests in one curl process: time_total per request (ms). */
function curlTimes(n, url, headers, body) {
  const argv = ['-s', '-w', '%{http_code} %{time_total}\\n'];
  for (const [k, v] of Object.entries(headers)) argv.push('-H', `${k}: ${v}`);
  if (body) argv.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  for (let i = 0; i < n; i++) argv.push('-o', '/dev/null', url); // each -o goes with one URL
  const out = execFileSync('curl', argv, { encoding: 'utf8', timeout: 600000 }).trim().split('\n');
  if (out.length !== n) throw new Error(`curl: ${out.length} answers for ${n}`);
  return out.map((l) => {
    const [code, t] = l.split(' ');
    if (code !== '200') throw new Error(`curl ${url}: HTTP ${code}`);
    return Number(t) * 1000;
  });
}

async function main() {
  const ctx = await routerWithKey({});
  const file = makeModel('tiny');
  const dir = tempDir('llmr-bench-mcp-');
  symlinkSync(file, path.join(dir, path.basename(file)));
  const node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  let model;
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.[0]?.id;
    return model && m.json.data[0].ready_nodes > 0;
  }, { timeoutMs: 60000, what: 'the node with a ready model' });
  const jwt = ctx.admin.authorization.slice('Bearer '.length);
  const env = { LLM_ROUTER_URL: ctx.router.url, LLM_ROUTER_API_KEY: ctx.apiKey, LLM_ROUTER_JWT_TOKEN: jwt, LLM_ROUTER_MCP_LOG_LEVEL: 'warn' };
  const servers = {
    c: ['llm-router-mcp', path.join(buildDir, 'mcp', 'llm-router-mcp'), []],
    seed: ['seed-style (node + SDK)', process.execPath, [path.join(here, 'seed_server.mjs')]],
  };
  const chatBody = { model, messages: [{ role: 'user', content: 'Say hello' }], max_tokens: maxTokens, temperature: 0, seed: 1 };

  // ---- start-up and RSS ----
  const startup = { c: [], seed: [] }, rss = { c: [], seed: [] }, hwm = { c: [], seed: [] };
  for (let i = 0; i < starts; i++) {
    for (const k of Object.keys(servers)) {
      const [, cmd, argv] = servers[k];
      const c = rawMcp(cmd, argv, env);
      const r = await initialize(c);
      startup[k].push(r.at - c.t0); // spawn to the answer's arrival (the request is written at once)
      await tool(c, 'list_nodes', {});
      rss[k].push(procKb(c.proc.pid, 'VmRSS'));
      hwm[k].push(procKb(c.proc.pid, 'VmHWM'));
      await c.close();
    }
  }

  // ---- round trips ----
  const cl = { c: rawMcp(servers.c[1], servers.c[2], env), seed: rawMcp(servers.seed[1], servers.seed[2], env) };
  await initialize(cl.c);
  await initialize(cl.seed);
  const rt = { list: { c: [], seed: [], curl: [] }, chat: { c: [], seed: [], curl: [] } };
  for (let i = 0; i < 20; i++) { await tool(cl.c, 'list_nodes', {}); await tool(cl.seed, 'list_nodes', {}); } // warm-up
  curlTimes(20, `${ctx.router.url}/api/nodes`, { authorization: `Bearer ${jwt}` });
  for (let done = 0; done < runs; done += BLOCK) {
    rt.list.curl.push(...curlTimes(BLOCK, `${ctx.router.url}/api/nodes`, { authorization: `Bearer ${jwt}` }));
    for (let i = 0; i < BLOCK; i++) rt.list.c.push((await tool(cl.c, 'list_nodes', {})).ms);
    for (let i = 0; i < BLOCK; i++) rt.list.seed.push((await tool(cl.seed, 'list_nodes', {})).ms);
  }
  // the chat answer is the same for all three (temperature 0, fixed seed)
  // (llm-router-mcp wraps the router's body as {status, data}; the seed-style server returns it as is)
  const text = (r) => { const j = JSON.parse(r.msg.result.content[0].text); return (j.data ?? j).choices[0].message.content; };
  const a = text(await tool(cl.c, 'chat_completion', chatBody)), b = text(await tool(cl.seed, 'chat_completion', chatBody));
  if (a !== b) throw new Error(`the two servers' chats differ: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  curlTimes(3, `${ctx.router.url}/v1/chat/completions`, ctx.v1, chatBody);
  // the order rotates: a chat right after another one may wait for the
  // node to finish the previous (slot release, the router's history write)
  const chatOnce = {
    curl: async () => curlTimes(1, `${ctx.router.url}/v1/chat/completions`, ctx.v1, chatBody)[0],
    c: async () => (await tool(cl.c, 'chat_completion', chatBody)).ms,
    seed: async () => (await tool(cl.seed, 'chat_completion', chatBody)).ms,
  };
  const order = ['curl', 'c', 'seed'];
  for (let i = 0; i < chatRuns; i++) {
    for (let j = 0; j < 3; j++) {
      const k = order[(i + j) % 3];
      rt.chat[k].push(await chatOnce[k]());
    }
  }
  await cl.c.close();
  await cl.seed.close();
  await node.stop();
  await ctx.router.stop();

  // ---- table ----
  const f = (ms) => (ms < 10 ? ms.toFixed(3) : ms.toFixed(1));
  const lines = [];
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  lines.push(`llm-router-mcp benchmark: ${runs} list_nodes and ${chatRuns} chat round trips per client, ${starts} starts per server; medians (p90 in brackets); model ${model}, max_tokens ${maxTokens}; load average at the end ${load}`);
  lines.push('');
  lines.push('| Measure | llm-router-mcp (C) | seed-style (node + SDK) | curl direct | C - curl | seed - curl | seed / C |');
  lines.push('|---|---|---|---|---|---|---|');
  // X - curl: the median of the differences of calls made side by side
  // (the i-th call of each in the same block), robust to drift
  const paired = (xs, ys) => median(xs.map((x, i) => x - ys[i]));
  for (const [k, label] of [['list', 'tools/call list_nodes (GET /api/nodes), ms'], ['chat', 'tools/call chat_completion (POST /v1/chat/completions), ms']]) {
    const m = { c: median(rt[k].c), seed: median(rt[k].seed), curl: median(rt[k].curl) };
    lines.push(`| ${label} | ${f(m.c)} (${f(pct(rt[k].c, 0.9))}) | ${f(m.seed)} (${f(pct(rt[k].seed, 0.9))}) | ${f(m.curl)} (${f(pct(rt[k].curl, 0.9))}) | ${f(paired(rt[k].c, rt[k].curl))} | ${f(paired(rt[k].seed, rt[k].curl))} | ${(m.seed / m.c).toFixed(2)}x |`);
  }
  const su = { c: median(startup.c), seed: median(startup.seed) };
  lines.push(`| start-up to the initialize answer, ms | ${f(su.c)} | ${f(su.seed)} | - | - | - | ${(su.seed / su.c).toFixed(1)}x |`);
  const mb = (kb) => (kb / 1024).toFixed(1);
  lines.push(`| RSS after initialize + one call, MiB | ${mb(median(rss.c))} | ${mb(median(rss.seed))} | - | - | - | ${(median(rss.seed) / median(rss.c)).toFixed(1)}x |`);
  lines.push(`| peak RSS (VmHWM), MiB | ${mb(median(hwm.c))} | ${mb(median(hwm.seed))} | - | - | - | ${(median(hwm.seed) / median(hwm.c)).toFixed(1)}x |`);
  console.log(lines.join('\n'));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
