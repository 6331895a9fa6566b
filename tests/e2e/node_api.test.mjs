// llm-node's HTTP API against real llama.cpp on the tiny model: every
// endpoint field by field, streaming, the official openai SDK, batching
// determinism, queueing, cancellation (streaming or not), back-pressure from a
// client that stops reading, the start-up probe, UTF-8, stop strings,
// embeddings and a table of bad requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { buildDir, startNode, makeModel, tempDir, http, waitFor, cleanup, NODE_KEY, useNodeKey } from './lib/harness.mjs';

let node, dir, big;
const MODEL = 'tiny';
const N_EMBD = 64;

before(async () => {
  dir = tempDir('llmr-node-api-');
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'tiny.gguf'));
  node = await startNode({
    LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_URL: '', LLM_NODE_PARALLEL: '4',
    LLM_NODE_CTX_SIZE: '1024', LLM_NODE_THREADS: '1',
  });
});

after(async () => { await node?.stop(); await big?.stop(); cleanup(dir); });

/** A second node with room for long generations (4096 tokens per sequence). */
async function bigNode() {
  big ??= await startNode({
    LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_URL: '', LLM_NODE_PARALLEL: '4',
    LLM_NODE_CTX_SIZE: '4096', LLM_NODE_THREADS: '1',
  });
  return big;
}
const metricsOf = async (n) => (await http('GET', `${n.url}/metrics`)).json;
// end-of-turn tokens banned: only max_tokens ends these generations
const NO_EOG = { 2: -100, 260: -100 };

const chat = (body, opts) => http('POST', `${node.url}/v1/chat/completions`,
  { body: { model: MODEL, messages: [{ role: 'user', content: 'hello world' }], ...body }, ...opts });

