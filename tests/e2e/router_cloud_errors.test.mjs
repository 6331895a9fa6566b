// Cloud prefixes through the real router (issue 16): the paths where
// something goes wrong, and what the operator sees of every call. The fakes
// (lib/fake_cloud.mjs, proved by cloud_fakes.test.mjs) misbehave on demand;
// the official openai SDK or raw HTTP is the client. Covered: a missing key
// (401 naming the variable, no upstream call), provider errors kept with
// their status and message (Retry-After passed on), 429 and 5xx retried
// then succeeding, retries bounded, a provider error mid-stream (an SSE
// error event then [DONE]), a connection cut mid-stream, a slow provider
// with the client leaving (the upstream call is cancelled), malformed
// answers (502), HTTPS with a test CA given by LLM_ROUTER_CA_BUNDLE (and
// refused without it), /v1/models' configured list, /metrics/cloud,
// /metrics and the history with the provider as the node, and the keys
// never reaching a log, an error or the history.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { routerWithKey } from './lib/routerkit.mjs';
import { http, waitFor, tempDir } from './lib/harness.mjs';
import { startFakeCloud, FAKE_KEYS } from './lib/fake_cloud.mjs';

const PROVIDERS = ['openai', 'anthropic', 'google'];
const M = { openai: 'openai:gpt-x', anthropic: 'anthropic:claude-x', google: 'google:gemini-x' };
const msgs = (t = 'hello') => [{ role: 'user', content: t }];
const H = '/api/dashboard/request-responses';

function post(ctx, body, headers = {}) {
  return http('POST', `${ctx.router.url}/v1/chat/completions`, { headers: { ...ctx.v1, ...headers }, body });
}
async function historyRow(ctx, id) {
  let r;
  await waitFor(async () => {
    r = await http('GET', `${ctx.router.url}${H}/${encodeURIComponent(id)}`, { headers: ctx.admin });
    return r.status === 200;
  }, { what: `history row ${id}`, timeoutMs: 10000 });
  return r.json;
}
function sseEvents(text) {
  return text.split('\n\n').map((b) => b.trim()).filter(Boolean).map((b) => b.replace(/^data: /, ''));
}

let ctx; const fakes = {};
before(async () => {
  for (const p of PROVIDERS) fakes[p] = await startFakeCloud({ provider: p });
  ctx = await routerWithKey({
    ...fakes.openai.env, ...fakes.anthropic.env, ...fakes.google.env,
    LLM_ROUTER_CLOUD_RETRIES: '2', LLM_ROUTER_CLOUD_IDLE_TIMEOUT: '2', LLM_ROUTER_LOG_LEVEL: 'debug',
    LLM_ROUTER_CLOUD_MODELS: 'openai:gpt-x, anthropic:claude-x,google:gemini-x,bogus-entry',
  });
});
after(async () => {
  await ctx?.router.stop();
  for (const f of Object.values(fakes)) await f.close();
});

describe('a missing key', () => {
  let bare;
  before(async () => { bare = await routerWithKey({ ...fakes.openai.env, OPENAI_API_KEY: '' }); });
  after(async () => bare?.router.stop());
  for (const [p, v] of [['openai', 'OPENAI_API_KEY'], ['anthropic', 'ANTHROPIC_API_KEY'], ['google', 'GOOGLE_API_KEY']]) {
    test(`${p}: 401 naming ${v}, before any upstream call`, async () => {
      const n = fakes[p].requests.length;
      const r = await post(bare, { model: M[p], messages: msgs() });
      assert.equal(r.status, 401);
      assert.equal(r.json.error.type, 'authentication_error');
      assert.match(r.json.error.message, new RegExp(v));
      assert.equal(fakes[p].requests.length, n, 'no call went out');
      const e = await http('POST', `${bare.router.url}/v1/embeddings`, { headers: bare.v1, body: { model: `${p}:emb`, input: 'x' } });
      assert.equal(e.status, 401, 'embeddings too');
    });
  }
});

