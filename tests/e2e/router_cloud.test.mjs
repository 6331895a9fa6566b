// Cloud prefixes through the real router (issue 16), with the official
// openai SDK as the client and the fake providers of lib/fake_cloud.mjs
// behind it (their faithfulness is proved by cloud_fakes.test.mjs). Each
// test checks both sides: what the client got (OpenAI shapes) and what the
// fake received (the provider's own fields, exactly). The error paths
// (missing key, retries, mid-stream errors, cancel, malformed answers,
// HTTPS, history and metrics) are in router_cloud_errors.test.mjs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { routerWithKey } from './lib/routerkit.mjs';
import { http } from './lib/harness.mjs';
import { startFakeCloud, fakeEmbedding } from './lib/fake_cloud.mjs';

const MODELS = { openai: 'openai:gpt-x', anthropic: 'anthropic:claude-x', google: 'google:gemini-x' };
const NAMES = { openai: 'gpt-x', anthropic: 'claude-x', google: 'gemini-x' };
const PROVIDERS = ['openai', 'anthropic', 'google'];
const TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const CALL = 'call get_weather {"city":"Paris"}';

// Anthropic takes a string or a list of text blocks for the same thing
const blocks = (c) => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);
const sysText = (s) => (typeof s === 'string' ? s : (s || []).map((b) => b.text).join('\n'));

let ctx; const fakes = {};
before(async () => {
  for (const p of PROVIDERS) fakes[p] = await startFakeCloud({ provider: p });
  ctx = await routerWithKey({ ...fakes.openai.env, ...fakes.anthropic.env, ...fakes.google.env, LLM_ROUTER_ANTHROPIC_MAX_TOKENS: '333', LLM_ROUTER_CLOUD_RETRIES: '0' });
});
after(async () => {
  await ctx?.router.stop();
  for (const f of Object.values(fakes)) await f.close();
});
const last = (p) => fakes[p].requests.at(-1);

async function streamAll(params) {
  const out = { text: '', chunks: [], finish: null, usage: null };
  for await (const ch of await ctx.openai.chat.completions.create({ ...params, stream: true })) {
    out.chunks.push(ch);
    const c = ch.choices[0];
    if (c?.delta?.content) out.text += c.delta.content;
    if (c?.finish_reason) out.finish = c.finish_reason;
    if (ch.usage) out.usage = ch.usage;
  }
  return out;
}