/** Raw SSE request: returns { status, events (parsed JSON, or '[DONE]'), raw (Buffer) }. */
async function sse(urlPath, body) {
  const res = await fetch(`${node.url}${urlPath}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...node.auth },
    body: JSON.stringify({ ...body, stream: true }), signal: AbortSignal.timeout(30000),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  // every byte of the stream must be valid UTF-8
  const text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  const events = text.split('\n\n').filter((b) => b.trim()).map((b) => {
    assert.ok(b.startsWith('data: '), `SSE block: ${b}`);
    const d = b.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
  return { status: res.status, headers: res.headers, events, raw };
}

function checkEnvelope(o, object) {
  assert.match(o.id, /^(chatcmpl|cmpl)-/);
  assert.equal(o.object, object);
  assert.equal(typeof o.created, 'number');
  assert.ok(Math.abs(o.created - Date.now() / 1000) < 60);
  assert.equal(o.model, MODEL);
}

function checkError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

test('management endpoints', async () => {
  let r = await http('GET', `${node.url}/health`);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ok');
  assert.equal(r.json.registered, false);
  r = await http('GET', `${node.url}/startup`);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ready');
  r = await http('GET', `${node.url}/v1/models`);
  assert.deepEqual(r.json, { object: 'list', data: [{ id: MODEL, object: 'model', created: 0, owned_by: 'llm-node' }] });
  r = await http('GET', `${node.url}/v1/models/${MODEL}`);
  assert.equal(r.json.id, MODEL);
  checkError(await http('GET', `${node.url}/v1/models/nope`), 404);
  r = await http('GET', `${node.url}/metrics`);
  for (const k of ['active_requests', 'queued_requests', 'total_slots', 'tokens_per_second',
    'average_response_time_ms', 'cpu_usage', 'memory_usage', 'requests_total']) {
    assert.equal(typeof r.json[k], 'number', k);
  }
  assert.equal(r.json.total_slots, 4);
  assert.deepEqual(r.json.available_models, [MODEL]);
  r = await http('GET', `${node.url}/metrics/prom`);
  assert.match(r.headers.get('content-type'), /text\/plain/);
  assert.match(r.text, /^# TYPE llm_node_requests_total counter$/m);
  assert.match(r.text, /^llm_node_slots 4$/m);
  r = await http('GET', `${node.url}/api/logs?tail=5`);
  assert.ok(Array.isArray(r.json.entries) && r.json.entries.length <= 5 && r.json.entries.length > 0);
  checkError(await http('GET', `${node.url}/api/logs?tail=x`), 400, 'tail');
  r = await http('GET', `${node.url}/log/level`);
  assert.equal(r.json.level, 'info');
  r = await http('POST', `${node.url}/log/level`, { body: { level: 'debug' } });
  assert.equal(r.json.level, 'debug');
  checkError(await http('POST', `${node.url}/log/level`, { body: { level: 'loud' } }), 400, 'level');
  await http('POST', `${node.url}/log/level`, { body: { level: 'info' } });
});

test('chat completion, non-streaming, field by field', async () => {
  const r = await chat({ max_tokens: 8, seed: 3 });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /application\/json/);
  const o = r.json;
  checkEnvelope(o, 'chat.completion');
  assert.equal(o.choices.length, 1);
  const c = o.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.equal(o.usage.prompt_tokens > 0, true);
  assert.ok(o.usage.completion_tokens <= 8);
  assert.equal(o.usage.total_tokens, o.usage.prompt_tokens + o.usage.completion_tokens);
  // same seed, same answer
  const again = await chat({ max_tokens: 8, seed: 3 });
  assert.equal(again.json.choices[0].message.content, c.message.content);
});

test('max_tokens ends with finish_reason length', async () => {
  // ban the end-of-turn tokens so only the limit can end it
  const r = await chat({ max_tokens: 12, seed: 5, logit_bias: { 2: -100, 260: -100 } });
  assert.equal(r.json.choices[0].finish_reason, 'length');
  assert.equal(r.json.usage.completion_tokens, 12);
});

test('sampling parameters are honoured', async () => {
  const gen = async (extra) => (await http('POST', `${node.url}/v1/completions`, {
    body: { model: MODEL, prompt: 'hello world', max_tokens: 30, logit_bias: { 2: -100, 260: -100 }, ...extra },
  })).json.choices[0].text;
  const greedy = await gen({ temperature: 0 });
  // top_k 1 and min_p 1 keep only the most likely token: greedy whatever the seed
  assert.equal(await gen({ top_k: 1, seed: 1 }), greedy);
  assert.equal(await gen({ top_k: 1, seed: 2 }), greedy);
  assert.equal(await gen({ min_p: 1, seed: 3 }), greedy);
  // random sampling depends on the seed; penalties change a repetitive greedy text
  assert.notEqual(await gen({ temperature: 1.5, seed: 1 }), await gen({ temperature: 1.5, seed: 2 }));
  for (const p of [{ frequency_penalty: 2 }, { presence_penalty: 2 }, { repeat_penalty: 1.5 }]) {
    assert.notEqual(await gen({ temperature: 0, ...p }), greedy, JSON.stringify(p));
  }
  // a logit bias of +100 forces a token
  const forced = await http('POST', `${node.url}/v1/completions`, { body: { model: MODEL, prompt: 'x', max_tokens: 3, logit_bias: { 300: 100 } } });
  assert.equal(forced.json.usage.completion_tokens, 3);
  const again = await http('POST', `${node.url}/v1/completions`, { body: { model: MODEL, prompt: 'y', max_tokens: 3, seed: 9, logit_bias: { 300: 100 } } });
  assert.equal(forced.json.choices[0].text, again.json.choices[0].text);
  assert.equal(forced.json.choices[0].text.length % 3, 0);
});

test('completions: string and array prompts', async () => {
  let r = await http('POST', `${node.url}/v1/completions`, { body: { model: MODEL, prompt: 'the model', max_tokens: 6, seed: 1 } });
  assert.equal(r.status, 200, r.text);
  checkEnvelope(r.json, 'text_completion');
  assert.equal(r.json.choices.length, 1);
  assert.equal(typeof r.json.choices[0].text, 'string');
  assert.equal(r.json.choices[0].logprobs, null);
  assert.ok(r.json.usage.total_tokens > 0);
  r = await http('POST', `${node.url}/v1/completions`, { body: { model: MODEL, prompt: ['a', 'the world'], max_tokens: 4, seed: 1 } });
  assert.equal(r.json.choices.length, 2);
  assert.deepEqual(r.json.choices.map((c) => c.index), [0, 1]);
  const s = await sse('/v1/completions', { model: MODEL, prompt: 'the model', max_tokens: 6, seed: 1 });
  const texts = s.events.filter((e) => e !== '[DONE]').map((e) => e.choices[0]?.text ?? '').join('');
  const one = await http('POST', `${node.url}/v1/completions`, { body: { model: MODEL, prompt: 'the model', max_tokens: 6, seed: 1 } });
  assert.equal(texts, one.json.choices[0].text);
});

test('chat streaming: chunks, final chunk, usage, [DONE], valid UTF-8', async () => {
  const s = await sse('/v1/chat/completions', {
    model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 300,
    temperature: 1.5, seed: 11, stream_options: { include_usage: true },
    logit_bias: { 2: -100, 260: -100 },
  });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type'), /text\/event-stream/);
  const ev = s.events;
  assert.equal(ev.at(-1), '[DONE]');
  const chunks = ev.slice(0, -1);
  for (const c of chunks) checkEnvelope(c, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.completion_tokens, 300);
  const fin = chunks.at(-2);
  assert.equal(fin.choices[0].finish_reason, 'length');
  assert.deepEqual(fin.choices[0].delta, {});
  const deltas = chunks.slice(1, -2);
  assert.ok(deltas.length > 50, `${deltas.length} deltas`);
  for (const d of deltas) {
    assert.equal(d.choices[0].finish_reason, null);
    assert.equal(d.usage, null);
    // each delta on its own is whole UTF-8 (no lone surrogates / U+FFFD only for bad bytes)
    const content = d.choices[0].delta.content;
    assert.equal(typeof content, 'string');
    assert.ok(content.length > 0);
    assert.equal(Buffer.from(content, 'utf8').toString('utf8'), content);
    assert.ok(!/[\uD800-\uDFFF]/.test(content));
  }
});

test('stop strings split across tokens are not emitted', async () => {
  const body = { max_tokens: 40, temperature: 0, logit_bias: { 2: -100, 260: -100 } };
  const s = await sse('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hello world' }], ...body });
  const pieces = s.events.slice(1, -2).map((e) => e.choices[0].delta.content);
  const full = pieces.join('');
  // a stop string made of the end of one piece and the start of the next
  let stop, at = -1, acc = '';
  for (let i = 0; i + 1 < pieces.length && at < 0; i++) {
    acc += pieces[i];
    const a = pieces[i], b = pieces[i + 1];
    if (a.length < 2 || b.length < 1 || /[\uFFFD]/.test(a + b)) continue;
    const cand = a.slice(-2) + b.slice(0, 2);
    if (full.indexOf(cand) === acc.length - 2) { stop = cand; at = acc.length - 2; }
  }
  assert.ok(stop, `no usable token boundary in ${JSON.stringify(pieces)}`);
  const r = await chat({ ...body, messages: [{ role: 'user', content: 'hello world' }], stop: [stop, 'zzzzqqq'] });
  assert.equal(r.json.choices[0].message.content, full.slice(0, at));
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  const s2 = await sse('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hello world' }], ...body, stop });
  const streamed = s2.events.slice(1, -2).map((e) => e.choices[0].delta.content ?? '').join('');
  assert.equal(streamed, full.slice(0, at));
  assert.equal(s2.events.at(-2).choices[0].finish_reason, 'stop');
});

test('8 concurrent fixed-seed requests equal the same requests one at a time', async () => {
  const body = (i) => ({ max_tokens: 48, seed: 100 + i, temperature: 0.9, messages: [{ role: 'user', content: `hello ${'the '.repeat(i)}world` }] });
  const alone = [];
  for (let i = 0; i < 8; i++) alone.push((await chat(body(i))).json.choices[0].message.content);
  assert.ok(new Set(alone).size >= 7, 'different seeds and prompts give different answers');
  const seen = [];
  const poll = setInterval(async () => {
    try { seen.push((await http('GET', `${node.url}/metrics`)).json); } catch {}
  }, 5);
  const together = await Promise.all([...Array(8).keys()].map((i) => chat(body(i))));
  clearInterval(poll);
  assert.deepEqual(together.map((r) => r.json.choices[0].message.content), alone);
  // 8 requests on 4 slots: some waited, all completed
  assert.ok(together.every((r) => r.status === 200));
  assert.ok(seen.some((m) => m.active_requests === 4 || m.queued_requests > 0), JSON.stringify(seen.slice(0, 5)));
});

test('a client that disconnects mid-stream frees its sequence', async () => {
  const before = (await http('GET', `${node.url}/metrics`)).json;
  const ac = new AbortController();
  const res = await fetch(`${node.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...node.auth }, signal: ac.signal,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], stream: true, max_tokens: 5000, logit_bias: { 2: -100, 260: -100 } }),
  });
  const reader = res.body.getReader();
  let got = 0;
  while (got < 5) { const { value } = await reader.read(); got += (new TextDecoder().decode(value).match(/data: /g) || []).length; }
  const mid = (await http('GET', `${node.url}/metrics`)).json;
  assert.equal(mid.active_requests, 1);
  ac.abort();
  const m = await waitFor(async () => {
    const j = (await http('GET', `${node.url}/metrics`)).json;
    return j.active_requests === 0 && j.cancelled_total > before.cancelled_total ? j : null;
  }, { timeoutMs: 5000, what: 'sequence freed' });
  assert.ok(m.completion_tokens_total - before.completion_tokens_total < 1000);
  // the node still answers
  assert.equal((await chat({ max_tokens: 2 })).status, 200);
});

