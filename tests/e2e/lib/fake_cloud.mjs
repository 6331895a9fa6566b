// Local fakes of the three cloud providers the router's cloud prefixes talk
// to (issue 16). Each speaks its provider's real wire format
// (/work/shared/reference/wire-formats.md sections 1-3) and checks requests
// the way the real API does, so a translation that the real provider would
// refuse is refused here too. tests/e2e/cloud_fakes.test.mjs drives every
// fake with the provider's official SDK: a fake that drifts fails there.
//
// API
//   startFakeCloud({ provider, tls, key }) -> Promise<fake>
//     provider  'openai' | 'anthropic' | 'google'
//     tls       false (HTTP) | true (HTTPS with a CA made in a temp dir) |
//               { dir } (HTTPS with makeTestCA(dir)) | { keyFile, certFile }
//     key       the API key the fake accepts (default FAKE_KEYS[provider])
//   fake = {
//     provider, url (origin, "http://127.0.0.1:PORT"), port, key,
//     baseUrl   what the router's *_BASE_URL wants: the origin for openai and
//               anthropic, origin + "/v1beta" for google,
//     env       { OPENAI_BASE_URL, OPENAI_API_KEY } (or the provider's pair),
//     ca        { caFile, keyFile, certFile } when tls,
//     requests  [{ method, path, query, headers, body (parsed JSON or null),
//                  raw (string), kind ("chat", "completions", "embeddings",
//                  "embed", "batchEmbed"), model (Gemini: from the path),
//                  behaviour, reply, aborted, done }] in order,
//     connections  TCP (or TLS) connections accepted so far,
//     enqueue(...behaviours)  one behaviour per coming request, in order,
//     waitRequests(n, timeoutMs)  resolves once n requests arrived,
//     reset()   forget requests and queued behaviours,
//     close()   stop listening and drop every connection
//   }
//
// Default answer (no behaviour queued): computed from the request, the same
// rules for every provider (see reply() below):
//   - last user text "trigger safety": a safety stop (Gemini SAFETY,
//     Anthropic refusal, OpenAI content_filter);
//   - with tools, last user text "call <tool> <json>" (several joined by
//     " ; "): tool calls with those arguments (Anthropic first says a short
//     text block, like the real model);
//   - last user text "words <n>": n words "w1 w2 ... wn";
//   - the last turn is a tool result: "tool result: <content>";
//   - otherwise "echo: <last user text>".
//   Then stop sequences cut the text (finish stop / stop_sequence) and the
//   max token setting cuts it to that many words (finish length /
//   max_tokens / MAX_TOKENS). A token is a whitespace-separated word;
//   usage counts words (prompt: every text of the request). Streams send one
//   event per word. requests[i].reply records { text, toolCalls, finish,
//   usage } so tests compare against what the fake said.
//   Embeddings: fakeEmbedding(text, dims) (default dims 8), float or base64.
//
// Behaviours (enqueue):
//   { status, headers, body }   that answer as is (body: object -> JSON);
//   { error: status, message, headers }  the provider's own error shape;
//   { streamThenError: n }      a stream that sends n events then the
//                               provider's in-stream error and ends;
//   { slowMs }                  wait before the head; a client that leaves
//                               meanwhile sets requests[i].aborted;
//   { eventDelayMs }            pause between stream events;
//   { malformed: true | 'shape' }  200 with non-JSON (or JSON of the wrong
//                               shape), stream or not;
//   { dropAfterBytes: n }       send the head and n body bytes, then cut the
//                               connection;
//   { events: [...] }           a stream of these events (objects framed as
//                               the provider frames them, strings raw);
//   { reply: {...} }            override fields of the computed reply
//                               ({ text, finish, toolCalls, usage }).
//   Behaviours combine (slowMs + error, eventDelayMs + streamThenError...).
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const FAKE_KEYS = {
  openai: 'sk-fake-openai-key-0123456789',
  anthropic: 'sk-ant-fake-key-0123456789',
  google: 'fake-google-key-0123456789',
};
const ENV_NAMES = {
  openai: ['OPENAI_BASE_URL', 'OPENAI_API_KEY'],
  anthropic: ['ANTHROPIC_API_BASE_URL', 'ANTHROPIC_API_KEY'],
  google: ['GOOGLE_API_BASE_URL', 'GOOGLE_API_KEY'],
};
const MAX_BODY = 8 << 20;

/* ------------------------------------------------------------------ TLS */

/** A test CA and a server certificate for 127.0.0.1/localhost signed by it,
 * made with openssl in dir (kept if already there). */
export function makeTestCA(dir) {
  const f = (n) => path.join(dir, n);
  const out = { caFile: f('ca.pem'), caKeyFile: f('ca.key'), keyFile: f('server.key'), certFile: f('server.pem') };
  if (existsSync(out.certFile)) return out;
  const ossl = (...a) => execFileSync('openssl', a, { stdio: 'pipe', cwd: dir });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', out.caKeyFile, '-out', out.caFile,
    '-days', '2', '-subj', '/CN=llm-router test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', out.keyFile, '-out', f('server.csr'),
    '-subj', '/CN=127.0.0.1');
  const ext = f('server.ext');
  execFileSync('sh', ['-c', `printf '%s\\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' > "${ext}"`]);
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', out.caFile, '-CAkey', out.caKeyFile, '-CAcreateserial',
    '-out', out.certFile, '-days', '2', '-extfile', ext);
  return out;
}

/* ------------------------------------------------------------ helpers */

export function countWords(s) {
  return String(s ?? '').split(/\s+/).filter(Boolean).length;
}

/** The deterministic embedding the fakes answer for text. */
export function fakeEmbedding(text, dims = 8) {
  let h = 2166136261;
  for (const c of Buffer.from(String(text))) { h ^= c; h = Math.imul(h, 16777619) >>> 0; }
  const v = [];
  for (let i = 0; i < dims; i++) {
    h = (Math.imul(h, 1103515245) + 12345) >>> 0;
    v.push(Math.fround(((h >>> 8) % 2000) / 1000 - 1)); // float32-exact, in [-1, 1)
  }
  return v;
}

