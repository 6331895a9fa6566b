// The fake providers of lib/fake_cloud.mjs driven by each provider's
// official SDK (@anthropic-ai/sdk, @google/genai, openai): the SDKs parse
// the fakes' answers, streams and errors exactly as they parse the real
// APIs', so a fake that drifts from its provider's wire format fails here
// before it can make a router test pass for the wrong reason.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, ApiError, FinishReason } from '@google/genai';
import OpenAI from 'openai';
import { startFakeCloud, fakeEmbedding, makeTestCA } from './lib/fake_cloud.mjs';
import { tempDir, cleanup } from './lib/harness.mjs';

const weatherTool = {
  name: 'get_weather', description: 'Weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('fake Anthropic through @anthropic-ai/sdk', () => {
  let fake; let client;
  before(async () => {
    fake = await startFakeCloud({ provider: 'anthropic' });
    client = new Anthropic({ apiKey: fake.key, baseURL: fake.url, maxRetries: 0, timeout: 10000 });
  });
  after(() => fake.close());

  test('messages.create: text, usage, the headers the API requires', async () => {
    const m = await client.messages.create({ model: 'claude-x', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo: hello there' }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.equal(m.usage.input_tokens, 4); // "Be brief." + "hello there"
    assert.equal(m.usage.output_tokens, 3);
    const r = fake.requests.at(-1);
    assert.equal(r.path, '/v1/messages');
    assert.equal(r.headers['x-api-key'], fake.key);
    assert.equal(r.headers['anthropic-version'], '2023-06-01');
  });

  test('messages.stream: text deltas assemble into the final message', async () => {
    const s = client.messages.stream({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'one two three' }] });
    let text = '';
    s.on('text', (t) => { text += t; });
    const m = await s.finalMessage();
    assert.equal(text, 'echo: one two three');
    assert.deepEqual(m.content, [{ type: 'text', text: 'echo: one two three' }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.output_tokens, 4);
    assert.equal(m.usage.input_tokens, 3);
    assert.equal(fake.requests.at(-1).body.stream, true);
  });

  test('tool_use both ways, plain and streamed (input_json_delta)', async () => {
    const ask = { model: 'claude-x', max_tokens: 200, tools: [weatherTool], messages: [{ role: 'user', content: 'call get_weather {"city":"Paris"}' }] };
    const m = await client.messages.create(ask);
    assert.equal(m.stop_reason, 'tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Paris' });
    assert.match(use.id, /^toolu_/);
    const sm = await client.messages.stream(ask).finalMessage();
    const suse = sm.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(suse.input, { city: 'Paris' });
    assert.equal(sm.stop_reason, 'tool_use');
    assert.equal(sm.content[0].type, 'text');
    const back = await client.messages.create({
      ...ask,
      messages: [...ask.messages, { role: 'assistant', content: m.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18C and sunny' }] }],
    });
    assert.equal(back.content[0].text, 'tool result: 18C and sunny');
    assert.equal(back.stop_reason, 'end_turn');
  });

  test('stop_sequences and max_tokens end the answer like the API', async () => {
    const a = await client.messages.create({ model: 'c', max_tokens: 100, stop_sequences: ['three'], messages: [{ role: 'user', content: 'one two three four' }] });
    assert.equal(a.stop_reason, 'stop_sequence');
    assert.equal(a.stop_sequence, 'three');
    assert.equal(a.content[0].text, 'echo: one two ');
    const b = await client.messages.create({ model: 'c', max_tokens: 2, messages: [{ role: 'user', content: 'one two three four' }] });
    assert.equal(b.stop_reason, 'max_tokens');
    assert.equal(b.content[0].text, 'echo: one');
  });

  test('errors surface as the SDK typed errors', async () => {
    fake.enqueue({ error: 429, headers: { 'retry-after': '7' } }, { error: 529 }, { error: 500 });
    const req = { model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] };
    await assert.rejects(client.messages.create(req), (e) => e instanceof Anthropic.RateLimitError && e.status === 429 && e.headers.get('retry-after') === '7');
    await assert.rejects(client.messages.create(req), // the JS SDK has no OverloadedError class (Python's has): 5xx is InternalServerError
      (e) => e instanceof Anthropic.InternalServerError && e.status === 529 && e.error.error.type === 'overloaded_error');
    await assert.rejects(client.messages.create(req), (e) => e instanceof Anthropic.InternalServerError);
    const wrong = new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: fake.url, maxRetries: 0 });
    await assert.rejects(wrong.messages.create(req), (e) => e instanceof Anthropic.AuthenticationError && e.error.error.type === 'authentication_error');
    // what the API refuses, the fake refuses: a system role, a missing
    // max_tokens, a tool_result without its tool_use
    await assert.rejects(client.messages.create({ ...req, messages: [{ role: 'system', content: 'x' }] }), Anthropic.BadRequestError);
    await assert.rejects(client.messages.create({ model: 'c', messages: req.messages }), (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
    await assert.rejects(client.messages.create({ ...req, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] }] }), /tool_use_id/);
  });

  test('an error event in the stream rejects the stream', async () => {
    fake.enqueue({ streamThenError: 3 });
    const s = client.messages.stream({ model: 'c', max_tokens: 100, messages: [{ role: 'user', content: 'words 20' }] });
    s.on('error', () => {});
    await assert.rejects(s.finalMessage(), (e) => /Overloaded|overloaded/.test(e.message));
  });

  test('HTTPS with the generated test CA', async () => {
    const dir = tempDir('llmr-ca-test-');
    try {
      const ca = makeTestCA(dir);
      const tfake = await startFakeCloud({ provider: 'anthropic', tls: ca });
      try {
        const body = JSON.stringify({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'secure' }] });
        const res = await new Promise((resolve, reject) => {
          const r = https.request(`${tfake.url}/v1/messages`, { method: 'POST', ca: readFileSync(ca.caFile),
            headers: { 'content-type': 'application/json', 'x-api-key': tfake.key, 'anthropic-version': '2023-06-01' } }, (res) => {
            let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(t) }));
          });
          r.on('error', reject); r.end(body);
        });
        assert.equal(res.status, 200);
        assert.equal(res.json.content[0].text, 'echo: secure');
        // without the CA the certificate is refused
        await assert.rejects(fetch(`${tfake.url}/v1/messages`, { method: 'POST', body }), /fetch failed/);
      } finally { await tfake.close(); }
    } finally { cleanup(dir); }
  });
});