describe('chat: system prompt, sampling settings, stop, usage', () => {
  const params = (p) => ({
    model: MODELS[p], max_tokens: 50, temperature: 0.5, top_p: 0.9, top_k: 20, stop: ['zzz'],
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello there' }],
  });
  for (const p of PROVIDERS) {
    test(`${p}: answer and the translated request`, async () => {
      const c = await ctx.openai.chat.completions.create(params(p));
      assert.equal(c.object, 'chat.completion');
      assert.equal(c.choices[0].message.role, 'assistant');
      assert.equal(c.choices[0].message.content, 'echo: hello there');
      assert.equal(c.choices[0].finish_reason, 'stop');
      const r = last(p);
      assert.equal(c.usage.prompt_tokens, r.reply.usage.prompt);
      assert.equal(c.usage.completion_tokens, r.reply.usage.completion);
      assert.equal(c.usage.total_tokens, r.reply.usage.prompt + r.reply.usage.completion);
      if (p === 'anthropic') {
        assert.equal(r.path, '/v1/messages');
        assert.equal(r.headers['x-api-key'], fakes.anthropic.key);
        assert.equal(r.headers['anthropic-version'], '2023-06-01');
        assert.equal(r.headers.authorization, undefined, 'the client credential is not forwarded');
        assert.equal(r.body.model, 'claude-x');
        assert.equal(sysText(r.body.system), 'Be brief.');
        assert.deepEqual(r.body.messages.map((m) => [m.role, blocks(m.content)]), [['user', [{ type: 'text', text: 'hello there' }]]]);
        assert.equal(r.body.max_tokens, 50);
        assert.equal(r.body.temperature, 0.5);
        assert.equal(r.body.top_p, 0.9);
        assert.equal(r.body.top_k, 20);
        assert.deepEqual(r.body.stop_sequences, ['zzz']);
        assert.notEqual(r.body.stream, true);
      } else if (p === 'google') {
        assert.equal(r.path, '/v1beta/models/gemini-x:generateContent');
        assert.equal(r.headers['x-goog-api-key'], fakes.google.key);
        assert.equal(r.query.key, undefined, 'the key travels in the header, not the URL');
        assert.deepEqual(r.body.systemInstruction.parts, [{ text: 'Be brief.' }]);
        assert.deepEqual(r.body.contents, [{ role: 'user', parts: [{ text: 'hello there' }] }]);
        assert.deepEqual(r.body.generationConfig, { temperature: 0.5, topP: 0.9, topK: 20, maxOutputTokens: 50, stopSequences: ['zzz'] });
      } else {
        assert.equal(r.path, '/v1/chat/completions');
        assert.equal(r.headers.authorization, `Bearer ${fakes.openai.key}`);
        assert.equal(r.body.model, 'gpt-x');
        assert.equal(r.body.top_k, 20);
      }
    });
  }

  test('anthropic: max_tokens defaults to LLM_ROUTER_ANTHROPIC_MAX_TOKENS; same-role turns merge', async () => {
    await ctx.openai.chat.completions.create({ model: MODELS.anthropic, messages: [{ role: 'user', content: 'first' }, { role: 'user', content: 'second' }] });
    const b = last('anthropic').body;
    assert.equal(b.max_tokens, 333);
    assert.equal(b.messages.length, 1);
    assert.equal(b.messages[0].role, 'user');
    assert.deepEqual(blocks(b.messages[0].content).map((x) => x.text).join('\n').split(/\n+/), ['first', 'second']);
    await ctx.openai.chat.completions.create({ model: MODELS.google, messages: [{ role: 'user', content: 'first' }, { role: 'user', content: 'second' }] });
    const g = last('google').body;
    assert.equal(g.contents.length, 1);
    assert.deepEqual(g.contents[0].parts.map((x) => x.text).join('\n').split(/\n+/), ['first', 'second']);
  });

  test('anthropic: an image content part becomes an image block', async () => {
    const png = 'iVBORw0KGgo=';
    await ctx.openai.chat.completions.create({ model: MODELS.anthropic, messages: [{ role: 'user', content: [
      { type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }] });
    const c = blocks(last('anthropic').body.messages[0].content);
    assert.deepEqual(c, [{ type: 'text', text: 'what is this' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }]);
  });

  test('the alias ahtnorpic: is Anthropic', async () => {
    const n = fakes.anthropic.requests.length;
    const c = await ctx.openai.chat.completions.create({ model: 'ahtnorpic:claude-x', messages: [{ role: 'user', content: 'alias' }] });
    assert.equal(c.choices[0].message.content, 'echo: alias');
    assert.equal(fakes.anthropic.requests.length, n + 1);
    assert.equal(last('anthropic').body.model, 'claude-x');
  });
});

describe('streaming', () => {
  for (const p of PROVIDERS) {
    test(`${p}: chunks, finish, usage in the last chunk`, async () => {
      const s = await streamAll({ model: MODELS[p], stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two three four' }] });
      assert.equal(s.text, 'echo: one two three four');
      assert.equal(s.finish, 'stop');
      assert.equal(s.chunks[0].choices[0].delta.role, 'assistant');
      for (const ch of s.chunks) assert.equal(ch.object, 'chat.completion.chunk');
      const u = s.chunks.at(-1);
      assert.deepEqual(u.choices, []);
      const r = last(p);
      assert.deepEqual(s.usage, { ...s.usage, prompt_tokens: r.reply.usage.prompt, completion_tokens: r.reply.usage.completion, total_tokens: r.reply.usage.prompt + r.reply.usage.completion });
      if (p === 'anthropic') assert.equal(r.body.stream, true);
      if (p === 'google') { assert.equal(r.path, '/v1beta/models/gemini-x:streamGenerateContent'); assert.equal(r.query.alt, 'sse'); }
      if (p !== 'openai') assert.equal(new Set(s.chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
    });
  }

  test('the stream ends with data: [DONE] and carries no event: lines', async () => {
    for (const p of ['anthropic', 'google']) {
      const r = await http('POST', `${ctx.router.url}/v1/chat/completions`, { headers: ctx.v1, body: { model: MODELS[p], stream: true, messages: [{ role: 'user', content: 'x y' }] } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /text\/event-stream/);
      assert.ok(r.text.trimEnd().endsWith('data: [DONE]'), r.text);
      assert.doesNotMatch(r.text, /^event:/m);
      assert.doesNotMatch(r.text, /"usage":\{/, 'no usage chunk unless include_usage');
    }
  });
});

describe('tool calls both ways', () => {
  for (const p of PROVIDERS) {
    test(`${p}: the model asks for a tool, the client answers it`, async () => {
      const ask = { model: MODELS[p], tools: TOOLS, tool_choice: 'auto', messages: [{ role: 'user', content: CALL }] };
      const c = await ctx.openai.chat.completions.create(ask);
      assert.equal(c.choices[0].finish_reason, 'tool_calls');
      const call = c.choices[0].message.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
      assert.ok(call.id);
      const r1 = last(p).body;
      if (p === 'anthropic') {
        assert.deepEqual(r1.tools, [{ name: 'get_weather', description: 'Weather of a city', input_schema: TOOLS[0].function.parameters }]);
        assert.deepEqual(r1.tool_choice, { type: 'auto' });
      } else if (p === 'google') {
        assert.deepEqual(r1.tools, [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather of a city', parameters: TOOLS[0].function.parameters }] }]);
        if (r1.toolConfig) assert.equal(r1.toolConfig.functionCallingConfig.mode, 'AUTO');
      }
      // streamed: the SDK assembles the tool call from the deltas
      const fin = await ctx.openai.chat.completions.stream(ask).finalChatCompletion();
      assert.equal(fin.choices[0].finish_reason, 'tool_calls');
      assert.deepEqual(JSON.parse(fin.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
      // the answer goes back
      const back = await ctx.openai.chat.completions.create({ ...ask, messages: [...ask.messages, c.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C' }] });
      assert.match(back.choices[0].message.content, /^tool result: .*18C/);
      assert.equal(back.choices[0].finish_reason, 'stop');
      const r2 = last(p).body;
      if (p === 'anthropic') {
        const [u, a, t] = r2.messages;
        assert.deepEqual([u.role, a.role, t.role], ['user', 'assistant', 'user']);
        assert.deepEqual(blocks(a.content).filter((b) => b.type === 'tool_use'), [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { city: 'Paris' } }]);
        const res = blocks(t.content).filter((b) => b.type === 'tool_result');
        assert.equal(res.length, 1);
        assert.equal(res[0].tool_use_id, call.id);
        assert.deepEqual(blocks(res[0].content).map((x) => x.text), ['18C']);
      } else if (p === 'google') {
        const [u, m, t] = r2.contents;
        assert.equal(u.role, 'user');
        assert.equal(m.role, 'model');
        assert.deepEqual(m.parts.filter((x) => x.functionCall).map((x) => [x.functionCall.name, x.functionCall.args]), [['get_weather', { city: 'Paris' }]]);
        const fr = t.parts.filter((x) => x.functionResponse);
        assert.equal(fr.length, 1);
        assert.equal(fr[0].functionResponse.name, 'get_weather');
        assert.match(JSON.stringify(fr[0].functionResponse.response), /18C/);
      } else {
        assert.equal(r2.messages[2].role, 'tool');
        assert.equal(r2.messages[2].tool_call_id, call.id);
      }
    });
  }

  test('tool_choice required / a named function translate', async () => {
    await ctx.openai.chat.completions.create({ model: MODELS.anthropic, tools: TOOLS, tool_choice: 'required', messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(last('anthropic').body.tool_choice, { type: 'any' });
    await ctx.openai.chat.completions.create({ model: MODELS.anthropic, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(last('anthropic').body.tool_choice, { type: 'tool', name: 'get_weather' });
    await ctx.openai.chat.completions.create({ model: MODELS.google, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } }, messages: [{ role: 'user', content: 'x' }] });
    assert.deepEqual(last('google').body.toolConfig.functionCallingConfig, { mode: 'ANY', allowedFunctionNames: ['get_weather'] });
  });
});

describe('finish reasons', () => {
  for (const p of PROVIDERS) {
    test(`${p}: length, stop sequence, content_filter`, async () => {
      const long = await ctx.openai.chat.completions.create({ model: MODELS[p], max_tokens: 2, messages: [{ role: 'user', content: 'one two three' }] });
      assert.equal(long.choices[0].finish_reason, 'length');
      assert.equal(long.choices[0].message.content, 'echo: one');
      const ls = await streamAll({ model: MODELS[p], max_tokens: 2, messages: [{ role: 'user', content: 'one two three' }] });
      assert.equal(ls.finish, 'length');
      const st = await ctx.openai.chat.completions.create({ model: MODELS[p], stop: 'three', messages: [{ role: 'user', content: 'one two three' }] });
      assert.equal(st.choices[0].finish_reason, 'stop');
      assert.equal(st.choices[0].message.content, 'echo: one two ');
      if (p === 'anthropic') assert.deepEqual(last(p).body.stop_sequences, ['three']);
      if (p === 'google') assert.deepEqual(last(p).body.generationConfig.stopSequences, ['three']);
      const sf = await ctx.openai.chat.completions.create({ model: MODELS[p], messages: [{ role: 'user', content: 'please trigger safety' }] });
      assert.equal(sf.choices[0].finish_reason, 'content_filter');
      const ss = await streamAll({ model: MODELS[p], messages: [{ role: 'user', content: 'please trigger safety' }] });
      assert.equal(ss.finish, 'content_filter');
    });
  }
});

describe('embeddings', () => {
  test('openai: forwarded, float and base64 decode to the provider vectors', async () => {
    const b = await ctx.openai.embeddings.create({ model: 'openai:emb', input: ['a b', 'c'] });
    assert.deepEqual(b.data.map((d) => Array.from(d.embedding)), [fakeEmbedding('a b'), fakeEmbedding('c')]);
    assert.equal(last('openai').body.model, 'emb');
    assert.equal(last('openai').path, '/v1/embeddings');
    const f = await ctx.openai.embeddings.create({ model: 'openai:emb', input: 'a b', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding, fakeEmbedding('a b'));
  });

  test('google: batchEmbedContents, float and base64, OpenAI list shape', async () => {
    const b = await ctx.openai.embeddings.create({ model: 'google:gemini-embedding-001', input: ['alpha', 'beta', 'gamma'] });
    assert.equal(b.object, 'list');
    assert.deepEqual(b.data.map((d) => d.index), [0, 1, 2]);
    assert.deepEqual(b.data.map((d) => Array.from(d.embedding)), ['alpha', 'beta', 'gamma'].map((t) => fakeEmbedding(t)));
    const r = last('google');
    assert.equal(r.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
    assert.deepEqual(r.body.requests.map((q) => [q.model, q.content.parts]), ['alpha', 'beta', 'gamma'].map((t) => ['models/gemini-embedding-001', [{ text: t }]]));
    const f = await ctx.openai.embeddings.create({ model: 'google:gemini-embedding-001', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding, fakeEmbedding('alpha'));
    assert.equal(f.data[0].object, 'embedding');
  });

  test('a large answer (translated off the loop) comes back whole: 64 inputs x 768 dims', async () => {
    const inputs = Array.from({ length: 64 }, (_, i) => `text number ${i}`);
    // encoding_format undefined: the SDK asks base64 and decodes it itself
    for (const [model, encoding_format] of [['google:gemini-embedding-001', 'float'], ['google:gemini-embedding-001', undefined], ['openai:emb', 'float']]) {
      const b = await ctx.openai.embeddings.create({ model, input: inputs, dimensions: 768, ...(encoding_format ? { encoding_format } : {}) });
      assert.equal(b.data.length, 64);
      for (const [i, d] of b.data.entries()) assert.deepEqual(Array.from(d.embedding), fakeEmbedding(inputs[i], 768), `${model} ${encoding_format} #${i}`);
    }
  });

  test('anthropic: refused with 400, no upstream call', async () => {
    const n = fakes.anthropic.requests.length;
    const r = await http('POST', `${ctx.router.url}/v1/embeddings`, { headers: ctx.v1, body: { model: 'anthropic:claude-x', input: 'x' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /anthropic/i);
    assert.equal(fakes.anthropic.requests.length, n);
  });
});

describe('openai: passthrough', () => {
  test('the body reaches the provider byte for byte except model; the answer is relayed as is', async () => {
    const raw = '{ "messages" : [ {"role":"user","content":"raw \\u00e9 bytes"} ],\n  "model":"openai:gpt-x", "temperature":1.50, "logit_bias":{"42":-1}, "x_vendor_field":[1,2.0,"3"] }';
    const r = await http('POST', `${ctx.router.url}/v1/chat/completions`, { headers: ctx.v1, body: raw });
    assert.equal(r.status, 200, r.text);
    assert.equal(last('openai').raw, raw.replace('"openai:gpt-x"', '"gpt-x"'));
    assert.match(r.json.id, /^chatcmpl-fake\d+$/, 'the provider id kept');
    assert.ok('system_fingerprint' in r.json && 'service_tier' in r.json, 'provider fields kept');
    assert.equal(r.json.choices[0].message.content, 'echo: raw é bytes');
  });

  test('/v1/completions is forwarded too', async () => {
    const c = await ctx.openai.completions.create({ model: 'openai:gpt-x', prompt: 'tell me', max_tokens: 5 });
    assert.equal(c.choices[0].text, 'echo: tell me');
    assert.equal(last('openai').path, '/v1/completions');
    assert.equal(last('openai').body.model, 'gpt-x');
  });

  test('a passthrough stream is relayed with the provider chunks', async () => {
    const s = await streamAll({ model: MODELS.openai, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'p q' }] });
    assert.equal(s.text, 'echo: p q');
    assert.ok(s.chunks.every((c) => /^chatcmpl-fake\d+$/.test(c.id)));
    assert.equal(last('openai').body.stream, true);
  });
});