function b64floats(v) {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

/** The provider's own error body for status. */
export function errorBody(provider, status, message) {
  if (provider === 'anthropic') {
    const type = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error',
      404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 504: 'timeout_error',
      529: 'overloaded_error' }[status] || (status >= 500 ? 'api_error' : 'invalid_request_error');
    return { type: 'error', error: { type, message: message ?? (status === 529 ? 'Overloaded' : type) }, request_id: `req_fake${status}` };
  }
  if (provider === 'google') {
    const st = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED',
      499: 'CANCELLED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' }[status] || (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
    return { error: { code: status, message: message ?? st.toLowerCase().replace(/_/g, ' '), status: st } };
  }
  const [type, code] = { 401: ['invalid_request_error', 'invalid_api_key'], 404: ['invalid_request_error', 'model_not_found'],
    429: ['requests', 'rate_limit_exceeded'], 400: ['invalid_request_error', null] }[status]
    || (status >= 500 ? ['server_error', null] : ['invalid_request_error', null]);
  return { error: { message: message ?? `error ${status}`, type, param: null, code } };
}

class Refuse extends Error {
  constructor(status, message, extra) { super(message); this.status = status; this.extra = extra; }
}
const bad = (m) => { throw new Refuse(400, m); };
const isObj = (o) => o !== null && typeof o === 'object' && !Array.isArray(o);
function onlyKeys(o, allowed, where) {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(`${where}${k}: Extra inputs are not permitted`);
}

/* --------------------------------------------------- the common reply */

// What the fake "model" says, from the prompt (see the header comment).
function reply({ lastText, toolResult, tools, maxTokens, stops }) {
  const r = { text: '', toolCalls: [], finish: 'stop', stopSequence: null };
  const t = String(lastText ?? '').trim();
  if (toolResult === undefined && /trigger safety/.test(t)) { r.finish = 'safety'; return r; }
  if (toolResult === undefined && tools.length && /^call\s/.test(t)) {
    for (const part of t.split(/\s*;\s*(?=call\s)/)) {
      const m = /^call\s+(\S+)\s+([\s\S]*)$/.exec(part);
      if (!m || !tools.includes(m[1])) continue;
      let args;
      try { args = JSON.parse(m[2]); } catch { continue; }
      if (isObj(args)) r.toolCalls.push({ name: m[1], args });
    }
    if (r.toolCalls.length) { r.finish = 'tool'; return r; }
  }
  const m = /^words\s+(\d+)$/.exec(t);
  if (toolResult !== undefined) r.text = `tool result: ${toolResult}`;
  else if (m) r.text = Array.from({ length: Math.min(Number(m[1]), 100000) }, (_, i) => `w${i + 1}`).join(' ');
  else r.text = `echo: ${t}`;
  let cut = -1;
  for (const s of stops || []) {
    const i = s ? r.text.indexOf(s) : -1;
    if (i >= 0 && (cut < 0 || i < cut)) { cut = i; r.stopSequence = s; }
  }
  if (cut >= 0) { r.text = r.text.slice(0, cut); r.finish = 'stop_sequence'; }
  if (maxTokens !== undefined && maxTokens !== null) {
    const words = r.text.split(/(?=\s)/).filter((w) => w.trim());
    if (words.length > maxTokens) { r.text = words.slice(0, maxTokens).join(''); r.finish = 'length'; r.stopSequence = null; }
  }
  return r;
}

// The text of r split into stream pieces: one word each, spaces leading.
function pieces(text) {
  return text.split(/(?=\s)/).filter((p) => p.length);
}