describe('fake Gemini through @google/genai', () => {
  let fake; let ai;
  before(async () => {
    fake = await startFakeCloud({ provider: 'google' });
    ai = new GoogleGenAI({ apiKey: fake.key, httpOptions: { baseUrl: fake.url, timeout: 10000 } });
  });
  after(() => fake.close());

  test('generateContent: text, systemInstruction, generationConfig, usage', async () => {
    const r = await ai.models.generateContent({
      model: 'gemini-x', contents: 'hello there',
      config: { systemInstruction: 'Be brief.', temperature: 0.5, topP: 0.9, topK: 20, maxOutputTokens: 50, stopSequences: ['zzz'] },
    });
    assert.equal(r.text, 'echo: hello there');
    assert.equal(r.candidates[0].finishReason, FinishReason.STOP);
    assert.equal(r.usageMetadata.promptTokenCount, 4);
    assert.equal(r.usageMetadata.candidatesTokenCount, 3);
    assert.equal(r.usageMetadata.totalTokenCount, 7);
    const q = fake.requests.at(-1);
    assert.equal(q.path, '/v1beta/models/gemini-x:generateContent');
    assert.equal(q.headers['x-goog-api-key'], fake.key);
    assert.deepEqual(q.body.generationConfig, { temperature: 0.5, topP: 0.9, topK: 20, maxOutputTokens: 50, stopSequences: ['zzz'] });
    assert.deepEqual(q.body.systemInstruction.parts, [{ text: 'Be brief.' }]);
  });

  test('generateContentStream: alt=sse deltas, finish on the last chunk', async () => {
    let text = ''; let last;
    for await (const c of await ai.models.generateContentStream({ model: 'gemini-x', contents: 'one two three' })) { text += c.text ?? ''; last = c; }
    assert.equal(text, 'echo: one two three');
    assert.equal(last.candidates[0].finishReason, FinishReason.STOP);
    assert.equal(last.usageMetadata.candidatesTokenCount, 4);
    const q = fake.requests.at(-1);
    assert.equal(q.path, '/v1beta/models/gemini-x:streamGenerateContent');
    assert.equal(q.query.alt, 'sse');
  });

  test('function calls and function responses', async () => {
    const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } }] }];
    const user = { role: 'user', parts: [{ text: 'call get_weather {"city":"Oslo"}' }] };
    const r = await ai.models.generateContent({ model: 'g', contents: [user], config: { tools } });
    assert.deepEqual(r.functionCalls.map((f) => [f.name, f.args]), [['get_weather', { city: 'Oslo' }]]);
    let calls = [];
    for await (const c of await ai.models.generateContentStream({ model: 'g', contents: [user], config: { tools } })) calls = calls.concat(c.functionCalls ?? []);
    assert.deepEqual(calls.map((f) => f.args), [{ city: 'Oslo' }]);
    const back = await ai.models.generateContent({
      model: 'g', config: { tools },
      contents: [user, r.candidates[0].content, { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: '3C' } } }] }],
    });
    assert.equal(back.text, 'tool result: {"temp":"3C"}');
    // the API's own rule: a function response must follow a function call turn
    await assert.rejects(ai.models.generateContent({ model: 'g', contents: [{ role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: {} } }] }] }),
      (e) => e instanceof ApiError && e.status === 400);
  });

  test('finish reasons: MAX_TOKENS and SAFETY', async () => {
    const a = await ai.models.generateContent({ model: 'g', contents: 'one two three', config: { maxOutputTokens: 2 } });
    assert.equal(a.candidates[0].finishReason, FinishReason.MAX_TOKENS);
    assert.equal(a.text, 'echo: one');
    const s = await ai.models.generateContent({ model: 'g', contents: 'please trigger safety' });
    assert.equal(s.candidates[0].finishReason, FinishReason.SAFETY);
    assert.equal(s.text, undefined);
  });

  test('embedContent with several inputs (batchEmbedContents)', async () => {
    const r = await ai.models.embedContent({ model: 'gemini-embedding-001', contents: ['alpha', 'beta', 'gamma'], config: { outputDimensionality: 4 } });
    assert.deepEqual(r.embeddings.map((e) => e.values), ['alpha', 'beta', 'gamma'].map((t) => fakeEmbedding(t, 4)));
    assert.equal(fake.requests.at(-1).path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
  });

  test('errors: provider status as ApiError, mid-stream error throws', async () => {
    fake.enqueue({ error: 429 });
    await assert.rejects(ai.models.generateContent({ model: 'g', contents: 'x' }), (e) => e instanceof ApiError && e.status === 429 && /RESOURCE_EXHAUSTED/.test(e.message));
    const wrong = new GoogleGenAI({ apiKey: 'nope', httpOptions: { baseUrl: fake.url } });
    await assert.rejects(wrong.models.generateContent({ model: 'g', contents: 'x' }), (e) => e instanceof ApiError && e.status === 400 && /API key not valid/.test(e.message));
    fake.enqueue({ streamThenError: 2 });
    const got = [];
    await assert.rejects(async () => { for await (const c of await ai.models.generateContentStream({ model: 'g', contents: 'words 10' })) got.push(c.text); },
      (e) => e instanceof ApiError && e.status === 503);
    assert.equal(got.length, 2);
  });
});

