// Router settings that change what it accepts or how it balances, read under
// their names and the seed's legacy aliases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
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

// Reads one reply from a raw connection: resolves with the bytes once the
// router closes it (protocol errors close), or after ms.
function rawExchange(url, first, { drip = '', everyMs = 100, ms = 5000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(Number(port), hostname, () => sock.write(first));
    let got = Buffer.alloc(0);
    let i = 0;
    const timer = setInterval(() => { if (i < drip.length) sock.write(drip[i++]); }, everyMs);
    const done = (closed) => { clearInterval(timer); clearTimeout(limit); sock.destroy(); resolve({ text: got.toString(), closed, ms: Date.now() - started }); };
    const limit = setTimeout(() => done(false), ms);
    sock.on('data', (d) => { got = Buffer.concat([got, d]); });
    sock.on('end', () => done(true));
    sock.on('error', () => done(true));
  });
}

function jsonError(text) {
  const [head, body] = text.split('\r\n\r\n');
  assert.match(head, /content-type: application\/json/i, text);
  const e = JSON.parse(body).error;
  assert.ok(e.message && e.type, text);
  return { status: Number(head.split(' ')[1]), code: e.code };
}

test('LLM_ROUTER_REQUEST_READ_TIMEOUT and LLM_ROUTER_MAX_BODY_BYTES: slow or oversized requests get JSON errors and a close', async () => {
  const ctx = await routerWithKey({ LLM_ROUTER_REQUEST_READ_TIMEOUT: '1', LLM_ROUTER_MAX_BODY_BYTES: '2048' });
  try {
    // a head dribbled a byte at a time does not keep the connection: 408 after 1 s
    const slow = await rawExchange(ctx.router.url, 'GET /v1/models HTTP/1.1\r\nHost: x\r\n', { drip: 'X-Slow: ' + 'a'.repeat(100) });
    assert.ok(slow.closed, slow.text);
    assert.deepEqual(jsonError(slow.text), { status: 408, code: 'request_timeout' });
    assert.ok(slow.ms >= 900 && slow.ms < 3000, `408 after ${slow.ms} ms`);
    // a body over the limit is refused from its Content-Length, before it is sent (an
    // authorised request: without a key the head gets its 401 first, also before any body)
    const big = await rawExchange(ctx.router.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ctx.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n`);
    assert.ok(big.closed, big.text);
    assert.deepEqual(jsonError(big.text), { status: 413, code: 'request_too_large' });
    // what does not parse as HTTP gets 400 in the same shape
    const junk = await rawExchange(ctx.router.url, 'HELLO THERE\r\n\r\n');
    assert.ok(junk.closed, junk.text);
    assert.deepEqual(jsonError(junk.text), { status: 400, code: 'bad_request' });
    // and the router keeps serving
    const ok = await http('GET', `${ctx.router.url}/health`);
    assert.equal(ok.status, 200);
  } finally {
    await ctx.router.stop();
  }
});