function jsonChunks(s, n = 7) {
  const out = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

/* -------------------------------------------------------------- OpenAI */

function openaiText(content) {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.filter((p) => p && p.type === 'text').map((p) => p.text).join('');
  bad('messages: content must be a string or an array');
}

const openai = {
  auth(req) {
    const a = req.headers.authorization;
    if (!a) return [401, errorBody('openai', 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")];
    if (a !== `Bearer ${this.key}`) return [401, errorBody('openai', 401, 'Incorrect API key provided.')];
    return null;
  },
  route(req) {
    if (req.method === 'POST' && req.path === '/v1/chat/completions') return 'chat';
    if (req.method === 'POST' && req.path === '/v1/completions') return 'completions';
    if (req.method === 'POST' && req.path === '/v1/embeddings') return 'embeddings';
    return null;
  },
  chat(rec, b) {
    if (!isObj(b)) bad('We could not parse the JSON body of your request.');
    if (typeof b.model !== 'string') bad("you must provide a model parameter");
    if (!Array.isArray(b.messages) || !b.messages.length) bad("Invalid 'messages': empty array. Expected an array with minimum length 1.");
    const tools = Array.isArray(b.tools) ? b.tools.map((t) => t?.function?.name).filter(Boolean) : [];
    const last = b.messages[b.messages.length - 1];
    const lastUser = [...b.messages].reverse().find((m) => m.role === 'user');
    const stops = b.stop === undefined || b.stop === null ? [] : [].concat(b.stop);
    const r = reply({ lastText: openaiText(lastUser?.content), toolResult: last.role === 'tool' ? openaiText(last.content) : undefined,
      tools, maxTokens: b.max_completion_tokens ?? b.max_tokens, stops });
    const prompt = b.messages.reduce((n, m) => n + countWords(openaiText(m.content)), 0);
    return { r, prompt, stream: b.stream === true, usageInStream: b.stream_options?.include_usage === true };
  },
  finish(r) { return { stop: 'stop', stop_sequence: 'stop', length: 'length', tool: 'tool_calls', safety: 'content_filter' }[r.finish]; },
  toolCalls(r, seq) {
    return r.toolCalls.map((c, i) => ({ id: `call_fake${seq}_${i}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } }));
  },
  answer(rec, q, model, seq) {
    const { r } = q;
    const created = 1700000000 + seq;
    const id = `chatcmpl-fake${seq}`;
    const usage = { prompt_tokens: q.prompt, completion_tokens: r.usageOut, total_tokens: q.prompt + r.usageOut };
    if (rec.kind === 'completions') {
      const base = { id: `cmpl-fake${seq}`, object: 'text_completion', created, model };
      if (!q.stream) return { json: { ...base, choices: [{ text: r.text, index: 0, logprobs: null, finish_reason: this.finish(r) }], usage } };
      const ev = pieces(r.text).map((p) => ({ ...base, choices: [{ text: p, index: 0, logprobs: null, finish_reason: null }] }));
      ev.push({ ...base, choices: [{ text: '', index: 0, logprobs: null, finish_reason: this.finish(r) }] });
      if (q.usageInStream) ev.push({ ...base, choices: [], usage });
      return { events: ev.concat(['[DONE]']) };
    }
    const tc = this.toolCalls(r, seq);
    if (!q.stream) {
      const message = { role: 'assistant', content: tc.length ? null : r.text, refusal: null, annotations: [] };
      if (tc.length) message.tool_calls = tc;
      return { json: { id, object: 'chat.completion', created, model, choices: [{ index: 0, message, logprobs: null, finish_reason: this.finish(r) }], usage, service_tier: 'default', system_fingerprint: null } };
    }
    const base = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: null };
    const u = q.usageInStream ? { usage: null } : {};
    const ch = (delta, finish = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...u });
    const ev = [ch({ role: 'assistant', content: tc.length ? null : '', refusal: null })];
    for (const p of pieces(r.text)) ev.push(ch({ content: p }));
    tc.forEach((c, i) => {
      ev.push(ch({ tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }));
      for (const a of jsonChunks(c.function.arguments)) ev.push(ch({ tool_calls: [{ index: i, function: { arguments: a } }] }));
    });
    ev.push(ch({}, this.finish(r)));
    if (q.usageInStream) ev.push({ ...base, choices: [], usage });
    return { events: ev.concat(['[DONE]']) };
  },
  embeddings(rec, b) {
    if (!isObj(b) || typeof b.model !== 'string') bad('you must provide a model parameter');
    const inputs = typeof b.input === 'string' ? [b.input] : Array.isArray(b.input) ? b.input : bad("'input' is a required property");
    const dims = b.dimensions ?? 8;
    const base64 = b.encoding_format === 'base64';
    const data = inputs.map((t, index) => {
      const v = fakeEmbedding(typeof t === 'string' ? t : JSON.stringify(t), dims);
      return { object: 'embedding', index, embedding: base64 ? b64floats(v) : v };
    });
    const n = inputs.reduce((s, t) => s + countWords(typeof t === 'string' ? t : ''), 0);
    return { json: { object: 'list', data, model: b.model, usage: { prompt_tokens: n, total_tokens: n } } };
  },
  frame(e) { return `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`; },
  streamError() { return { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }; },
  malformedShape() { return { choices: 'not-a-list', id: 7 }; },
};

/* ----------------------------------------------------------- Anthropic */

const ANTHROPIC_TOP = ['model', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k',
  'metadata', 'tools', 'tool_choice', 'thinking', 'service_tier', 'container', 'mcp_servers', 'context_management', 'inference_geo'];

function anthropicBlocks(content, where) {
  if (typeof content === 'string') {
    return [{ type: 'text', text: content }];
  }
  if (!Array.isArray(content)) bad(`${where}.content: Input should be a valid list`);
  content.forEach((blk, j) => {
    const w = `${where}.content.${j}`;
    if (!isObj(blk) || typeof blk.type !== 'string') bad(`${w}: Input tag does not match any of the expected tags`);
    if (blk.type === 'text') {
      if (typeof blk.text !== 'string') bad(`${w}.text: Field required`);
      onlyKeys(blk, ['type', 'text', 'cache_control', 'citations'], `${w}.`);
    } else if (blk.type === 'image') {
      const s = blk.source;
      if (!isObj(s) || !['base64', 'url', 'file'].includes(s.type)) bad(`${w}.source: Input tag does not match any of the expected tags`);
      if (s.type === 'base64' && (typeof s.media_type !== 'string' || typeof s.data !== 'string')) bad(`${w}.source.media_type: Field required`);
      if (s.type === 'url' && typeof s.url !== 'string') bad(`${w}.source.url: Field required`);
    } else if (blk.type === 'tool_use') {
      if (typeof blk.id !== 'string' || typeof blk.name !== 'string') bad(`${w}: tool_use requires id and name`);
      if (!isObj(blk.input)) bad(`${w}.input: Input should be a valid dictionary`);
      onlyKeys(blk, ['type', 'id', 'name', 'input', 'cache_control'], `${w}.`);
    } else if (blk.type === 'tool_result') {
      if (typeof blk.tool_use_id !== 'string') bad(`${w}.tool_use_id: Field required`);
      if (blk.content !== undefined && typeof blk.content !== 'string' && !Array.isArray(blk.content)) bad(`${w}.content: Input should be a valid string or list`);
      onlyKeys(blk, ['type', 'tool_use_id', 'content', 'is_error', 'cache_control'], `${w}.`);
    } else if (!['document', 'thinking', 'redacted_thinking', 'search_result'].includes(blk.type)) {
      bad(`${w}: Input tag '${blk.type}' found using 'type' does not match any of the expected tags`);
    }
  });
  return content;
}

function blockText(b) {
  if (b.type === 'text') return b.text;
  if (b.type === 'tool_result') return typeof b.content === 'string' ? b.content : (b.content || []).filter((x) => x.type === 'text').map((x) => x.text).join('');
  return '';
}

const anthropic = {
  auth(req) {
    const k = req.headers['x-api-key'];
    if (!k) return [401, errorBody('anthropic', 401, 'x-api-key header is required')];
    if (k !== this.key) return [401, errorBody('anthropic', 401, 'invalid x-api-key')];
    if (!req.headers['anthropic-version']) return [400, errorBody('anthropic', 400, 'anthropic-version: header is required')];
    return null;
  },
  route(req) { return req.method === 'POST' && req.path === '/v1/messages' ? 'chat' : null; },
  chat(rec, b) {
    if (!isObj(b)) bad('Request body must be a JSON object');
    onlyKeys(b, ANTHROPIC_TOP, '');
    if (typeof b.model !== 'string') bad('model: Field required');
    if (!Number.isInteger(b.max_tokens)) bad('max_tokens: Field required');
    if (b.max_tokens < 0) bad('max_tokens: Input should be greater than or equal to 0');
    if (!Array.isArray(b.messages)) bad('messages: Field required');
    if (b.system !== undefined && typeof b.system !== 'string') {
      if (!Array.isArray(b.system)) bad('system: Input should be a valid string or list');
      b.system.forEach((s, i) => { if (!isObj(s) || s.type !== 'text' || typeof s.text !== 'string') bad(`system.${i}: Input should be a text block`); });
    }
    if (b.temperature !== undefined && !(typeof b.temperature === 'number' && b.temperature >= 0 && b.temperature <= 1)) bad('temperature: Input should be less than or equal to 1');
    if (b.top_p !== undefined && !(typeof b.top_p === 'number' && b.top_p >= 0 && b.top_p <= 1)) bad('top_p: Input should be less than or equal to 1');
    if (b.top_k !== undefined && !(Number.isInteger(b.top_k) && b.top_k >= 0)) bad('top_k: Input should be a valid integer');
    if (b.stop_sequences !== undefined && !(Array.isArray(b.stop_sequences) && b.stop_sequences.every((s) => typeof s === 'string'))) bad('stop_sequences: Input should be a valid list');
    const tools = [];
    if (b.tools !== undefined) {
      if (!Array.isArray(b.tools)) bad('tools: Input should be a valid list');
      b.tools.forEach((t, i) => {
        if (!isObj(t) || typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) bad(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
        if (t.type === undefined || t.type === 'custom') {
          if (!isObj(t.input_schema) || t.input_schema.type !== 'object') bad(`tools.${i}.custom.input_schema: Field required`);
          onlyKeys(t, ['type', 'name', 'description', 'input_schema', 'cache_control'], `tools.${i}.custom.`);
        }
        tools.push(t.name);
      });
    }
    if (b.tool_choice !== undefined) {
      const tc = b.tool_choice;
      if (!isObj(tc) || !['auto', 'any', 'tool', 'none'].includes(tc.type)) bad("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'");
      if (tc.type === 'tool' && typeof tc.name !== 'string') bad('tool_choice.tool.name: Field required');
      onlyKeys(tc, ['type', 'name', 'disable_parallel_tool_use'], 'tool_choice.');
    }
    const msgs = b.messages.map((m, i) => {
      if (!isObj(m)) bad(`messages.${i}: Input should be a valid dictionary`);
      if (m.role !== 'user' && m.role !== 'assistant') bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
      onlyKeys(m, ['role', 'content'], `messages.${i}.`);
      const blocks = anthropicBlocks(m.content, `messages.${i}`);
      blocks.forEach((blk) => {
        if (blk.type === 'text' && blk.text === '' && Array.isArray(m.content)) bad(`messages.${i}: text content blocks must be non-empty`);
        if (blk.type === 'tool_use' && m.role !== 'assistant') bad(`messages.${i}: tool_use blocks are only allowed in assistant messages`);
        if (blk.type === 'tool_result' && m.role !== 'user') bad(`messages.${i}: tool_result blocks are only allowed in user messages`);
      });
      if (typeof m.content === 'string' && m.content === '' && i !== b.messages.length - 1) bad(`messages.${i}: all messages must have non-empty content except for the optional final assistant message`);
      return { role: m.role, blocks };
    });
    // The API combines consecutive same-role turns, then checks that every
    // tool_use is answered by a tool_result in the very next turn and that
    // every tool_result answers a tool_use of the turn before.
    const turns = [];
    for (const m of msgs) {
      if (turns.length && turns[turns.length - 1].role === m.role) turns[turns.length - 1].blocks.push(...m.blocks);
      else turns.push({ role: m.role, blocks: [...m.blocks] });
    }
    turns.forEach((t, i) => {
      const uses = t.blocks.filter((x) => x.type === 'tool_use').map((x) => x.id);
      const next = turns[i + 1];
      if (uses.length && next) {
        const got = next.blocks.filter((x) => x.type === 'tool_result').map((x) => x.tool_use_id);
        const missing = uses.filter((u) => !got.includes(u));
        if (missing.length) bad(`messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
      const prev = turns[i - 1];
      for (const x of t.blocks.filter((y) => y.type === 'tool_result')) {
        const ok = prev && prev.blocks.some((y) => y.type === 'tool_use' && y.id === x.tool_use_id);
        if (!ok) bad(`messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${x.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
      }
    });
    const lastTurn = turns[turns.length - 1];
    if (!lastTurn) bad('messages: at least one message is required');
    const lastUser = [...turns].reverse().find((t) => t.role === 'user');
    const results = lastTurn.role === 'user' ? lastTurn.blocks.filter((x) => x.type === 'tool_result') : [];
    const r = reply({
      lastText: lastUser ? lastUser.blocks.filter((x) => x.type === 'text').map((x) => x.text).join('\n') : '',
      toolResult: results.length ? results.map(blockText).join('\n') : undefined,
      tools, maxTokens: b.max_tokens, stops: b.stop_sequences,
    });
    const sys = typeof b.system === 'string' ? b.system : (b.system || []).map((s) => s.text).join(' ');
    const prompt = countWords(sys) + turns.reduce((n, t) => n + t.blocks.reduce((m, x) => m + countWords(blockText(x)), 0), 0);
    return { r, prompt, stream: b.stream === true };
  },
  stopReason(r) { return { stop: 'end_turn', stop_sequence: 'stop_sequence', length: 'max_tokens', tool: 'tool_use', safety: 'refusal' }[r.finish]; },
  answer(rec, q, model, seq) {
    const { r } = q;
    const content = [];
    if (r.toolCalls.length) content.push({ type: 'text', text: `I'll call ${r.toolCalls.map((c) => c.name).join(' and ')}.` });
    else if (r.text) content.push({ type: 'text', text: r.text });
    r.toolCalls.forEach((c, i) => content.push({ type: 'tool_use', id: `toolu_fake${seq}_${i}`, name: c.name, input: c.args }));
    const id = `msg_fake${seq}`;
    const usage = { input_tokens: q.prompt, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: r.usageOut };
    const stop = { stop_reason: this.stopReason(r), stop_sequence: r.finish === 'stop_sequence' ? r.stopSequence : null };
    if (!q.stream) return { json: { id, type: 'message', role: 'assistant', model, content, ...stop, usage: { ...usage, service_tier: 'standard' } } };
    const ev = [{ type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
      usage: { ...usage, output_tokens: 1, service_tier: 'standard' } } }];
    content.forEach((blk, index) => {
      if (blk.type === 'text') {
        ev.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        if (index === 0) ev.push({ type: 'ping' });
        for (const p of pieces(blk.text)) ev.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: p } });
      } else {
        ev.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: blk.id, name: blk.name, input: {} } });
        if (index === 0) ev.push({ type: 'ping' });
        ev.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
        for (const a of jsonChunks(JSON.stringify(blk.input))) ev.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: a } });
      }
      ev.push({ type: 'content_block_stop', index });
    });
    if (!content.length) ev.push({ type: 'ping' });
    ev.push({ type: 'message_delta', delta: stop, usage: { output_tokens: r.usageOut } });
    ev.push({ type: 'message_stop' });
    return { events: ev };
  },
  frame(e) {
    if (typeof e === 'string') return e;
    // the real API writes ping's data with a space after the colon
    const data = e.type === 'ping' ? '{"type": "ping"}' : JSON.stringify(e);
    return `event: ${e.type}\ndata: ${data}\n\n`;
  },
  streamError() { return { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }; },
  malformedShape() { return { type: 'message', content: 'not-a-list', usage: 5 }; },
};

