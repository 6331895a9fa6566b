// Prometheus: the router's /metrics, /metrics/cloud and /metrics/targets and
// the node's /metrics/prom, against the real router and a real llm-node
// (tiny model), with traffic from the official openai SDK. Counters must
// match what was sent; both endpoints must pass `promtool check metrics`
// (Debian's prometheus package, installed by scripts/install-deps.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { buildDir, startNode, startRouter, makeModel, tempDir, waitFor, http } from './lib/harness.mjs';
import { routerWithKey, JOIN } from './lib/routerkit.mjs';

const PROM_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const skipPromtool = promtool.error ? 'promtool is absent (scripts/install-deps.sh installs Debian\'s prometheus)' : false;

let ctx, node, model, nodeId;
const sent = { prompt: 0, completion: 0 };

/** Parses the text format into [{ name, labels, value }]. */
function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable line: ${line}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** Sum of the samples called name whose labels include want. */
function sum(samples, name, want = {}) {
  let s = 0;
  for (const x of samples)
    if (x.name === name && Object.entries(want).every(([k, v]) => x.labels[k] === v)) s += x.value;
  return s;
}

function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

async function scrape(headers = ctx.v1) {
  const r = await http('GET', `${ctx.router.url}/metrics`, { headers });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), PROM_TYPE);
  return { text: r.text, samples: parse(r.text) };
}

before(async () => {
  if (skip) return;
  ctx = await routerWithKey({});
  const file = makeModel('tiny');
  const dir = tempDir('llmr-models-');
  symlinkSync(file, path.join(dir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.[0]?.id;
    return model && m.json.data[0].ready_nodes > 0;
  }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
  const nodes = await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
  nodeId = nodes.json[0].id;

  // the traffic every test below reads: 2 plain chats, 1 stream (usage
  // asked for, so the client knows the counts), 1 unknown model
  for (let i = 0; i < 2; i++) {
    const r = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: `hi ${i}` }], max_tokens: 6 });
    sent.prompt += r.usage.prompt_tokens;
    sent.completion += r.usage.completion_tokens;
  }
  const s = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'stream' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
  for await (const c of s) if (c.usage) { sent.prompt += c.usage.prompt_tokens; sent.completion += c.usage.completion_tokens; }
  await assert.rejects(ctx.openai.chat.completions.create({ model: 'no-such-model-x', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 404);
});
after(async () => { await node?.stop(); await ctx?.router.stop(); });