describe('provider errors', () => {
  for (const p of PROVIDERS) {
    test(`${p}: a 400 keeps its status and the provider's message`, async () => {
      fakes[p].enqueue({ error: 400, message: 'your prompt is not acceptable here' });
      const r = await post(ctx, { model: M[p], messages: msgs() });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.message, 'your prompt is not acceptable here');
      assert.equal(r.json.error.type, 'invalid_request_error');
    });

    test(`${p}: 429 then 200 is retried invisibly, honouring Retry-After`, async () => {
      const n = fakes[p].requests.length;
      fakes[p].enqueue({ error: 429, message: 'slow down', headers: { 'retry-after': '1' } });
      const t0 = Date.now();
      const c = await ctx.openai.chat.completions.create({ model: M[p], messages: msgs('after retry') });
      assert.equal(c.choices[0].message.content, 'echo: after retry');
      assert.equal(fakes[p].requests.length, n + 2);
      assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After');
    });

    test(`${p}: a 5xx is retried, a stream too, and the client sees one clean answer`, async () => {
      fakes[p].enqueue({ error: 500 }, { error: 503 });
      const s = await ctx.openai.chat.completions.create({ model: M[p], stream: true, messages: msgs('x y') });
      let text = '';
      for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'echo: x y');
    });
  }

  test('retries are bounded: 429 three times -> 429 with Retry-After and the message', async () => {
    const n = fakes.anthropic.requests.length;
    const e = { error: 429, message: 'rate limited, really', headers: { 'retry-after': '0' } };
    fakes.anthropic.enqueue(e, e, e);
    const r = await post(ctx, { model: M.anthropic, messages: msgs() });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '0');
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.equal(r.json.error.message, 'rate limited, really');
    assert.equal(fakes.anthropic.requests.length, n + 3, '1 + LLM_ROUTER_CLOUD_RETRIES attempts');
  });

  test('a Retry-After longer than the router waits is passed on at once', async () => {
    const n = fakes.google.requests.length;
    fakes.google.enqueue({ error: 429, headers: { 'retry-after': '120' } });
    const r = await post(ctx, { model: M.google, messages: msgs() });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '120');
    assert.equal(fakes.google.requests.length, n + 1);
  });

  test('anthropic overloaded (529) keeps its status and type', async () => {
    const e = { error: 529 };
    fakes.anthropic.enqueue(e, e, e);
    const r = await post(ctx, { model: M.anthropic, messages: msgs() });
    assert.equal(r.status, 529);
    assert.equal(r.json.error.type, 'overloaded_error');
    assert.equal(r.json.error.message, 'Overloaded');
  });

  test('a provider that cannot be reached: 502 after the retries', async () => {
    const dead = await startFakeCloud({ provider: 'openai' });
    const env = dead.env;
    await dead.close();
    const c2 = await routerWithKey({ ...env, LLM_ROUTER_CLOUD_RETRIES: '1' });
    try {
      const r = await post(c2, { model: M.openai, messages: msgs() });
      assert.equal(r.status, 502);
      assert.equal(r.json.error.code, 'upstream_error');
      assert.match(r.json.error.message, /openai/);
    } finally { await c2.router.stop(); }
  });
});

describe('streams that go wrong', () => {
  for (const p of PROVIDERS) {
    test(`${p}: a provider error mid-stream ends it with an error event and [DONE]`, async () => {
      fakes[p].enqueue({ streamThenError: 6, eventDelayMs: 5 });
      const r = await post(ctx, { model: M[p], stream: true, messages: msgs('a b c d e f g h') });
      assert.equal(r.status, 200);
      const ev = sseEvents(r.text);
      assert.equal(ev.at(-1), '[DONE]');
      const err = JSON.parse(ev.at(-2));
      assert.ok(err.error && typeof err.error.message === 'string' && err.error.message.length > 0, ev.at(-2));
      // the provider's own message and kind reach the client
      const own = { openai: ['The server had an error while processing your request.', 'server_error'],
        anthropic: ['Overloaded', 'overloaded_error'], google: ['The model is overloaded. Please try again later.', 'overloaded_error'] }[p];
      assert.equal(err.error.message, own[0]);
      assert.equal(err.error.type, own[1]);
      // the SDK surfaces it as an error after the first deltas
      fakes[p].enqueue({ streamThenError: 6, eventDelayMs: 5 });
      let got = '';
      await assert.rejects(async () => {
        for await (const ch of await ctx.openai.chat.completions.create({ model: M[p], stream: true, messages: msgs('a b c d e f g h') }))
          got += ch.choices[0]?.delta?.content ?? '';
      });
      assert.ok(got.length > 0, 'deltas before the error reached the client');
    });

    test(`${p}: a connection cut mid-stream ends it with an error event and [DONE]`, async () => {
      fakes[p].enqueue({ dropAfterBytes: 400, eventDelayMs: 5 });
      const r = await post(ctx, { model: M[p], stream: true, messages: msgs('one two three four five six seven eight nine ten eleven twelve') });
      assert.equal(r.status, 200);
      const ev = sseEvents(r.text);
      assert.equal(ev.at(-1), '[DONE]');
      assert.ok(JSON.parse(ev.at(-2)).error, r.text);
    });
  }

  for (const p of PROVIDERS) {
    test(`${p}: a slow provider and a client that leaves: the upstream call is cancelled`, async () => {
      fakes[p].enqueue({ slowMs: 3000 });
      const n = fakes[p].requests.length;
      const ac = new AbortController();
      const pending = fetch(`${ctx.router.url}/v1/chat/completions`, {
        method: 'POST', signal: ac.signal, headers: { ...ctx.v1, 'content-type': 'application/json' },
        body: JSON.stringify({ model: M[p], stream: true, messages: msgs() }),
      }).catch((e) => e);
      await fakes[p].waitRequests(n + 1, 5000);
      ac.abort();
      await pending;
      const rec = fakes[p].requests[n];
      await waitFor(() => rec.aborted, { what: 'the provider saw the call go away', timeoutMs: 2500 });
    });
  }

  test('a provider silent past LLM_ROUTER_CLOUD_IDLE_TIMEOUT mid-stream: error event', async () => {
    fakes.anthropic.enqueue({ eventDelayMs: 3000 });
    const r = await post(ctx, { model: M.anthropic, stream: true, messages: msgs('p q r') });
    const ev = sseEvents(r.text);
    assert.equal(ev.at(-1), '[DONE]');
    assert.match(JSON.parse(ev.at(-2)).error.message, /silent|cut/);
  });
});