/* -------------------------------------------------------------- Gemini */

const GEMINI_TOP = ['contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig', 'cachedContent', 'model', 'labels'];
const GEMINI_GEN = ['stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'responseModalities', 'candidateCount',
  'maxOutputTokens', 'temperature', 'topP', 'topK', 'seed', 'presencePenalty', 'frequencyPenalty', 'responseLogprobs', 'logprobs',
  'enableEnhancedCivicAnswers', 'speechConfig', 'thinkingConfig', 'imageConfig', 'mediaResolution'];
// proto-JSON accepts lowerCamel and snake_case names for the same field
const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
function protoKeys(o, allowed, where) {
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    const c = camel(k);
    if (!allowed.includes(c) || (k !== c && k !== snake(c))) {
      throw new Refuse(400, `Invalid JSON payload received. Unknown name "${k}"${where ? ` at '${where}'` : ''}: Cannot find field.`);
    }
    out[c] = v;
  }
  return out;
}

function geminiParts(c, where) {
  if (!isObj(c)) bad(`* GenerateContentRequest.${where}: content must be an object`);
  const cc = protoKeys(c, ['role', 'parts'], where);
  if (!Array.isArray(cc.parts) || !cc.parts.length) bad(`* GenerateContentRequest.${where}.parts: contents.parts must not be empty.`);
  return cc.parts.map((p, j) => {
    const pp = protoKeys(p, ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'thought', 'thoughtSignature', 'executableCode', 'codeExecutionResult', 'videoMetadata'], `${where}.parts[${j}]`);
    const data = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'].filter((k) => pp[k] !== undefined);
    if (data.length !== 1) bad(`* GenerateContentRequest.${where}.parts[${j}].data: required oneof field 'data' must have one initialized field`);
    if (pp.text !== undefined && typeof pp.text !== 'string') bad(`Invalid value at '${where}.parts[${j}].text' (TYPE_STRING)`);
    if (pp.functionCall) {
      const fc = protoKeys(pp.functionCall, ['id', 'name', 'args'], `${where}.parts[${j}].function_call`);
      if (typeof fc.name !== 'string' || !fc.name) bad(`* GenerateContentRequest.${where}.parts[${j}].function_call.name: Name cannot be empty.`);
      if (fc.args !== undefined && !isObj(fc.args)) bad(`Invalid value at '${where}.parts[${j}].function_call.args' (type.googleapis.com/google.protobuf.Struct)`);
      pp.functionCall = fc;
    }
    if (pp.functionResponse) {
      const fr = protoKeys(pp.functionResponse, ['id', 'name', 'response', 'willContinue', 'scheduling', 'parts'], `${where}.parts[${j}].function_response`);
      if (typeof fr.name !== 'string' || !fr.name) bad(`* GenerateContentRequest.${where}.parts[${j}].function_response.name: Name cannot be empty.`);
      if (!isObj(fr.response)) bad(`Invalid value at '${where}.parts[${j}].function_response.response' (type.googleapis.com/google.protobuf.Struct)`);
      pp.functionResponse = fr;
    }
    if (pp.inlineData) {
      const d = protoKeys(pp.inlineData, ['mimeType', 'data', 'displayName'], `${where}.parts[${j}].inline_data`);
      if (typeof d.mimeType !== 'string' || typeof d.data !== 'string') bad(`* GenerateContentRequest.${where}.parts[${j}].inline_data: mime_type and data are required`);
      pp.inlineData = d;
    }
    return pp;
  });
}