test('/metrics counts what was sent', { skip }, async () => {
  // requests are counted when they end; tokens once the recorder read them
  let m;
  await waitFor(async () => {
    m = await scrape();
    return sum(m.samples, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' }) >= sent.completion;
  }, { timeoutMs: 10000, what: 'token counts in /metrics' });
  const { samples } = m;
  const chat = { model, node_id: nodeId, endpoint: '/v1/chat/completions', status: '200' };
  assert.equal(sum(samples, 'llm_router_requests_total', { ...chat, stream: 'false' }), 2);
  assert.equal(sum(samples, 'llm_router_requests_total', { ...chat, stream: 'true' }), 1);
  const nodeName = samples.find((x) => x.name === 'llm_router_requests_total' && x.labels.node_id === nodeId).labels.node_name;
  assert.ok(nodeName.length > 0);
  // the unknown model: no node, and its name is not a label
  assert.equal(sum(samples, 'llm_router_requests_total', { model: 'other', status: '404' }), 1);
  assert.ok(!m.text.includes('no-such-model-x'));
  assert.equal(sum(samples, 'llm_router_queue_rejections_total', { reason: 'model_not_found' }), 1);
  // GenAI family, Envoy AI Gateway's names and labels
  const g = { gen_ai_operation_name: 'chat', gen_ai_provider_name: 'llm-node', gen_ai_request_model: model, gen_ai_response_model: model };
  const ok = samples.filter((x) => x.name === 'gen_ai_server_request_duration_seconds_count' && x.labels.gen_ai_request_model === model && !x.labels.error_type);
  assert.equal(ok.length, 1);
  assert.equal(ok[0].value, 3);
  assert.equal(sum(samples, 'gen_ai_server_request_duration_seconds_count', { gen_ai_request_model: 'other', error_type: 'model_not_found' }), 1);
  assert.equal(sum(samples, 'gen_ai_server_time_to_first_token_seconds_count', g), 1);
  assert.equal(sum(samples, 'gen_ai_client_token_usage_sum', { ...g, gen_ai_token_type: 'input' }), sent.prompt);
  assert.equal(sum(samples, 'gen_ai_client_token_usage_sum', { ...g, gen_ai_token_type: 'output' }), sent.completion);
  assert.equal(sum(samples, 'gen_ai_client_token_usage_count', { ...g, gen_ai_token_type: 'input' }), 3);
  assert.equal(sum(samples, 'llm_router_tokens_total', { model, token_type: 'output' }), sent.completion);
  // router-native
  assert.equal(sum(samples, 'llm_router_request_duration_seconds_count', { model, endpoint: '/v1/chat/completions' }), 3);
  assert.equal(sum(samples, 'llm_router_overhead_seconds_count'), 4);
  assert.equal(sum(samples, 'llm_router_retries_total'), 0);
  assert.equal(sum(samples, 'llm_router_queue_depth'), 0);
  assert.equal(sum(samples, 'llm_router_node_up', { node_id: nodeId, node_name: nodeName }), 1);
  assert.equal(sum(samples, 'llm_router_node_status', { node_id: nodeId, status: 'online' }), 1);
  assert.equal(sum(samples, 'llm_router_in_flight_requests', { node_id: nodeId }), 0);
  assert.ok(sum(samples, 'llm_router_node_slots', { node_id: nodeId }) >= 1);
  assert.ok(samples.some((x) => x.name === 'llm_router_node_cpu_percent' && x.labels.node_id === nodeId));
  assert.equal(sum(samples, 'llm_router_node_suspensions_total'), 0);
  for (const n of ['llm_router_history_queue_depth', 'llm_router_history_written_total', 'llm_router_history_dropped_total'])
    assert.ok(samples.some((x) => x.name === n), n);
  // process_* from /proc/self
  assert.ok(sum(samples, 'process_resident_memory_bytes') > 1e6);
  assert.ok(sum(samples, 'process_open_fds') > 3);
  assert.ok(sum(samples, 'process_max_fds') >= sum(samples, 'process_open_fds'));
  const start = sum(samples, 'process_start_time_seconds');
  assert.ok(start > Date.now() / 1000 - 3600 && start <= Date.now() / 1000, `start ${start}`);
  assert.ok(samples.some((x) => x.name === 'process_cpu_seconds_total'));
});

test('promtool check metrics passes on the router\'s /metrics and /metrics/cloud', { skip: skip || skipPromtool }, async () => {
  const { text } = await scrape();
  const r = promtoolCheck(text);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out, '');
  const c = await http('GET', `${ctx.router.url}/metrics/cloud`, { headers: ctx.v1 });
  assert.equal(c.status, 200);
  assert.equal(c.headers.get('content-type'), PROM_TYPE);
  // the seed's families, present before any cloud request
  assert.match(c.text, /^# TYPE cloud_requests_total counter$/m);
  assert.match(c.text, /^# TYPE cloud_request_latency_seconds histogram$/m);
  const rc = promtoolCheck(c.text);
  assert.equal(rc.code, 0, rc.out);
});

test('the node\'s /metrics/prom: llm_node_*, llamacpp:* and vllm:* from its real counters; promtool parses it', { skip }, async () => {
  const none = await http('GET', `${node.url}/metrics/prom`, { headers: { authorization: '' } });
  assert.equal(none.status, 401); // nodes authenticate callers: Prometheus sends LLM_NODE_API_KEY
  const r = await http('GET', `${node.url}/metrics/prom`, { headers: node.auth });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), PROM_TYPE);
  const s = parse(r.text);
  assert.ok(sum(s, 'llm_node_requests_total') >= 3);
  assert.ok(sum(s, 'llamacpp:prompt_tokens_total') >= sent.prompt);
  assert.ok(sum(s, 'llamacpp:tokens_predicted_total') >= sent.completion);
  assert.ok(sum(s, 'llamacpp:n_decode_total') >= 1);
  assert.ok(sum(s, 'llamacpp:prompt_seconds_total') > 0);
  assert.ok(sum(s, 'llamacpp:predicted_tokens_seconds') > 0);
  assert.equal(sum(s, 'llamacpp:requests_processing'), 0);
  for (const n of ['llamacpp:requests_deferred', 'llamacpp:kv_cache_usage_ratio', 'llamacpp:n_busy_slots_per_decode', 'llamacpp:prompt_tokens_seconds'])
    assert.ok(s.some((x) => x.name === n), n);
  const v = { model_name: model, engine: '0' };
  assert.equal(sum(s, 'vllm:num_requests_running', v), 0);
  assert.equal(sum(s, 'vllm:num_requests_waiting', v), 0);
  assert.ok(s.some((x) => x.name === 'vllm:kv_cache_usage_perc' && x.labels.model_name === model));
  assert.equal(sum(s, 'vllm:prompt_tokens_total', v), sent.prompt);
  assert.equal(sum(s, 'vllm:generation_tokens_total', v), sent.completion);
  assert.equal(sum(s, 'vllm:e2e_request_latency_seconds_count', v), 3);
  assert.ok(sum(s, 'vllm:time_to_first_token_seconds_count', v) >= 1);
  assert.equal(sum(s, 'vllm:request_generation_tokens_sum', v), sent.completion);
  if (skipPromtool) return;
  // The compatibility names carry ':' (valid, reserved for recording rules:
  // promtool's linter says so) and llm_node_average_response_time_ms is
  // the seed's name: those are the only lint remarks allowed; a parse error
  // (exit 1) never is.
  const p = promtoolCheck(r.text);
  assert.ok(p.code === 0 || p.code === 3, `promtool exit ${p.code}: ${p.out}`);
  for (const line of p.out.split('\n').filter(Boolean))
    assert.ok(/ metric names should not contain ':'$/.test(line) || /^llm_node_average_response_time_ms metric names should not contain abbreviated units$/.test(line), line);
});

