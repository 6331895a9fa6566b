// The chat playground (/playground): pick a model (the nodes' and the cloud
// models of /v1/models), set a system prompt and the sampling fields, and
// chat. Answers stream from POST /v1/chat/completions (fetch + a
// ReadableStream reader, SSE lines parsed here) and render as they arrive
// through lib/markdown.js, which builds vnodes only: a model's output can
// never become markup. Each answer shows its time to first token, tokens per
// second and the node that served it (the router adds no header naming the
// node, so the playground sends its own X-Request-Id and reads the node from
// that request's history record). The request is offered as a curl command.
// It uses the dashboard's signed-in session: /v1 accepts a session token.
import { apiFetch, api, session, onSessionChange, logout } from './lib/api.js';
import {
  html, render, useState, useEffect, useRef, useMemo, Overlays, CopyButton, EmptyState, Field, Spinner,
  formatDuration, formatNumber, toastError,
} from './lib/ui.js';
import { Markdown } from './lib/markdown.js';
import './playground.css';

const SETTINGS_KEY = 'llmr_playground';

// The sampling fields: [name, label, kind, hint, min, max, step]
const SAMPLING = [
  ['temperature', 'Temperature', 'float', '0 to 2', 0, 2, 0.05],
  ['max_tokens', 'Max tokens', 'int', 'tokens to generate at most', 1, undefined, 1],
  ['top_p', 'Top p', 'float', '0 to 1', 0, 1, 0.01],
  ['top_k', 'Top k', 'int', '0: off', 0, undefined, 1],
  ['min_p', 'Min p', 'float', '0 to 1', 0, 1, 0.01],
  ['seed', 'Seed', 'int', 'the same seed, the same answer', 0, undefined, 1],
  ['presence_penalty', 'Presence penalty', 'float', '-2 to 2', -2, 2, 0.1],
  ['frequency_penalty', 'Frequency penalty', 'float', '-2 to 2', -2, 2, 0.1],
  ['repeat_penalty', 'Repeat penalty', 'float', 'llama.cpp nodes; 1: off', 0.01, 10, 0.05],
];

const DEFAULTS = { model: '', system: '', stream: true, stop: '', params: { temperature: '0.7', max_tokens: '512' } };

function loadSettings() {
  try {
    const s = JSON.parse(localStorage.getItem(SETTINGS_KEY) || 'null');
    if (s && typeof s === 'object') return { ...DEFAULTS, ...s, params: { ...DEFAULTS.params, ...(s.params || {}) } };
  } catch (e) {
    /* unreadable: the defaults */
  }
  return { ...DEFAULTS, params: { ...DEFAULTS.params } };
}

function saveSettings(s) {
  try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(s)); } catch (e) { /* storage off: not kept */ }
}

/** The chat completion request for these settings and this conversation. */
export function buildRequest(settings, conversation) {
  const messages = [];
  if (settings.system.trim()) messages.push({ role: 'system', content: settings.system });
  for (const m of conversation) {
    if (m.role === 'user') messages.push({ role: 'user', content: m.content });
    else if (m.role === 'assistant' && !m.error && m.content) messages.push({ role: 'assistant', content: m.content });
  }
  const body = { model: settings.model, messages };
  for (const [name, , kind] of SAMPLING) {
    const v = String(settings.params[name] ?? '').trim();
    if (v === '') continue;
    const n = kind === 'int' ? parseInt(v, 10) : parseFloat(v);
    if (!isNaN(n)) body[name] = n;
  }
  const stop = settings.stop.split('\n').filter((s) => s.length > 0);
  if (stop.length) body.stop = stop;
  body.stream = !!settings.stream;
  if (body.stream) body.stream_options = { include_usage: true };
  return body;
}