function partText(p) {
  if (p.text !== undefined) return p.text;
  if (p.functionResponse) return JSON.stringify(p.functionResponse.response);
  return '';
}

const google = {
  auth(req) {
    const k = req.headers['x-goog-api-key'] ?? req.query.key;
    if (!k) return [403, { error: { code: 403, message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", status: 'PERMISSION_DENIED' } }];
    if (k !== this.key) {
      return [400, { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT',
        details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }] } }];
    }
    return null;
  },
  route(req) {
    const m = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$/.exec(req.path);
    if (!m || req.method !== 'POST') return null;
    req.model = decodeURIComponent(m[1]);
    return { generateContent: 'chat', streamGenerateContent: 'chat', embedContent: 'embed', batchEmbedContents: 'batchEmbed' }[m[2]];
  },
  chat(rec, raw) {
    if (!isObj(raw)) bad('Invalid JSON payload received.');
    const b = protoKeys(raw, GEMINI_TOP, '');
    if (!Array.isArray(b.contents) || !b.contents.length) bad('* GenerateContentRequest.contents: contents is not specified');
    const contents = b.contents.map((c, i) => {
      const parts = geminiParts(c, `contents[${i}]`);
      const role = c.role;
      if (role !== undefined && role !== 'user' && role !== 'model') bad('Please use a valid role: user, model.');
      return { role: role ?? 'user', parts };
    });
    // a function response turn must follow a function call turn and answer
    // as many calls as it made (the API's own checks)
    contents.forEach((c, i) => {
      const resp = c.parts.filter((p) => p.functionResponse);
      if (!resp.length) return;
      const prev = contents[i - 1];
      const calls = prev ? prev.parts.filter((p) => p.functionCall) : [];
      if (!calls.length || prev.role !== 'model') bad('Please ensure that function response turn comes immediately after a function call turn.');
      if (calls.length !== resp.length) bad('Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.');
    });
    contents.forEach((c, i) => {
      if (c.parts.some((p) => p.functionCall) && c.role !== 'model') bad(`* GenerateContentRequest.contents[${i}]: function call turn must be a model turn`);
    });
    let sys = '';
    if (b.systemInstruction !== undefined) sys = geminiParts(b.systemInstruction, 'system_instruction').map(partText).join(' ');
    let gen = {};
    if (b.generationConfig !== undefined) {
      if (!isObj(b.generationConfig)) bad("Invalid value at 'generation_config'");
      gen = protoKeys(b.generationConfig, GEMINI_GEN, 'generation_config');
      for (const k of ['temperature', 'topP']) if (gen[k] !== undefined && typeof gen[k] !== 'number') bad(`Invalid value at 'generation_config.${snake(k)}' (TYPE_FLOAT)`);
      for (const k of ['topK', 'maxOutputTokens', 'candidateCount']) if (gen[k] !== undefined && !Number.isInteger(gen[k])) bad(`Invalid value at 'generation_config.${snake(k)}' (TYPE_INT32)`);
      if (gen.temperature !== undefined && (gen.temperature < 0 || gen.temperature > 2)) bad('* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]');
      if (gen.stopSequences !== undefined && (!Array.isArray(gen.stopSequences) || gen.stopSequences.length > 5)) bad('* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences');
    }
    const tools = [];
    if (b.tools !== undefined) {
      if (!Array.isArray(b.tools)) bad("Invalid value at 'tools'");
      b.tools.forEach((t, i) => {
        const tt = protoKeys(t, ['functionDeclarations', 'googleSearch', 'codeExecution', 'urlContext', 'googleSearchRetrieval'], `tools[${i}]`);
        for (const [j, d] of (tt.functionDeclarations || []).entries()) {
          const dd = protoKeys(d, ['name', 'description', 'parameters', 'parametersJsonSchema', 'response', 'responseJsonSchema', 'behavior'], `tools[${i}].function_declarations[${j}]`);
          if (typeof dd.name !== 'string' || !/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$/.test(dd.name)) bad(`* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name.`);
          tools.push(dd.name);
        }
      });
    }
    if (b.toolConfig !== undefined) {
      const tc = protoKeys(b.toolConfig, ['functionCallingConfig', 'retrievalConfig'], 'tool_config');
      if (tc.functionCallingConfig) {
        const f = protoKeys(tc.functionCallingConfig, ['mode', 'allowedFunctionNames'], 'tool_config.function_calling_config');
        if (f.mode !== undefined && !['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'].includes(f.mode)) bad(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "${f.mode}"`);
      }
    }
    const last = contents[contents.length - 1];
    const lastUser = [...contents].reverse().find((c) => c.role === 'user' && c.parts.some((p) => p.text !== undefined));
    const fr = last.parts.filter((p) => p.functionResponse);
    const r = reply({
      lastText: lastUser ? lastUser.parts.filter((p) => p.text !== undefined).map((p) => p.text).join('\n') : '',
      toolResult: fr.length ? fr.map(partText).join('\n') : undefined,
      tools, maxTokens: gen.maxOutputTokens, stops: gen.stopSequences,
    });
    const prompt = countWords(sys) + contents.reduce((n, c) => n + c.parts.reduce((m, p) => m + countWords(partText(p)), 0), 0);
    return { r, prompt, stream: /:streamGenerateContent$/.test(rec.path), sse: rec.query.alt === 'sse' };
  },
  finishReason(r) { return { stop: 'STOP', stop_sequence: 'STOP', length: 'MAX_TOKENS', tool: 'STOP', safety: 'SAFETY' }[r.finish]; },
  answer(rec, q, model, seq) {
    const { r } = q;
    const usage = (out) => ({ promptTokenCount: q.prompt, candidatesTokenCount: out, totalTokenCount: q.prompt + out,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: q.prompt }] });
    const ratings = [{ category: 'HARM_CATEGORY_HATE_SPEECH', probability: r.finish === 'safety' ? 'HIGH' : 'NEGLIGIBLE', ...(r.finish === 'safety' ? { blocked: true } : {}) }];
    const cand = (parts, finish) => {
      const c = { index: 0 };
      if (parts) c.content = { parts, role: 'model' };
      if (finish) { c.finishReason = finish; c.safetyRatings = ratings; }
      return c;
    };
    const meta = { modelVersion: model, responseId: `fakeResp${seq}` };
    const callParts = r.toolCalls.map((c) => ({ functionCall: { name: c.name, args: c.args } }));
    if (!q.stream) {
      const parts = r.finish === 'safety' ? null : callParts.length ? callParts : [{ text: r.text }];
      return { json: { candidates: [cand(parts, this.finishReason(r))], usageMetadata: usage(r.usageOut), ...meta } };
    }
    const ev = [];
    const ps = pieces(r.text);
    let sent = 0;
    if (callParts.length) ev.push({ candidates: [cand(callParts, 'STOP')], usageMetadata: usage(r.usageOut), ...meta });
    else if (r.finish === 'safety') ev.push({ candidates: [cand(null, 'SAFETY')], usageMetadata: usage(0), ...meta });
    else if (!ps.length) ev.push({ candidates: [cand([{ text: '' }], this.finishReason(r))], usageMetadata: usage(0), ...meta });
    ps.forEach((p, i) => {
      sent += 1;
      const lastOne = i === ps.length - 1;
      ev.push({ candidates: [cand([{ text: p }], lastOne ? this.finishReason(r) : null)], usageMetadata: usage(lastOne ? r.usageOut : sent), ...meta });
    });
    return { events: ev, array: !q.sse };
  },
  embedOne(c, dims) {
    const parts = geminiParts(c, 'content');
    return { values: fakeEmbedding(parts.map(partText).join(' '), dims ?? 8) };
  },
  embed(rec, raw) {
    if (!isObj(raw)) bad('Invalid JSON payload received.');
    const b = protoKeys(raw, ['model', 'content', 'taskType', 'title', 'outputDimensionality', 'embedContentConfig'], '');
    if (!b.content) bad('* EmbedContentRequest.content: content is required');
    return { json: { embedding: this.embedOne(b.content, b.outputDimensionality ?? b.embedContentConfig?.outputDimensionality) } };
  },
  batchEmbed(rec, raw) {
    if (!isObj(raw)) bad('Invalid JSON payload received.');
    const b = protoKeys(raw, ['requests'], '');
    if (!Array.isArray(b.requests) || !b.requests.length) bad('* BatchEmbedContentsRequest.requests: requests is required');
    const embeddings = b.requests.map((q, i) => {
      const qq = protoKeys(q, ['model', 'content', 'taskType', 'title', 'outputDimensionality'], `requests[${i}]`);
      if (qq.model !== `models/${rec.model}`) bad(`* BatchEmbedContentsRequest.requests[${i}].model: the model of every request must be the batch's model (models/${rec.model})`);
      if (!qq.content) bad(`* BatchEmbedContentsRequest.requests[${i}].content: content is required`);
      return this.embedOne(qq.content, qq.outputDimensionality);
    });
    return { json: { embeddings } };
  },
  frame(e) { return `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\r\n\r\n`; },
  streamError() { return { error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } }; },
  malformedShape() { return { candidates: 'not-a-list', usageMetadata: 3 }; },
};