test('a client that disconnects during a non-streaming request frees its sequence at once', async () => {
  const n = await bigNode();
  const before = await metricsOf(n);
  const ac = new AbortController();
  const pending = fetch(`${n.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...n.auth }, signal: ac.signal,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4000, logit_bias: NO_EOG }),
  }).then(() => 'answered', (e) => e.name);
  await waitFor(async () => {
    const m = await metricsOf(n);
    return m.active_requests === 1 && m.completion_tokens_total > before.completion_tokens_total + 20;
  }, { timeoutMs: 20000, what: 'the generation under way' });
  ac.abort();
  const t0 = Date.now();
  const m = await waitFor(async () => {
    const j = await metricsOf(n);
    return j.active_requests === 0 && j.cancelled_total > before.cancelled_total ? j : null;
  }, { timeoutMs: 2000, intervalMs: 20, what: 'sequence freed after the client left' });
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(m.completion_tokens_total - before.completion_tokens_total < 3000, 'stopped long before max_tokens');
  assert.equal(await pending, 'AbortError');
  // no more tokens once freed
  await sleep(300);
  assert.equal((await metricsOf(n)).completion_tokens_total, m.completion_tokens_total);
});

test('a streaming client that reads nothing holds its sequences: memory stays bounded, others go on', async () => {
  const n = await bigNode();
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${n.proc.pid}/status`, 'utf8'))[1]) * 1024;
  const N = 3500;
  const body = JSON.stringify({
    model: MODEL, prompt: ['hello', 'world'], max_tokens: N, stream: true,
    stream_options: { include_usage: true }, logit_bias: NO_EOG,
  });
  // a raw socket that is paused: nothing is read until resume()
  const sock = net.connect(n.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.pause();
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${n.key}\r\nConnection: close\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  try {
    const held = await waitFor(async () => {
      const m = await metricsOf(n);
      return m.held_requests === 2 ? m : null;
    }, { timeoutMs: 90000, intervalMs: 100, what: 'the unread stream held' });
    assert.ok(held.active_requests === 2 && held.completion_tokens_total < 2 * N, JSON.stringify(held));
    const rss0 = rss();
    // the engine goes on for everyone else: these complete while the stream is held
    let others = 0;
    for (let i = 0; i < 3; i++) {
      const r = await http('POST', `${n.url}/v1/chat/completions`, {
        body: { model: MODEL, messages: [{ role: 'user', content: `hi ${i}` }], max_tokens: 16, logit_bias: NO_EOG },
      });
      assert.equal(r.status, 200, r.text);
      others += r.json.usage.completion_tokens;
    }
    await sleep(1000);
    const still = await metricsOf(n);
    assert.equal(still.held_requests, 2);
    // not one token more for the held stream, and no memory growth
    assert.equal(still.completion_tokens_total - held.completion_tokens_total, others);
    assert.ok(rss() - rss0 < 4 * 1024 * 1024, `RSS grew by ${rss() - rss0} bytes while held`);
    // it reads: the generation resumes and ends complete
    const parts = [];
    sock.on('data', (d) => parts.push(d));
    sock.resume();
    await Promise.race([once(sock, 'end'), sleep(120000, null, { ref: false }).then(() => { throw new Error('stream did not end'); })]);
    const text = Buffer.concat(parts).toString('utf8');
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.equal((text.match(/"finish_reason":"length"/g) || []).length, 2);
    assert.equal(Number(/"completion_tokens":(\d+)/.exec(text)?.[1]), 2 * N);
    assert.ok(text.includes('data: [DONE]'));
    const after = await metricsOf(n);
    assert.equal(after.held_requests, 0);
    assert.equal(after.active_requests, 0);
  } finally {
    sock.destroy();
  }
});