/** body as a curl command line for a POSIX shell (the key left to the reader). */
export function curlCommand(origin, body) {
  const json = JSON.stringify(body, null, 2).replace(/'/g, `'\\''`);
  return [
    `curl${body.stream ? ' -N' : ''} ${origin}/v1/chat/completions`,
    `  -H "Authorization: Bearer $LLM_ROUTER_API_KEY"`,
    `  -H "Content-Type: application/json"`,
    `  -d '${json}'`,
  ].join(' \\\n');
}

/** Feeds SSE text to onEvent(data) one event at a time; returns a function for the next piece (null: the end). */
export function sseParser(onEvent) {
  let buf = '';
  let data = [];
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent(data.join('\n'));
      data = [];
    } else if (l.startsWith('data:')) {
      data.push(l.slice(l[5] === ' ' ? 6 : 5));
    } // event:, id:, retry: and ':' comments carry nothing the playground uses
  };
  return (chunk) => {
    if (chunk === null) {
      if (buf) line(buf.replace(/\r$/, ''));
      buf = '';
      line('');
      return;
    }
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
  };
}

let seq = 0;
function requestId() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return `pg-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

// The node that served request id, from its history record (written by the
// router's recorder a moment after the answer ends). The list, filtered to
// the model and the time of sending, always answers 200 (a detail would be
// 404 until the row is written, and the browser logs every 404); a few
// tries, then null (the history may be off).
async function servedBy(id, model, sentMs) {
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, i === 0 ? 100 : 400));
    try {
      const j = await api('GET', '/api/dashboard/request-responses', { query: { model, from: Math.floor(sentMs) - 2000, per_page: 50 } });
      if (!j || j.enabled === false) return null;
      const r = (j.records || []).find((x) => x.id === id);
      if (r) return { node: r.node_name || r.node_id || null, status: r.status_code };
    } catch (e) {
      return null;
    }
  }
  return null;
}

// ---- pieces ----

function ModelPicker({ models, value, onInput, onReload, loading }) {
  const local = models.filter((m) => !m.cloud);
  const cloud = models.filter((m) => m.cloud);
  return html`<div class="field">
    <label for="pg-model">Model</label>
    <div class="btn-row">
      <select id="pg-model" class="input pg-grow" data-testid="pg-model" value=${value} onChange=${(e) => onInput(e.target.value)}>
        ${!models.length && html`<option value="">${loading ? 'Loading…' : 'No model available'}</option>`}
        ${local.length > 0 && html`<optgroup label="On nodes">
          ${local.map((m) => html`<option key=${m.id} value=${m.id}>${m.id}${m.ready_nodes === 0 ? ' (no node ready)' : ''}</option>`)}
        </optgroup>`}
        ${cloud.length > 0 && html`<optgroup label="Cloud">
          ${cloud.map((m) => html`<option key=${m.id} value=${m.id}>${m.id} (${m.owned_by})</option>`)}
        </optgroup>`}
      </select>
      <button type="button" class="btn btn-small" onClick=${onReload} aria-label="Reload the model list">↻</button>
    </div>
  </div>`;
}

function Settings({ settings, set, models, loadModels, loading, busy }) {
  const setParam = (k) => (v) => set({ ...settings, params: { ...settings.params, [k]: v } });
  return html`<aside class="panel pg-settings" aria-label="Settings">
    <${ModelPicker} models=${models} value=${settings.model} onInput=${(v) => set({ ...settings, model: v })} onReload=${loadModels} loading=${loading} />
    <${Field} label="System prompt" type="textarea" rows=${4} value=${settings.system} testid="pg-system"
      onInput=${(v) => set({ ...settings, system: v })} placeholder="You are a helpful assistant." />
    <details class="pg-sampling" open>
      <summary>Sampling</summary>
      <div class="pg-params">
        ${SAMPLING.map(([name, label, , hint, min, max, step]) => html`<${Field} key=${name} label=${label} type="number"
          value=${settings.params[name] ?? ''} onInput=${setParam(name)} hint=${hint} min=${min} max=${max} step=${step}
          placeholder="default" testid=${`pg-${name}`} />`)}
      </div>
      <${Field} label="Stop sequences" type="textarea" rows=${2} value=${settings.stop} hint="one per line" testid="pg-stop-seqs"
        onInput=${(v) => set({ ...settings, stop: v })} />
    </details>
    <${Field} label="Stream the answer" type="checkbox" value=${settings.stream} testid="pg-stream"
      onInput=${(v) => set({ ...settings, stream: v })} disabled=${busy} />
  </aside>`;
}