const PROVIDERS = { openai, anthropic, google };

/* ---------------------------------------------------------- the server */

function usageOut(r) {
  return countWords(r.text) + r.toolCalls.reduce((n, c) => n + 1 + countWords(JSON.stringify(c.args).replace(/[{}":,]/g, ' ')), 0);
}

export async function startFakeCloud({ provider = 'openai', tls = false, key } = {}) {
  const impl = PROVIDERS[provider];
  if (!impl) throw new Error(`unknown provider ${provider}`);
  const self = { provider, key: key ?? FAKE_KEYS[provider], requests: [], connections: 0, queue: [] };
  const api = Object.create(impl, { key: { value: self.key } });
  let ca;
  if (tls) {
    if (tls.keyFile && tls.certFile) ca = tls;
    else ca = makeTestCA(tls.dir ?? mkdtempSync(path.join(tmpdir(), 'llmr-ca-')));
  }
  const sockets = new Set();
  const handler = (req, res) => handle(self, api, req, res).catch((e) => {
    try { if (!res.headersSent) { res.writeHead(500); res.end(String(e)); } else res.destroy(); } catch {}
  });
  const server = ca ? https.createServer({ key: readFileSync(ca.keyFile), cert: readFileSync(ca.certFile) }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 60000;
  server.on(ca ? 'secureConnection' : 'connection', (s) => { self.connections += 1; });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
  const baseUrl = provider === 'google' ? `${url}/v1beta` : url;
  const [envBase, envKey] = ENV_NAMES[provider];
  return Object.assign(self, {
    url, port, baseUrl, ca, env: { [envBase]: baseUrl, [envKey]: self.key },
    enqueue(...b) { self.queue.push(...b); return self; },
    reset() { self.requests.length = 0; self.queue.length = 0; },
    async waitRequests(n, timeoutMs = 10000) {
      const end = Date.now() + timeoutMs;
      while (self.requests.length < n) {
        if (Date.now() > end) throw new Error(`fake ${provider}: ${self.requests.length} of ${n} requests after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return self.requests;
    },
    close() {
      return new Promise((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); });
    },
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (d) => { n += d.length; if (n > MAX_BODY) { reject(new Refuse(413, 'request too large')); req.destroy(); } else parts.push(d); });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function handle(self, api, req, res) {
  const u = new URL(req.url, 'http://x');
  const rec = { method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: { ...req.headers },
    body: null, raw: '', behaviour: null, reply: null, aborted: false, done: false };
  const raw = await readBody(req);
  rec.raw = raw.toString('utf8');
  self.requests.push(rec);
  const seq = self.requests.length;
  const b = self.queue.length ? self.queue.shift() : {};
  rec.behaviour = b;
  res.on('close', () => { if (!res.writableFinished) rec.aborted = true; });
  if (b.slowMs) {
    await sleep(b.slowMs);
    if (rec.aborted || req.socket.destroyed) { rec.aborted = true; return; }
  }
  const send = (status, body, headers = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const h = { 'content-type': 'application/json', ...headers };
    if (self.provider === 'anthropic') h['request-id'] = `req_fake${seq}`;
    if (self.provider === 'openai') h['x-request-id'] = `req_fake${seq}`;
    writeCut(res, status, h, [text], b, rec);
  };
  if (b.status) return send(b.status, b.body ?? '', b.headers);
  if (b.error) return send(b.error, errorBody(self.provider, b.error, b.message), b.headers);

  const denied = api.auth({ headers: req.headers, query: rec.query });
  if (denied) return send(denied[0], denied[1]);
  const kind = api.route({ method: req.method, path: u.pathname, query: rec.query, set model(m) { rec.model = m; } });
  if (!kind) {
    const nf = self.provider === 'anthropic' ? errorBody('anthropic', 404, 'Not Found')
      : self.provider === 'google' ? errorBody('google', 404, `Requested entity was not found.`)
        : errorBody('openai', 404, `Invalid URL (${req.method} ${u.pathname})`);
    return send(404, nf);
  }
  rec.kind = kind;
  try {
    if (!/^application\/json/.test(req.headers['content-type'] || '') && self.provider !== 'google') bad('Content-Type must be application/json');
    try { rec.body = JSON.parse(rec.raw); } catch { bad('There was an error parsing the body of your request: invalid JSON'); }
  } catch (e) {
    return send(e.status, errorBody(self.provider, e.status, e.message));
  }
  let out;
  try {
    if (kind === 'chat' || kind === 'completions') {
      const q = kind === 'completions' ? completionsQuery(rec.body) : api.chat(rec, rec.body);
      q.r = { ...q.r, ...(b.reply || {}) };
      q.r.usageOut = b.reply?.usageOut ?? usageOut(q.r);
      rec.reply = { text: q.r.text, toolCalls: q.r.toolCalls, finish: q.r.finish, usage: { prompt: q.prompt, completion: q.r.usageOut } };
      const model = self.provider === 'google' ? rec.model : rec.body.model;
      out = api.answer(rec, q, model, seq);
    } else {
      out = api[kind](rec, rec.body);
    }
  } catch (e) {
    if (!(e instanceof Refuse)) throw e;
    return send(e.status, errorBody(self.provider, e.status, e.message));
  }
  if (b.malformed) {
    if (out.events) out.events = b.malformed === 'shape' ? [api.malformedShape()] : ['{"unterminated": [1, 2'];
    else return send(200, b.malformed === 'shape' ? api.malformedShape() : 'this is not JSON {', b.headers);
  }
  if (b.events) out = { events: b.events };
  if (!out.events) return send(200, out.json, b.headers);
  // a stream
  let events = out.events;
  if (b.streamThenError !== undefined) events = events.slice(0, b.streamThenError).concat([{ __error: true }]);
  const framed = events.map((e) => (e && e.__error ? errorFrame(self.provider, api) : api.frame(e)));
  let chunks = framed;
  let ctype = 'text/event-stream';
  if (out.array) {
    // Gemini without alt=sse: a JSON array written piece by piece
    ctype = 'application/json; charset=UTF-8';
    chunks = events.map((e, i) => `${i ? ',\r\n' : '['}${JSON.stringify(e && e.__error ? api.streamError() : e)}`).concat([']']);
  }
  const h = { 'content-type': ctype, 'cache-control': 'no-cache', ...b.headers };
  if (self.provider === 'anthropic') h['request-id'] = `req_fake${seq}`;
  writeCut(res, 200, h, chunks, b, rec);
}

// The provider's error in the middle of a stream: Anthropic sends an
// `event: error`; OpenAI a data event with an "error" member; Gemini plain
// (multi-line) JSON without `data:` (python-genai balances braces for it,
// @google/genai parses a network chunk that is one JSON error object), so
// writeCut sends it as a chunk of its own.
function errorFrame(provider, api) {
  const e = api.streamError();
  if (provider === 'anthropic') return `event: error\ndata: ${JSON.stringify(e)}\n\n`;
  if (provider === 'google') return new SeparateChunk(`${JSON.stringify(e, null, 2)}\n`);
  return api.frame(e);
}
class SeparateChunk extends String {}

function completionsQuery(b) {
  if (!isObj(b) || typeof b.model !== 'string') bad('you must provide a model parameter');
  const prompt = Array.isArray(b.prompt) ? b.prompt.join(' ') : String(b.prompt ?? '');
  const r = reply({ lastText: prompt, toolResult: undefined, tools: [], maxTokens: b.max_tokens ?? 16, stops: b.stop === undefined || b.stop === null ? [] : [].concat(b.stop) });
  return { r, prompt: countWords(prompt), stream: b.stream === true, usageInStream: b.stream_options?.include_usage === true };
}

// Writes the head and the chunks, honouring eventDelayMs and dropAfterBytes.
async function writeCut(res, status, headers, chunks, b, rec) {
  const whole = chunks.map(String).join('');
  if (b.dropAfterBytes === undefined && !b.eventDelayMs && chunks.length <= 1) {
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(whole) });
    res.end(whole, () => { rec.done = true; });
    return;
  }
  res.writeHead(status, headers);
  res.flushHeaders();
  let left = b.dropAfterBytes ?? Infinity;
  for (const c of chunks) {
    if (rec.aborted || res.destroyed) { rec.aborted = true; return; }
    if (c instanceof SeparateChunk) await sleep(30); // its own TCP segment
    const buf = Buffer.from(String(c));
    if (buf.length >= left) {
      if (left > 0) res.write(buf.subarray(0, left));
      await sleep(20);
      res.socket?.destroy();
      return;
    }
    left -= buf.length;
    if (!res.write(buf)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
    if (b.eventDelayMs) await sleep(b.eventDelayMs);
  }
  res.end(() => { rec.done = true; });
}
