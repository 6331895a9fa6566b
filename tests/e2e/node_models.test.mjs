// llm-node's model directory: ids from file names, load on demand, files
// added later found by the periodic rescan, and LLM_NODE_MAX_LOADED_MODELS
// unloading the least recently used idle model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startNode, makeModel, tempDir, http, cleanup, waitFor } from './lib/harness.mjs';

const dirs = [];
after(() => dirs.forEach(cleanup));

const ask = (node, model) => http('POST', `${node.url}/v1/chat/completions`,
  { body: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 } });
const loaded = async (node) => (await http('GET', `${node.url}/metrics`)).json.loaded_models.sort();

test('ids from file names; LLM_NODE_MAX_LOADED_MODELS=2 unloads the least recently used', async () => {
  const dir = tempDir('llmr-node-models-');
  dirs.push(dir);
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'llama-2-7b.Q4_K_M.gguf'));
  symlinkSync(makeModel('tiny', 'q4_0', ['--seed', '2']), path.join(dir, 'bravo.gguf'));
  symlinkSync(makeModel('tiny', 'f16', ['--seed', '3']), path.join(dir, 'charlie-f16.gguf'));
  mkdirSync(path.join(dir, 'delta'));
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'delta', 'model.gguf'));
  const node = await startNode({ LLM_NODE_MODELS_DIR: dir, LLM_NODE_THREADS: '1', LLM_ROUTER_URL: '', LLM_NODE_MAX_LOADED_MODELS: '2', LLM_NODE_PARALLEL: '2', LLM_NODE_CTX_SIZE: '256' });
  try {
    const ids = (await http('GET', `${node.url}/v1/models`)).json.data.map((m) => m.id);
    assert.deepEqual(ids, ['bravo', 'charlie', 'delta', 'llama-2-7b']);
    assert.deepEqual(await loaded(node), []);
    assert.equal((await ask(node, 'llama-2-7b')).status, 200);
    assert.equal((await ask(node, 'bravo')).status, 200);
    assert.deepEqual(await loaded(node), ['bravo', 'llama-2-7b']);
    assert.equal((await ask(node, 'charlie')).status, 200);
    assert.deepEqual(await loaded(node), ['bravo', 'charlie']);
    assert.equal((await ask(node, 'bravo')).status, 200); // bravo is now the most recent
    assert.equal((await ask(node, 'delta')).status, 200);
    assert.deepEqual(await loaded(node), ['bravo', 'delta']);
    // a model that appears later: unknown until the directory's next rescan
    // (a timer off the HTTP loop, every 2 s), then servable without a restart
    symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'echo.gguf'));
    await waitFor(async () => (await http('GET', `${node.url}/v1/models/echo`)).status === 200,
      { timeoutMs: 8000, intervalMs: 100, what: 'the rescan to find echo.gguf' });
    assert.equal((await ask(node, 'echo')).status, 200);
    // concurrent requests for three models under a cap of two all complete
    const rs = await Promise.all(['bravo', 'charlie', 'delta', 'echo', 'bravo', 'charlie'].map((m) => ask(node, m)));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.ok((await loaded(node)).length <= 2);
  } finally {
    await node.stop();
  }
});

test('LLM_MODEL_IDLE_TIMEOUT unloads idle models; LLM_MAX_MEMORY_BYTES refuses a model too big (seed names, now legacy aliases of LLM_NODE_*)', async () => {
  const dir = tempDir('llmr-node-models-');
  dirs.push(dir);
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'small.gguf'));
  symlinkSync(makeModel('tiny', 'f32'), path.join(dir, 'big.gguf'));
  const node = await startNode({ LLM_NODE_MODELS_DIR: dir, LLM_NODE_THREADS: '1', LLM_ROUTER_URL: '', LLM_MODEL_IDLE_TIMEOUT: '1', LLM_MAX_MEMORY_BYTES: '300000', LLM_NODE_CTX_SIZE: '256' });
  try {
    assert.equal((await ask(node, 'small')).status, 200);
    assert.deepEqual(await loaded(node), ['small']);
    const big = await ask(node, 'big');
    assert.equal(big.status, 503, big.text);
    assert.equal(big.json.error.code, 'insufficient_memory');
    const t0 = Date.now();
    while ((await loaded(node)).length && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await loaded(node), []);
  } finally {
    await node.stop();
  }
});