test('/startup answers 503 until the node is ready, then 200', async () => {
  const proc = spawn(path.join(buildDir, 'node', 'llm-node'), [], {
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, LLM_NODE_BIND_ADDRESS: '127.0.0.1', LLM_NODE_PORT: '0',
      LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_URL: '', LLM_NODE_THREADS: '1', LLM_NODE_LOG_DIR: tempDir('llmr-nodelog-'),
      LLM_NODE_STARTUP_DELAY_MS: '3000', LLM_NODE_API_KEY: NODE_KEY,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  try {
    const port = await waitFor(() => /LLM_NODE_BOUND port=(\d+)/.exec(out)?.[1], { timeoutMs: 20000, what: 'the bound line' });
    const url = `http://127.0.0.1:${port}`;
    useNodeKey(url, NODE_KEY);
    let r = await http('GET', `${url}/startup`);
    assert.equal(r.status, 503);
    assert.equal(r.json.status, 'starting');
    r = await http('GET', `${url}/health`);
    assert.equal(r.status, 200);
    assert.equal(r.json.ready, false);
    assert.equal(r.json.registered, false);
    r = await http('GET', `${url}/metrics`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.available_models, []);
    r = await http('POST', `${url}/v1/chat/completions`, { body: { model: MODEL, messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json.error.code, 'node_starting');
    assert.ok(!out.includes('LLM_NODE_LISTENING'));
    await waitFor(async () => (await http('GET', `${url}/startup`)).status === 200, { timeoutMs: 20000, what: 'ready' });
    assert.match(out, /LLM_NODE_LISTENING port=\d+/);
    assert.equal((await http('GET', `${url}/startup`)).json.status, 'ready');
    assert.equal((await http('GET', `${url}/health`)).json.ready, true);
    r = await http('POST', `${url}/v1/chat/completions`, { body: { model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 } });
    assert.equal(r.status, 200, r.text);
  } finally {
    proc.kill('SIGKILL');
  }
});

test('embeddings: width, unit norm, same alone and batched', async () => {
  const inputs = ['hello world', 'the model', 'a'];
  const r = await http('POST', `${node.url}/v1/embeddings`, { body: { model: MODEL, input: inputs } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'list');
  assert.equal(r.json.model, MODEL);
  assert.ok(r.json.usage.prompt_tokens > 0 && r.json.usage.total_tokens === r.json.usage.prompt_tokens);
  assert.equal(r.json.data.length, 3);
  for (const [i, d] of r.json.data.entries()) {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, N_EMBD);
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
  }
  for (const [i, text] of inputs.entries()) {
    const one = await http('POST', `${node.url}/v1/embeddings`, { body: { model: MODEL, input: text } });
    const a = one.json.data[0].embedding, b = r.json.data[i].embedding;
    assert.ok(a.every((x, k) => Math.abs(x - b[k]) < 1e-4), `input ${i} differs alone vs batched`);
  }
  assert.notDeepEqual(r.json.data[0].embedding, r.json.data[1].embedding);
});

test('the official openai SDK as a client', async () => {
  const client = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: node.key, maxRetries: 0, timeout: 30000 });
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  const c = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, seed: 2 });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(c.usage.completion_tokens <= 5, true);
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, seed: 2, stream: true, stream_options: { include_usage: true } });
  let text = '', finish, usage;
  for await (const ch of stream) {
    if (ch.choices[0]) { text += ch.choices[0].delta.content ?? ''; finish = ch.choices[0].finish_reason ?? finish; }
    if (ch.usage) usage = ch.usage;
  }
  assert.equal(text, c.choices[0].message.content);
  assert.equal(finish, c.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, c.usage.completion_tokens);
  const comp = await client.completions.create({ model: MODEL, prompt: 'the', max_tokens: 3 });
  assert.equal(comp.object, 'text_completion');
  // the SDK asks for base64 and decodes it
  const e = await client.embeddings.create({ model: MODEL, input: ['hello world', 'a'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, N_EMBD);
  const raw = await http('POST', `${node.url}/v1/embeddings`, { body: { model: MODEL, input: 'hello world' } });
  assert.ok(e.data[0].embedding.every((x, k) => Math.abs(x - raw.json.data[0].embedding[k]) < 1e-6));
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (err) => err.status === 404 && err.error?.code === 'model_not_found');
});

