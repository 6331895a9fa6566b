// Router settings that change what it accepts or how it balances, read under
// their names and the seed's legacy aliases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRouter, http } from './lib/harness.mjs';
import { routerWithKey, summary, JOIN } from './lib/routerkit.mjs';

const reg = (gpu) => ({
  machine_name: gpu ? 'with-gpu' : 'cpu-only', ip_address: '127.0.0.1', runtime_version: '1', runtime_port: gpu ? 41000 : 42000,
  gpu_available: gpu, gpu_devices: gpu ? [{ model: 'Fake GPU', count: 1 }] : [], available_models: ['x'], total_slots: 1,
});

test('LLM_ROUTER_REQUIRE_GPU=1: a node without a GPU is refused with 403, one with a GPU registers', async () => {
  const ctx = await routerWithKey({ LLM_ROUTER_REQUIRE_GPU: '1' });
  try {
    const cpu = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg(false), headers: { 'x-join-token': JOIN } });
    assert.equal(cpu.status, 403, cpu.text);
    assert.match(cpu.json.error.message, /GPU/);
    const gpu = await http('POST', `${ctx.router.url}/api/nodes`, { body: reg(true), headers: { 'x-join-token': JOIN } });
    assert.equal(gpu.status, 201, gpu.text);
    const list = await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
    assert.deepEqual(list.json.map((n) => n.machine_name), ['with-gpu']);
  } finally {
    await ctx.router.stop();
  }
  // without the setting, a CPU-only node is welcome
  const open = await routerWithKey({});
  try {
    const cpu = await http('POST', `${open.router.url}/api/nodes`, { body: reg(false), headers: { 'x-join-token': JOIN } });
    assert.equal(cpu.status, 201, cpu.text);
  } finally {
    await open.router.stop();
  }
});

test('the balancing mode: LLM_ROUTER_LOAD_BALANCER_MODE, the legacy LOAD_BALANCER_MODE with a warning, bad values refused', async () => {
  const dflt = await routerWithKey({});
  try {
    assert.equal((await summary(dflt)).load_balancer_mode, 'auto');
  } finally {
    await dflt.router.stop();
  }
  const named = await routerWithKey({ LLM_ROUTER_LOAD_BALANCER_MODE: 'metrics' });
  try {
    assert.equal((await summary(named)).load_balancer_mode, 'metrics');
  } finally {
    await named.router.stop();
  }
  // the seed read its own setting under the wrong name: the legacy one works
  const legacy = await routerWithKey({ LOAD_BALANCER_MODE: 'round_robin' });
  try {
    assert.equal((await summary(legacy)).load_balancer_mode, 'round_robin');
    assert.match(legacy.router.output(), /LOAD_BALANCER_MODE is deprecated; use LLM_ROUTER_LOAD_BALANCER_MODE/);
  } finally {
    await legacy.router.stop();
  }
  await assert.rejects(startRouter({ LLM_ROUTER_LOAD_BALANCER_MODE: 'fastest' }),
    (err) => /LLM_ROUTER_LOAD_BALANCER_MODE/.test(err.message) && /exited/.test(err.message));
});
