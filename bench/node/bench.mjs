#!/usr/bin/env node
// Benchmark of llm-node, and of llama.cpp's own llama-server side by side
// (bench/node/build-llama-server.sh builds it from the same pinned source into
// third_party/llama-server; LLAMA_SERVER overrides the path). Not a timed
// test: run it by hand.
//
//   node bench/node/bench.mjs [--preset bench] [--types q4_0,q8_0] [--threads 2]
//        [--parallel 4] [--ctx 2048] [--runs 3] [--tokens 128]
//
// Figures per server (medians of --runs): prompt processing tokens/s (a
// 512-token prompt), single-stream decode tokens/s, aggregate decode tokens/s
// with `parallel` concurrent streams, time to first token of a short prompt,
// peak RSS. One table, with the ratio llm-node / llama-server per figure.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startNode, makeModel, tempDir, http, waitFor, cleanup } from '../../tests/e2e/lib/harness.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const preset = args.preset ?? 'bench';
const types = (args.types ?? 'q4_0,q8_0').split(',');
const threads = Number(args.threads ?? 2);
const parallel = Number(args.parallel ?? 4);
const ctx = Number(args.ctx ?? 2048);
const runs = Number(args.runs ?? 3);
const nTokens = Number(args.tokens ?? 128);
// Banned in every request: ids 0..260 of mkgguf's vocabulary, i.e. <unk> <s>
// </s>, the byte tokens <0x00>..<0xFF> and the ChatML control tokens. Without
// end-of-generation every stream runs to max_tokens; without the byte tokens no
// stream can produce a broken UTF-8 sequence, on which llama-server aborts the
// stream with a 500 "does not match the expected Content-only format" event
// after a few dozen tokens (which earlier versions of this bench counted as
// max_tokens tokens, hence decode rates like 438 tokens/s).
const BANNED = Object.fromEntries([...Array(261).keys()].map((t) => [t, -100]));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const peakRss = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

/** One streamed completion of exactly max_tokens tokens (end-of-generation
 * banned): { ttft, first, end } in ms. Token events are not counted: a server
 * may hold back bytes of a split character, so events and tokens differ; the
 * completion's own token count (usage, or llama-server's timings) is checked
 * instead, and an error event fails the run rather than passing as a short,
 * fast completion. */
async function stream(url, body) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    // cache_prompt: llama-server would otherwise reuse the KV cache of an earlier prompt
    body: JSON.stringify({ model: 'm', stream: true, stream_options: { include_usage: true }, temperature: 0.8, seed: 1, logit_bias: BANNED, ignore_eos: true, cache_prompt: false, ...body }),
  });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', first = 0, end = 0, n;
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: {')) continue;
      const d = JSON.parse(ev.slice(6));
      if (d.error) throw new Error(`${url}: error event: ${JSON.stringify(d.error)}`);
      if (d.choices?.length) {
        if (!first) first = performance.now();
        end = performance.now(); // the last token's event, not the usage chunk after it
      }
      n = d.usage?.completion_tokens ?? d.timings?.predicted_n ?? n;
    }
  }
  if (n !== body.max_tokens) throw new Error(`${url}: ${n} tokens instead of ${body.max_tokens}`);
  if (!first) throw new Error(`${url}: no token event`);
  return { t0, ttft: first - t0, first, end };
}

async function measure(server) {
  const url = server.url;
  const word = 'hello world the model ';
  const long = word.repeat(200); // tokenised to about 512 tokens below
  const probe = await http('POST', `${url}/v1/completions`, { body: { model: 'm', prompt: long, max_tokens: 1 } });
  const pTok = probe.json.usage.prompt_tokens;
  const prompt = word.repeat(Math.round(200 * 512 / pTok));
  const out = { pp: [], tg: [], agg: [], ttft: [] };
  for (let r = 0; r < runs; r++) {
    const pp = await stream(url, { prompt: `${r} ${prompt}`, max_tokens: 1 });
    out.pp.push(512 / (pp.ttft / 1000));
    const one = await stream(url, { prompt: `hello ${r}`, max_tokens: nTokens });
    out.ttft.push(one.ttft);
    out.tg.push((nTokens - 1) / ((one.end - one.first) / 1000));
    const many = await Promise.all([...Array(parallel).keys()].map((i) => stream(url, { prompt: `hello ${r} ${i}`, max_tokens: nTokens, seed: i })));
    const first = Math.min(...many.map((m) => m.first));
    const last = Math.max(...many.map((m) => m.end));
    out.agg.push((parallel * (nTokens - 1)) / ((last - first) / 1000));
  }
  return { pp: median(out.pp), tg: median(out.tg), agg: median(out.agg), ttft: median(out.ttft), rss: peakRss(server.proc.pid) };
}

async function withNode(model, fn) {
  const dir = tempDir('llmr-bench-');
  symlinkSync(model, path.join(dir, 'm.gguf'));
  const s = await startNode({ LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_URL: '', LLM_NODE_THREADS: String(threads), LLM_NODE_PARALLEL: String(parallel), LLM_NODE_CTX_SIZE: String(ctx) });
  try {
    await http('POST', `${s.url}/v1/completions`, { body: { model: 'm', prompt: 'warm up', max_tokens: 4 } });
    return await fn(s);
  } finally { await s.stop(); cleanup(dir); }
}

async function withLlamaServer(model, fn) {
  const built = path.join(repoRoot, 'third_party/llama-server/bin/llama-server');
  const bin = process.env.LLAMA_SERVER || (existsSync(built) ? built : null);
  if (!bin) return null;
  // llama-server prints no machine-readable line; poll /health on a free port
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(bin, ['-m', model, '-t', String(threads), '-tb', String(threads), '-c', String(ctx * parallel),
    '-np', String(parallel), '-b', '512', '--host', '127.0.0.1', '--port', String(port), '--alias', 'm'], { stdio: 'ignore' });
  const s = { proc, url: `http://127.0.0.1:${port}` };
  try {
    await waitFor(async () => { try { return (await http('GET', `${s.url}/health`, { timeoutMs: 1000 })).status === 200; } catch { return false; } }, { timeoutMs: 60000, what: 'llama-server' });
    await http('POST', `${s.url}/v1/completions`, { body: { model: 'm', prompt: 'warm up', max_tokens: 4 } });
    return await fn(s);
  } finally { proc.kill('SIGTERM'); }
}

const rows = [];
for (const type of types) {
  const model = makeModel(preset, type);
  const node = await withNode(model, measure);
  const ls = await withLlamaServer(model, measure);
  const fmt = (v, d = 1) => (v === undefined ? '-' : v.toFixed(d));
  const line = (name, key, unit, div = 1, higherBetter = true) => {
    const a = node[key] / div, b = ls ? ls[key] / div : undefined;
    rows.push(`| ${preset} ${type} | ${name} (${unit}) | ${fmt(a)} | ${fmt(b)} | ${b ? fmt(a / b, 2) : '-'}${b && (higherBetter ? a / b < 0.95 : a / b > 1.05) ? ' !' : ''} |`);
  };
  line('prompt processing, 512 tokens', 'pp', 'tokens/s');
  line('decode, 1 stream', 'tg', 'tokens/s');
  line(`decode, ${parallel} streams aggregate`, 'agg', 'tokens/s');
  line('time to first token', 'ttft', 'ms', 1, false);
  line('peak RSS', 'rss', 'MiB', 1048576, false);
}
console.log(`threads ${threads}, parallel ${parallel}, context ${ctx} per stream, ${nTokens} tokens per stream, median of ${runs}`);
console.log('| model | figure | llm-node | llama-server | ratio |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