test('bad input: status and error shape, the process stays up', async () => {
  const post = (p, body) => http('POST', `${node.url}${p}`, { body });
  const msgs = [{ role: 'user', content: 'hi' }];
  const cases = [
    ['/v1/chat/completions', '{not json', 400, null],
    ['/v1/chat/completions', '[1,2]', 400, null],
    ['/v1/chat/completions', { messages: msgs }, 400, 'model'],
    ['/v1/chat/completions', { model: 'nope', messages: msgs }, 404, 'model'],
    ['/v1/chat/completions', { model: MODEL }, 400, 'messages'],
    ['/v1/chat/completions', { model: MODEL, messages: [] }, 400, 'messages'],
    ['/v1/chat/completions', { model: MODEL, messages: 'hi' }, 400, 'messages'],
    ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'robot', content: 'x' }] }, 400, 'messages'],
    ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 5 }] }, 400, 'messages'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, max_tokens: -1 }, 400, 'max_tokens'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, max_tokens: 'x' }, 400, 'max_tokens'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, temperature: 9 }, 400, 'temperature'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, top_p: '1' }, 400, 'top_p'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, n: 2 }, 400, 'n'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, stop: [1] }, 400, 'stop'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'stop'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, logit_bias: { x: 1 } }, 400, 'logit_bias'],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, logit_bias: { 99999: 1 } }, 400, null],
    ['/v1/chat/completions', { model: MODEL, messages: msgs, stream: 'yes' }, 400, 'stream'],
    ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hello '.repeat(3000) }] }, 400, null],
    ['/v1/completions', { model: MODEL }, 400, 'prompt'],
    ['/v1/completions', { model: MODEL, prompt: [1, 2, 3] }, 400, 'prompt'],
    ['/v1/embeddings', { model: MODEL }, 400, 'input'],
    ['/v1/embeddings', { model: MODEL, input: [''] }, 400, 'input'],
    ['/v1/embeddings', { model: MODEL, input: 'x', encoding_format: 'hex' }, 400, 'encoding_format'],
  ];
  for (const [p, body, status, param] of cases) {
    const r = await post(p, body);
    assert.equal(r.status, status, `${p} ${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    checkError(r, status);
    if (param) assert.equal(r.json.error.param, param, JSON.stringify(body).slice(0, 80));
  }
  const long = await chat({ messages: [{ role: 'user', content: 'hello '.repeat(3000) }] });
  assert.equal(long.json.error.code, 'context_length_exceeded');
  // a body that is not UTF-8 is not JSON: 400, and its bytes are not echoed back
  const raw = Buffer.concat([Buffer.from('{"model":"no'), Buffer.from([0xb1]), Buffer.from('e","messages":[]}')]);
  const res = await fetch(`${node.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...node.auth }, body: raw });
  const rawText = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 400);
  assert.ok(!rawText.includes(0xb1), rawText.toString('latin1'));
  assert.ok(JSON.parse(rawText.toString('utf8')).error.message);
  // streaming requests that fail before the first token get a plain error reply
  const st = await chat({ stream: true, max_tokens: -5 });
  assert.equal(st.status, 400);
  assert.equal((await http('GET', `${node.url}/health`)).status, 200);
  assert.equal((await chat({ max_tokens: 2 })).status, 200);
});

