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