describe('malformed answers', () => {
  for (const p of ['anthropic', 'google']) {
    for (const kind of [true, 'shape']) {
      test(`${p}: ${kind === true ? 'not JSON' : 'JSON of the wrong shape'} -> 502 with a clear message`, async () => {
        fakes[p].enqueue({ malformed: kind });
        const r = await post(ctx, { model: M[p], messages: msgs() });
        assert.equal(r.status, 502);
        assert.equal(r.json.error.code, 'upstream_malformed');
        assert.match(r.json.error.message, new RegExp(p));
        fakes[p].enqueue({ malformed: kind });
        const s = await post(ctx, { model: M[p], stream: true, messages: msgs('s t') });
        const ev = sseEvents(s.text);
        assert.equal(ev.at(-1), '[DONE]');
        assert.ok(JSON.parse(ev.at(-2)).error, s.text);
      });
    }
  }
  test('the router stays up after all of it', async () => {
    const c = await ctx.openai.chat.completions.create({ model: M.google, messages: msgs('still here') });
    assert.equal(c.choices[0].message.content, 'echo: still here');
  });
});

describe('HTTPS with a test CA', () => {
  test('trusted through LLM_ROUTER_CA_BUNDLE, refused without it', async () => {
    const f = await startFakeCloud({ provider: 'anthropic', tls: { dir: tempDir('llmr-ca-') } });
    const withCa = await routerWithKey({ ...f.env, LLM_ROUTER_CA_BUNDLE: f.ca.caFile, LLM_ROUTER_CLOUD_RETRIES: '0' });
    const without = await routerWithKey({ ...f.env, LLM_ROUTER_CLOUD_RETRIES: '0' });
    try {
      assert.match(f.url, /^https:/);
      const c = await withCa.openai.chat.completions.create({ model: M.anthropic, messages: msgs('over tls') });
      assert.equal(c.choices[0].message.content, 'echo: over tls');
      const s = await withCa.openai.chat.completions.create({ model: M.anthropic, stream: true, messages: msgs('tls stream') });
      let text = '';
      for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'echo: tls stream');
      const n = f.connections;
      for (let i = 0; i < 3; i++) await withCa.openai.chat.completions.create({ model: M.anthropic, messages: msgs('again') });
      assert.ok(f.connections - n <= 1, `connections reused (${f.connections - n} new for 3 calls)`);
      const r = await post(without, { model: M.anthropic, messages: msgs() });
      assert.equal(r.status, 502, r.text);
    } finally {
      await withCa.router.stop();
      await without.router.stop();
      await f.close();
    }
  });
});

