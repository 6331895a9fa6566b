// The model path end to end (issue 15): a repository registered once on the
// router from the (fake) Hugging Face Hub is downloaded by the router,
// pulled by two real llm-nodes through the blob route (no shared storage),
// and answers chats through the router on both nodes; deleting it on the
// router removes it from both nodes. The Hub is lib/fake_hf.mjs (the real
// wire format: model info, tree with LFS sha256, resolve redirecting to a
// CDN port); the model is the tiny mkgguf GGUF.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { routerWithKey, JOIN } from './lib/routerkit.mjs';
import { buildDir, http, waitFor, tempDir, makeModel, startNode, cleanup } from './lib/harness.mjs';
import { startFakeHf, HF_TEST_TOKEN } from './lib/fake_hf.mjs';

const nodeBin = path.join(buildDir, 'node', 'llm-node');
const skip = existsSync(nodeBin) ? false : `llm-node is not built (${nodeBin} missing)`;

let hub; let ctx; const nodes = []; const dirs = [];

before(async () => {
  if (skip) return;
  hub = await startFakeHf();
  hub.addRepo('acme/flow-GGUF', { files: [{ path: 'README.md', data: Buffer.from('# flow\n') }, { path: 'flow.Q8_0.gguf', file: makeModel('tiny', 'q8_0') }] });
  ctx = await routerWithKey({ ...hub.env, HF_TOKEN: HF_TEST_TOKEN, LLM_ROUTER_LOAD_BALANCER_MODE: 'round_robin' });
  for (let i = 0; i < 2; i++) {
    const dir = tempDir(`llmr-flow-node${i}-`);
    dirs.push(dir);
    nodes.push(await startNode({
      LLM_ROUTER_URL: ctx.router.url, LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_NODE_MODELS_DIR: dir,
      LLM_NODE_HEARTBEAT_SECS: '1', LLM_NODE_MODEL_SYNC_SECS: '0', LLM_NODE_MODEL_SYNC_SHARED: '0',
    }));
  }
});
after(async () => {
  for (const n of nodes) await n.stop();
  await ctx?.router.stop();
  await hub?.close();
  for (const d of dirs) cleanup(d);
});

test('register on the router, two nodes pull it, both answer; delete removes it everywhere', { skip }, async () => {
  const r = await http('POST', `${ctx.router.url}/api/models/register`, { headers: ctx.admin, body: { repo: 'acme/flow-GGUF' } });
  assert.equal(r.status, 202, r.text);
  const id = r.json.model_id;
  assert.equal(id, 'flow');
  const taskId = r.json.id ?? r.json.task_id;
  await waitFor(async () => {
    const t = await http('GET', `${ctx.router.url}/api/models/tasks/${taskId}`, { headers: ctx.admin });
    assert.notEqual(t.json.state, 'failed', t.text);
    return t.json.state === 'ready';
  }, { timeoutMs: 30000, what: 'the download task to be ready' });

  // both nodes sync it from the blob route and advertise it
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    return m.json.data.find((x) => x.id === id)?.ready_nodes === 2;
  }, { timeoutMs: 60000, intervalMs: 200, what: 'both nodes ready with the model' });
  for (const d of dirs) {
    assert.ok(existsSync(path.join(d, id, 'flow.Q8_0.gguf')), `${d}: the synced file`);
    assert.ok(!readdirSync(path.join(d, id)).some((f) => f.endsWith('.part')), 'no partial file left');
  }
  const ns = await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
  for (const n of ns.json) {
    const s = (n.model_sync ?? []).find((e) => e.model === id);
    assert.ok(s && s.state === 'ready' && s.bytes === s.total && s.total > 0, JSON.stringify(n.model_sync));
  }

  // chats through the router reach both nodes (round robin)
  const served = new Set();
  for (let i = 0; i < 4; i++) {
    const rid = `flow-chat-${i}`;
    const c = await http('POST', `${ctx.router.url}/v1/chat/completions`, {
      headers: { ...ctx.v1, 'x-request-id': rid },
      body: { model: id, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 },
    });
    assert.equal(c.status, 200, c.text);
    assert.ok(c.json.usage.completion_tokens > 0);
    const h = await waitFor(async () => {
      const x = await http('GET', `${ctx.router.url}/api/dashboard/request-responses/${rid}`, { headers: ctx.admin });
      return x.status === 200 && x.json;
    }, { timeoutMs: 10000, what: `history row ${rid}` });
    served.add(h.node_id);
  }
  assert.equal(served.size, 2, `served by ${[...served]}`);

  // delete on the router: gone from the catalogue and from both nodes
  const d = await http('DELETE', `${ctx.router.url}/api/models/${id}`, { headers: ctx.admin });
  assert.equal(d.status, 200, d.text);
  await waitFor(async () => {
    const m = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    return !m.json.data.some((x) => x.id === id) && dirs.every((dir) => !existsSync(path.join(dir, id, 'flow.Q8_0.gguf')));
  }, { timeoutMs: 30000, intervalMs: 200, what: 'the model gone from the router and both nodes' });
});
