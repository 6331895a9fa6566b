// The router in front of real llm-node processes with the generated `tiny`
// model, through the official openai SDK. Skips (with a reason) until
// build/node/llm-node exists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildDir, startNode, makeModel, tempDir, waitFor, http } from './lib/harness.mjs';
import { routerWithKey, JOIN } from './lib/routerkit.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;
let ctx, node, model;

before(async () => {
  if (skip) return;
  ctx = await routerWithKey({});
  const file = makeModel('tiny');
  const dir = tempDir('llmr-models-');
  const { symlinkSync } = await import('node:fs');
  symlinkSync(file, path.join(dir, path.basename(file)));
  node = await startNode({ LLM_ROUTER_URL: ctx.router.url, LLM_NODE_MODELS_DIR: dir, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_JOIN_TOKEN: JOIN, LLM_NODE_HEARTBEAT_SECS: '1' });
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    model = m.json?.data?.[0]?.id;
    return model && m.json.data[0].ready_nodes > 0;
  }, { timeoutMs: 60000, what: 'the node registered with a ready model' });
});
after(async () => { await node?.stop(); await ctx?.router.stop(); });

test('chat through the router', { skip }, async () => {
  const r = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
  assert.equal(r.object, 'chat.completion');
  assert.ok(r.usage.completion_tokens > 0);
});

test('streaming chat through the router', { skip }, async () => {
  const s = await ctx.openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, stream: true });
  let n = 0;
  for await (const c of s) if (c.choices?.[0]) n++;
  assert.ok(n >= 1);
});

test('completions through the router', { skip }, async () => {
  const r = await ctx.openai.completions.create({ model, prompt: 'hello', max_tokens: 4 });
  assert.ok(r.choices.length === 1);
});

test('embeddings through the router', { skip }, async () => {
  const r = await ctx.openai.embeddings.create({ model, input: 'hello', encoding_format: 'float' });
  assert.ok(r.data[0].embedding.length > 0);
});

// Finding 1: the node is closed to callers without a credential; the router
// reaches it with the secret it issued (the chats above), an operator with
// LLM_NODE_API_KEY; the open probes say only that it is up.
test('the node refuses callers without a credential; probes reveal nothing', { skip }, async () => {
  const none = { authorization: '' };
  for (const [m, p, body] of [['GET', '/v1/models'], ['POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/log/level', { level: 'trace' }], ['GET', '/api/logs'], ['GET', '/metrics'], ['GET', '/log/level']]) {
    const r = await http(m, `${node.url}${p}`, { body, headers: none });
    assert.equal(r.status, 401, `${m} ${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_api_key');
    assert.ok('message' in r.json.error && 'type' in r.json.error && 'param' in r.json.error);
  }
  const wrong = await http('GET', `${node.url}/v1/models`, { headers: { authorization: 'Bearer nk_wrong' } });
  assert.equal(wrong.status, 401);
  const h = await http('GET', `${node.url}/health`, { headers: none });
  assert.equal(h.status, 200);
  assert.deepEqual(Object.keys(h.json).sort(), ['ready', 'status']);
  assert.ok(!h.text.includes(ctx.router.url) && !h.text.includes('node_id'));
  assert.equal((await http('GET', `${node.url}/startup`, { headers: none })).status, 200);
  // the operator's key works beside the router's secret
  const own = await http('GET', `${node.url}/health`, { headers: node.auth });
  assert.equal(own.json.registered, true);
  assert.equal(own.json.router_url, ctx.router.url);
  assert.equal((await http('GET', `${node.url}/v1/models`, { headers: node.auth })).status, 200);
});