describe('what the operator sees', () => {
  test('/v1/models lists the configured cloud models (bad entries skipped)', async () => {
    const r = await http('GET', `${ctx.router.url}/v1/models`, { headers: ctx.v1 });
    const ids = r.json.data.map((m) => m.id);
    for (const id of Object.values(M)) assert.ok(ids.includes(id), id);
    assert.ok(!ids.includes('bogus-entry'));
    assert.equal(r.json.data.find((m) => m.id === M.anthropic).owned_by, 'anthropic');
    // an unlisted provider:name is accepted all the same
    const c = await ctx.openai.chat.completions.create({ model: 'google:unlisted-model', messages: msgs('unlisted') });
    assert.equal(c.choices[0].message.content, 'echo: unlisted');
  });

  test('history, /metrics and /metrics/cloud record each call with the provider as the node', async () => {
    const r = await post(ctx, { model: M.anthropic, messages: msgs('recorded call') }, { 'x-request-id': 'cloud-hist-1' });
    assert.equal(r.status, 200);
    const s = await post(ctx, { model: M.google, stream: true, stream_options: { include_usage: true }, messages: msgs('recorded stream') }, { 'x-request-id': 'cloud-hist-2' });
    assert.equal(s.status, 200);
    const h1 = await historyRow(ctx, 'cloud-hist-1');
    assert.equal(h1.model, M.anthropic);
    assert.equal(h1.node_name, 'anthropic');
    assert.equal(h1.status_code, 200);
    assert.equal(h1.tokens.prompt, fakes.anthropic.requests.at(-1).reply.usage.prompt);
    assert.match(JSON.stringify(h1.response_body), /echo: recorded call/);
    const h2 = await historyRow(ctx, 'cloud-hist-2');
    assert.equal(h2.node_name, 'google');
    assert.match(JSON.stringify(h2.response_body), /echo: recorded stream/);
    assert.equal(h2.tokens.completion, fakes.google.requests.at(-1).reply.usage.completion);
    const mc = await http('GET', `${ctx.router.url}/metrics/cloud`, { headers: ctx.v1 });
    assert.match(mc.text, /^cloud_requests_total\{provider="anthropic",status="200"\} \d+/m);
    assert.match(mc.text, /^cloud_requests_total\{provider="anthropic",status="429"\} \d+/m);
    assert.match(mc.text, /^cloud_request_latency_seconds_count\{provider="google"\} \d+/m);
    const m = await http('GET', `${ctx.router.url}/metrics`, { headers: ctx.v1 });
    assert.match(m.text, /^llm_router_requests_total\{[^}]*model="anthropic:claude-x"[^}]*node_id="anthropic"[^}]*\} \d+/m);
  });

  test('the keys never reach the log, an error or the history', async () => {
    const rows = await http('GET', `${ctx.router.url}${H}?per_page=500`, { headers: ctx.admin });
    const out = ctx.router.output();
    for (const k of Object.values(FAKE_KEYS)) {
      assert.ok(!out.includes(k), 'a key in the log');
      assert.ok(!rows.text.includes(k), 'a key in the history');
    }
    // a provider that rejects the key: the error does not echo it
    const bad = await routerWithKey({ ...fakes.google.env, GOOGLE_API_KEY: 'wrong-google-key-987654321' });
    try {
      const r = await post(bad, { model: M.google, messages: msgs() });
      assert.ok(r.status === 400 || r.status === 401 || r.status === 403, r.text);
      assert.ok(!r.text.includes('wrong-google-key-987654321'));
      assert.ok(!bad.router.output().includes('wrong-google-key-987654321'));
    } finally { await bad.router.stop(); }
  });
});

describe('requests the router refuses itself', () => {
  test('bad input gets a 400 in OpenAI\'s shape, no upstream call', async () => {
    const n = fakes.anthropic.requests.length;
    for (const body of [
      { model: M.anthropic, messages: 'not a list' },
      { model: M.anthropic, messages: [{ role: 'wizard', content: 'x' }] },
      { model: M.anthropic, messages: [{ role: 'user', content: 'x' }], max_tokens: -3 },
      { model: M.anthropic, messages: [{ role: 'user', content: 'x' }], stop: 42 },
      { model: M.anthropic, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x' } }] }] },
      { model: 'google:../../etc', messages: msgs() },
    ]) {
      const r = await post(ctx, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    assert.equal(fakes.anthropic.requests.length, n);
  });

  test('/v1/completions through a translated provider', async () => {
    const c = await ctx.openai.completions.create({ model: M.anthropic, prompt: 'complete me', max_tokens: 10 });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices[0].text, 'echo: complete me');
  });

  test('an OpenAI-SDK client with its own base URL style (…/v1) works too', async () => {
    const c2 = await routerWithKey({ OPENAI_BASE_URL: `${fakes.openai.url}/v1`, OPENAI_API_KEY: fakes.openai.key });
    try {
      const c = await c2.openai.chat.completions.create({ model: M.openai, messages: msgs('v1 base') });
      assert.equal(c.choices[0].message.content, 'echo: v1 base');
      assert.equal(fakes.openai.requests.at(-1).path, '/v1/chat/completions');
    } finally { await c2.router.stop(); }
  });
});