function Stats({ m }) {
  const s = m.stats || {};
  return html`<div class="pg-stats muted" data-testid="pg-stats">
    ${s.ttft != null && html`<span data-testid="pg-ttft">TTFT ${formatDuration(s.ttft)}</span>`}
    ${s.tps != null && html`<span data-testid="pg-tps">${formatNumber(s.tps, 1)} tokens/s</span>`}
    ${s.tokens != null && html`<span data-testid="pg-tokens">${s.tokens} token${s.tokens === 1 ? '' : 's'}</span>`}
    ${s.total != null && html`<span>${formatDuration(s.total)} in all</span>`}
    ${m.node !== undefined && html`<span data-testid="pg-node">node: ${m.node || (m.cloud ? `cloud (${m.cloud})` : '–')}</span>`}
    ${s.finish && html`<span>${s.finish}</span>`}
    ${m.stopped && html`<span class="badge badge-warn">stopped</span>`}
  </div>`;
}

function Message({ m }) {
  if (m.role === 'user') {
    return html`<li class="pg-msg pg-msg-user" data-testid="pg-user-msg">
      <div class="pg-role">You</div><div class="pg-text pg-plain">${m.content}</div></li>`;
  }
  return html`<li class="pg-msg pg-msg-assistant" data-testid="pg-answer" data-done=${m.done ? 'true' : 'false'} data-request-id=${m.requestId}>
    <div class="pg-role">${m.model || 'Assistant'}</div>
    ${m.reasoning && html`<details class="pg-reasoning"><summary>Reasoning</summary><div class="pg-plain">${m.reasoning}</div></details>`}
    ${m.content ? html`<${Markdown} class="pg-text" text=${m.content} />` : !m.done && !m.error && html`<${Spinner} label="Waiting for the first token…" />`}
    ${m.error && html`<p class="form-error" role="alert" data-testid="pg-error">${m.error}</p>`}
    ${(m.done || m.stats) && html`<${Stats} m=${m} />`}
  </li>`;
}

// ---- the app ----