test('LLM_NODE_REQUEST_READ_TIMEOUT and LLM_NODE_MAX_BODY_BYTES: slow or oversized requests get JSON errors and a close', async () => {
  const empty = tempDir('llmr-node-limits-');
  const n = await startNode({
    LLM_NODE_MODELS_DIR: empty, LLM_ROUTER_URL: '', LLM_NODE_REQUEST_READ_TIMEOUT: '1', LLM_NODE_MAX_BODY_BYTES: '2048',
  });
  const exchange = (first, drip = '') => new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(Number(new URL(n.url).port), '127.0.0.1', () => sock.write(first));
    let got = '';
    let i = 0;
    const timer = setInterval(() => { if (i < drip.length) sock.write(drip[i++]); }, 100);
    const done = (closed) => { clearInterval(timer); clearTimeout(limit); sock.destroy(); resolve({ got, closed, ms: Date.now() - started }); };
    const limit = setTimeout(() => done(false), 5000);
    sock.on('data', (d) => { got += d.toString(); });
    sock.on('end', () => done(true));
    sock.on('error', () => done(true));
  });
  const shape = (r) => {
    const [head, body] = r.got.split('\r\n\r\n');
    assert.ok(r.closed, r.got);
    assert.match(head, /content-type: application\/json/i, r.got);
    return [Number(head.split(' ')[1]), JSON.parse(body).error.code];
  };
  try {
    const slow = await exchange(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${n.key}\r\n`, 'Content-Type: application/json\r\n');
    assert.deepEqual(shape(slow), [408, 'request_timeout']);
    assert.ok(slow.ms >= 900 && slow.ms < 3000, `408 after ${slow.ms} ms`);
    const big = await exchange(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${n.key}\r\nContent-Length: 4096\r\n\r\n`);
    assert.deepEqual(shape(big), [413, 'request_too_large']);
    assert.equal((await http('GET', `${n.url}/health`)).status, 200);
  } finally {
    await n.stop();
    cleanup(empty);
  }
});