test('/metrics/targets: Prometheus HTTP service discovery of the online nodes', { skip }, async () => {
  const r = await http('GET', `${ctx.router.url}/metrics/targets`, { headers: ctx.v1 });
  assert.equal(r.status, 200);
  assert.equal(r.json.length, 1);
  const t = r.json[0];
  assert.deepEqual(t.targets, [new URL(node.url).host]);
  assert.equal(t.labels.node_id, nodeId);
  assert.equal(t.labels.__metrics_path__, '/metrics/prom');
  assert.ok(t.labels.node_name.length > 0);
});

test('the metrics need an API key or a session', { skip }, async () => {
  for (const p of ['/metrics', '/metrics/cloud', '/metrics/targets']) {
    const r = await http('GET', `${ctx.router.url}${p}`);
    assert.equal(r.status, 401, `${p}: ${r.status}`);
    assert.equal((await http('GET', `${ctx.router.url}${p}`, { headers: ctx.admin })).status, 200, p);
    assert.equal((await http('GET', `${ctx.router.url}${p}`, { headers: ctx.v1 })).status, 200, p);
  }
});

test('LLM_ROUTER_METRICS_PUBLIC=1 opens them', async () => {
  const router = await startRouter({ LLM_ROUTER_METRICS_PUBLIC: '1', LLM_ROUTER_LOG_LEVEL: 'warn' });
  try {
    for (const p of ['/metrics', '/metrics/cloud', '/metrics/targets']) {
      const r = await http('GET', `${router.url}${p}`);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
    }
    const r = await http('GET', `${router.url}/metrics`);
    const s = parse(r.text);
    assert.ok(s.some((x) => x.name === 'process_resident_memory_bytes'));
    assert.equal(sum(s, 'llm_router_nodes', { status: 'online' }), 0);
    if (!skipPromtool) {
      const p = promtoolCheck(r.text);
      assert.equal(p.code, 0, p.out);
    }
  } finally {
    await router.stop();
  }
});