function Playground({ sess }) {
  const [settings, setSettingsState] = useState(loadSettings);
  const [models, setModels] = useState([]);
  const [loading, setLoading] = useState(true);
  const [conv, setConv] = useState([]);
  const [input, setInput] = useState('');
  const [busy, setBusy] = useState(false);
  const ctrl = useRef(null);
  const list = useRef(null);
  const follow = useRef(true);

  const set = (s) => {
    setSettingsState(s);
    saveSettings(s);
  };

  const loadModels = async () => {
    setLoading(true);
    try {
      const j = await api('GET', '/v1/models');
      const ms = (j && j.data ? j.data : []).map((m) => ({ ...m, cloud: m.owned_by && m.owned_by !== 'llm-router' ? m.owned_by : null }));
      setModels(ms);
      setSettingsState((s) => {
        if (s.model && ms.some((m) => m.id === s.model)) return s;
        const pick = ms.find((m) => !m.cloud && m.ready_nodes > 0) || ms[0];
        return pick ? { ...s, model: pick.id } : s;
      });
    } catch (e) {
      toastError(e, 'Models');
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => { loadModels(); }, []);
  useEffect(() => () => ctrl.current && ctrl.current.abort(), []);

  // keep the newest text in view unless the reader scrolled up
  useEffect(() => {
    const el = list.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [conv]);
  const onScroll = (e) => {
    const el = e.currentTarget;
    follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const request = useMemo(() => buildRequest(settings, input.trim() ? [...conv, { role: 'user', content: input }] : conv),
    [settings, conv, input]);
  const curl = curlCommand(location.origin, request);

  const update = (id, fn) => setConv((c) => c.map((m) => (m.id === id ? { ...m, ...fn(m) } : m)));

  const send = async () => {
    const text = input.trim();
    if (!text || busy || !settings.model) return;
    const user = { id: ++seq, role: 'user', content: text };
    const model = models.find((m) => m.id === settings.model);
    const rid = requestId();
    const answer = { id: ++seq, role: 'assistant', content: '', reasoning: '', model: settings.model, requestId: rid, done: false,
      cloud: model ? model.cloud : null };
    const body = buildRequest(settings, [...conv, user]);
    setConv((c) => [...c, user, answer]);
    setInput('');
    setBusy(true);
    follow.current = true;
    const ac = new AbortController();
    ctrl.current = ac;
    const t0 = performance.now();
    const sentMs = Date.now();
    let tFirst = null;
    let chunks = 0;
    let usage = null;
    let finish = null;
    let content = '';
    let reasoning = '';
    let error = null;
    let stopped = false;
    const stats = () => {
      const now = performance.now();
      const tokens = usage && usage.completion_tokens != null ? usage.completion_tokens : chunks || null;
      const gen = tFirst !== null ? (now - tFirst) / 1000 : 0;
      return {
        ttft: tFirst !== null ? tFirst - t0 : null,
        tokens,
        // tokens after the first over the time after the first: the decode rate
        tps: tokens > 1 && gen > 0 ? (tokens - 1) / gen : null,
        total: now - t0,
        finish,
      };
    };
    try {
      const res = await apiFetch('POST', '/v1/chat/completions', { body, signal: ac.signal, headers: { 'X-Request-Id': rid, Accept: body.stream ? 'text/event-stream' : 'application/json' } });
      const ctype = res.headers.get('Content-Type') || '';
      if (body.stream && ctype.includes('text/event-stream') && res.body) {
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        const feed = sseParser((data) => {
          if (data === '[DONE]') return;
          let j;
          try { j = JSON.parse(data); } catch (e) { return; }
          if (j.error) {
            error = j.error.message || String(j.error);
            return;
          }
          if (j.usage) usage = j.usage;
          const ch = j.choices && j.choices[0];
          if (!ch) return;
          const d = ch.delta || {};
          const piece = typeof d.content === 'string' ? d.content : '';
          const think = typeof d.reasoning_content === 'string' ? d.reasoning_content : '';
          if ((piece || think) && tFirst === null) tFirst = performance.now();
          if (piece) {
            content += piece;
            chunks++;
          }
          if (think) reasoning += think;
          if (ch.finish_reason) finish = ch.finish_reason;
        });
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          feed(dec.decode(value, { stream: true }));
          update(answer.id, () => ({ content, reasoning, error, stats: tFirst !== null ? stats() : null }));
        }
        feed(dec.decode());
        feed(null);
      } else {
        const j = await res.json();
        tFirst = performance.now();
        const ch = j.choices && j.choices[0];
        content = ch && ch.message && typeof ch.message.content === 'string' ? ch.message.content : '';
        reasoning = ch && ch.message && typeof ch.message.reasoning_content === 'string' ? ch.message.reasoning_content : '';
        usage = j.usage || null;
        finish = ch ? ch.finish_reason : null;
      }
    } catch (e) {
      if (e && e.name === 'AbortError') stopped = true;
      else error = e && e.message ? e.message : String(e);
    } finally {
      ctrl.current = null;
      setBusy(false);
    }
    update(answer.id, () => ({ content, reasoning, error, stopped, done: true, stats: stats() }));
    const who = await servedBy(rid, body.model, sentMs);
    update(answer.id, () => ({ node: who ? who.node : null }));
  };

  const stop = () => { if (ctrl.current) ctrl.current.abort(); };
  const onKey = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };
  const signOut = async () => {
    await logout();
    location.href = '/dashboard#/login';
  };

  return html`<a class="skip-link" href="#pg-input">Skip to the message box</a>
  <header class="app-header">
    <a class="brand" href="/dashboard">llm-router</a>
    <nav class="main-nav" aria-label="Main">
      <a href="/dashboard#/overview">Dashboard</a>
      <a href="/dashboard#/history">Request history</a>
      <a href="/playground" class="active" aria-current="page">Playground</a>
    </nav>
    <div class="user-box">
      <span class="user-name">${sess.user.username}</span>
      <span class=${`badge ${sess.user.role === 'admin' ? 'badge-ok' : 'badge-warn'}`}>${sess.user.role}</span>
      <button type="button" class="btn btn-small" onClick=${signOut}>Sign out</button>
    </div>
  </header>
  <main class="app-main pg-main" id="main">
    <h1 class="sr-only">Chat playground</h1>
    <div class="pg-layout">
      <${Settings} settings=${settings} set=${set} models=${models} loadModels=${loadModels} loading=${loading} busy=${busy} />
      <section class="pg-chat" aria-label="Chat">
        <ol class="pg-messages" ref=${list} onScroll=${onScroll} aria-live="polite" data-testid="pg-messages">
          ${conv.length === 0 && html`<li class="pg-empty"><${EmptyState} title="Ask the model something.">
            ${models.length ? 'Pick a model on the left, type below and press Enter (Shift+Enter for a new line).'
              : loading ? 'Loading the models…' : html`No model is available yet: register one on the dashboard's <a href="/dashboard#/models">Models</a> page, or start a node with a model.`}
          <//></li>`}
          ${conv.map((m) => html`<${Message} key=${m.id} m=${m} />`)}
        </ol>
        <form class="pg-composer" onSubmit=${(e) => { e.preventDefault(); send(); }}>
          <label for="pg-input" class="sr-only">Message</label>
          <textarea id="pg-input" class="input" rows="3" data-testid="pg-input" value=${input} placeholder="Message (Enter sends, Shift+Enter: new line)"
            onInput=${(e) => setInput(e.target.value)} onKeyDown=${onKey}></textarea>
          <div class="btn-row">
            ${busy
              ? html`<button type="button" class="btn btn-danger" data-testid="pg-stop" onClick=${stop}>Stop</button>`
              : html`<button type="submit" class="btn btn-primary" data-testid="pg-send" disabled=${!input.trim() || !settings.model}>Send</button>`}
            <button type="button" class="btn" data-testid="pg-clear" disabled=${busy || !conv.length} onClick=${() => setConv([])}>Clear chat</button>
          </div>
        </form>
        <details class="pg-curl" data-testid="pg-curl">
          <summary>The request as curl</summary>
          <p class="hint">Send it with an API key (Users and API keys page) in <code>LLM_ROUTER_API_KEY</code>.</p>
          <pre data-testid="pg-curl-text">${curl}</pre>
          <div class="btn-row"><${CopyButton} text=${curl} label="Copy curl" testid="pg-curl-copy" /></div>
        </details>
      </section>
    </div>
  </main>`;
}

function SignIn() {
  return html`<header class="app-header"><a class="brand" href="/dashboard">llm-router</a></header>
  <main class="app-main" id="main">
    <h1>Playground</h1>
    <${EmptyState} title="Sign in to use the playground.">
      The playground chats with your signed-in session. <a href="/dashboard#/login" data-testid="pg-signin">Sign in on the dashboard</a>, then come back to <a href="/playground">/playground</a>.
    <//>
  </main>`;
}

function App() {
  const [sess, setSess] = useState(session());
  useEffect(() => onSessionChange(setSess), []);
  useEffect(() => {
    const on = (e) => { if (e.key === 'llmr_token' || e.key === null) setSess(session()); };
    window.addEventListener('storage', on);
    return () => window.removeEventListener('storage', on);
  }, []);
  return html`${sess ? html`<${Playground} sess=${sess} />` : html`<${SignIn} />`}<${Overlays} />`;
}

render(html`<${App} />`, document.getElementById('app'));