// Finding 1: a node reached directly needs LLM_NODE_API_KEY (the router uses
// its own secret); without it every route but the probes is 401 in OpenAI's
// shape, and /health says only that it is up.
test('a standalone node needs its key: 401 otherwise, probes say only status', async () => {
  const none = { authorization: '' };
  for (const [m, p, body] of [['GET', '/v1/models'], ['POST', '/v1/chat/completions', { model: MODEL, messages: [] }],
    ['POST', '/log/level', { level: 'trace' }], ['GET', '/api/logs'], ['GET', '/metrics/prom']]) {
    const r = await http(m, `${node.url}${p}`, { body, headers: none });
    assert.equal(r.status, 401, `${m} ${p}`);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="llm-node"');
    checkError(r, 401);
    assert.equal(r.json.error.code, 'invalid_api_key');
  }
  assert.equal((await http('GET', `${node.url}/v1/models`, { headers: { authorization: `Bearer ${node.key}x` } })).status, 401);
  const h = await http('GET', `${node.url}/health`, { headers: none });
  assert.deepEqual(Object.keys(h.json).sort(), ['ready', 'status']);
  assert.equal((await http('GET', `${node.url}/v1/models`, { headers: node.auth })).status, 200);
});

/** A raw HTTP/1.1 streaming request (net socket, Connection: close), with
 * `TE: trailers` when te: the head, the de-chunked body, the trailer fields
 * (lower-cased names) and the raw bytes of the chunked body's end. */