describe('fake OpenAI through openai', () => {
  let fake; let client;
  before(async () => {
    fake = await startFakeCloud({ provider: 'openai' });
    client = new OpenAI({ apiKey: fake.key, baseURL: `${fake.url}/v1`, maxRetries: 0, timeout: 10000 });
  });
  after(() => fake.close());

  test('chat, stream with usage, tool calls', async () => {
    const c = await client.chat.completions.create({ model: 'gpt-x', messages: [{ role: 'user', content: 'hi you' }] });
    assert.equal(c.choices[0].message.content, 'echo: hi you');
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.deepEqual(c.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
    assert.equal(fake.requests.at(-1).headers.authorization, `Bearer ${fake.key}`);
    let text = ''; let usage; let finish;
    for await (const ch of await client.chat.completions.create({ model: 'gpt-x', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'a b' }] })) {
      text += ch.choices[0]?.delta?.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
      if (ch.usage) usage = ch.usage;
    }
    assert.equal(text, 'echo: a b');
    assert.equal(finish, 'stop');
    assert.equal(usage.completion_tokens, 3);
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
    const t = await client.chat.completions.create({ model: 'gpt-x', tools, messages: [{ role: 'user', content: 'call get_weather {"city":"Rome"}' }] });
    assert.equal(t.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(JSON.parse(t.choices[0].message.tool_calls[0].function.arguments), { city: 'Rome' });
    const st = client.chat.completions.stream({ model: 'gpt-x', tools, messages: [{ role: 'user', content: 'call get_weather {"city":"Rome"}' }] });
    const fin = await st.finalChatCompletion();
    assert.deepEqual(JSON.parse(fin.choices[0].message.tool_calls[0].function.arguments), { city: 'Rome' });
  });

  test('embeddings: base64 (the SDK default) and float decode to the same vectors', async () => {
    const a = await client.embeddings.create({ model: 'emb', input: ['x y', 'z'] });
    assert.equal(fake.requests.at(-1).body.encoding_format, 'base64');
    assert.deepEqual(a.data.map((d) => Array.from(d.embedding)), [fakeEmbedding('x y'), fakeEmbedding('z')]);
    const f = await client.embeddings.create({ model: 'emb', input: 'x y', encoding_format: 'float' });
    assert.deepEqual(f.data[0].embedding, fakeEmbedding('x y'));
  });

  test('errors: typed, and a mid-stream error event throws', async () => {
    fake.enqueue({ error: 429, headers: { 'retry-after': '3' } });
    await assert.rejects(client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'x' }] }), OpenAI.RateLimitError);
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${fake.url}/v1`, maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'x' }] }), OpenAI.AuthenticationError);
    fake.enqueue({ streamThenError: 2 });
    await assert.rejects(async () => { for await (const _ of await client.chat.completions.create({ model: 'g', stream: true, messages: [{ role: 'user', content: 'words 9' }] })); },
      OpenAI.APIError);
  });
});

test('fake behaviours: slow client leaving is recorded, dropAfterBytes cuts', async () => {
  const fake = await startFakeCloud({ provider: 'openai' });
  try {
    fake.enqueue({ slowMs: 1500 });
    const ac = new AbortController();
    const p = fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { authorization: `Bearer ${fake.key}`, 'content-type': 'application/json' }, body: '{}' });
    await fake.waitRequests(1);
    ac.abort();
    await assert.rejects(p);
    await new Promise((r) => setTimeout(r, 1700));
    assert.equal(fake.requests[0].aborted, true);
    fake.enqueue({ dropAfterBytes: 10 });
    await assert.rejects(async () => {
      const r = await fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${fake.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) });
      await r.text();
    });
  } finally { await fake.close(); }
});