async function rawStream(urlPath, body, te) {
  const json = JSON.stringify({ ...body, stream: true });
  const sock = net.connect(node.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${node.key}\r\n` +
    `Connection: close\r\n${te ? 'TE: trailers\r\n' : ''}Content-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  const parts = [];
  sock.on('data', (d) => parts.push(d));
  const timer = setTimeout(() => sock.destroy(new Error('no complete reply within 30 s')), 30000);
  try { await once(sock, 'end'); } finally { clearTimeout(timer); sock.destroy(); }
  const all = Buffer.concat(parts);
  const he = all.indexOf('\r\n\r\n');
  const head = all.subarray(0, he).toString('latin1');
  const headers = Object.fromEntries(head.split('\r\n').slice(1).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  }));
  assert.equal(headers['transfer-encoding'], 'chunked');
  // de-chunk strictly: size line, data, CRLF; then the trailer section
  let p = he + 4;
  const chunks = [];
  for (;;) {
    const le = all.indexOf('\r\n', p);
    const size = parseInt(all.subarray(p, le).toString('latin1'), 16);
    assert.ok(Number.isInteger(size), 'a chunk size line');
    p = le + 2;
    if (size === 0) break;
    chunks.push(all.subarray(p, p + size));
    p += size;
    assert.equal(all.subarray(p, p + 2).toString('latin1'), '\r\n');
    p += 2;
  }
  const tail = all.subarray(p).toString('latin1');
  assert.ok(tail.endsWith('\r\n'), 'the trailer section ends with a blank line');
  const trailers = Object.fromEntries(tail.split('\r\n').filter((l) => l).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  }));
  const text = Buffer.concat(chunks).toString('utf8');
  const events = text.split('\n\n').filter((b) => b.trim()).map((b) => (b.slice(6) === '[DONE]' ? '[DONE]' : JSON.parse(b.slice(6))));
  return { status: Number(head.split(' ')[1]), headers, text, events, trailers, tail };
}

// The exact usage of a stream travels out of band for a client that sent
// TE: trailers (the router): announced by `Trailer: X-LLM-Usage`, sent as that
// trailer field of the chunked body, with the counts include_usage would have
// given; the event stream itself is the one a client without include_usage
// gets. Without TE: no Trailer header and a bare last chunk.
test('stream usage as the X-LLM-Usage trailer for TE: trailers, exact and out of band', async () => {
  for (const [urlPath, base] of [
    ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'count to ten' }] }],
    ['/v1/completions', { model: MODEL, prompt: 'once upon a time' }],
  ]) {
    const body = { ...base, max_tokens: 12, temperature: 0, seed: 5, logit_bias: NO_EOG };
    const withUsage = await sse(urlPath, { ...body, stream_options: { include_usage: true } });
    assert.equal(withUsage.status, 200);
    const want = withUsage.events.at(-2).usage;
    assert.equal(want.completion_tokens, 12);

    const t = await rawStream(urlPath, body, true);
    assert.equal(t.status, 200);
    assert.equal(t.headers.trailer, 'X-LLM-Usage');
    assert.deepEqual(Object.keys(t.trailers), ['x-llm-usage'], t.tail);
    assert.deepEqual(JSON.parse(t.trailers['x-llm-usage']), want);
    // the stream is the plain one: no usage chunk, no usage field, same text
    assert.equal(t.events.at(-1), '[DONE]');
    for (const e of t.events.slice(0, -1)) assert.ok(!('usage' in e), JSON.stringify(e));
    const textOf = (evs) => evs.filter((e) => e !== '[DONE]' && e.choices.length)
      .map((e) => e.choices[0].delta?.content ?? e.choices[0].text ?? '').join('');
    assert.equal(textOf(t.events), textOf(withUsage.events));
    assert.equal(t.events.length, withUsage.events.length - 1); // all but the usage chunk

    const plain = await rawStream(urlPath, body, false);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.trailer, undefined);
    assert.equal(plain.tail, '\r\n'); // "0\r\n\r\n": no trailer fields
    assert.equal(textOf(plain.events), textOf(t.events));
    assert.equal(plain.events.length, t.events.length);
  }
});
