// Request history (#/history, #/history/<id>): the router's recorded requests
// with filters (model, node, status, time range, text), paged on the server
// (/api/dashboard/request-responses), a detail view with both bodies pretty
// printed (streams are stored reassembled), and CSV export of the current
// filter (fetched with the session's token, saved through a blob link: the
// export route needs the Authorization header, a plain link cannot send it).
import { api, apiFetch } from '../lib/api.js';
import { registerPage } from '../lib/shell.js';
import './models_history.css';
import {
  html, useState, useEffect, useCallback, Table, Card, EmptyState, Spinner, CopyButton,
  formatTime, formatDuration, formatNumber, formatBytes, toastError, toast, usePoll, Field,
} from '../lib/ui.js';

const PER_PAGE = 50;
const LIST = '/api/dashboard/request-responses';

// The filters survive a visit to a detail and back (module state).
const EMPTY = { model: '', node_id: '', status: '', from: '', to: '', q: '' };
let saved = { filters: { ...EMPTY }, page: 1 };

// datetime-local value (the browser's time zone) -> ms since the epoch
function toMs(v) {
  if (!v) return undefined;
  const t = new Date(v).getTime();
  return isNaN(t) ? undefined : t;
}

/** The query the list and the export share. */
export function historyQuery(f) {
  return { model: f.model, node_id: f.node_id, status: f.status, from: toMs(f.from), to: toMs(f.to), q: f.q.trim() };
}

function tokens(r) {
  const t = r.tokens || {};
  if (t.prompt == null && t.completion == null) return '–';
  return `${t.prompt ?? '–'} / ${t.completion ?? '–'}`;
}

function clientLabel(c) {
  if (!c) return '–';
  return c.name || c.id || c.kind || '–';
}

function StatusCell({ r }) {
  const ok = r.status_code < 400;
  return html`<span class="status-cell"><span class=${`badge ${ok ? 'badge-ok' : 'badge-bad'}`}>${ok ? 'success' : 'error'}</span> <span class="muted">${r.status_code}</span></span>`;
}

// ---- the list ----

function Filters({ filters, setFilters, apply, models, nodes }) {
  const set = (k) => (v) => setFilters({ ...filters, [k]: v });
  // selects apply at once; text and times on Apply (or Enter)
  const setNow = (k) => (v) => apply({ ...filters, [k]: v });
  return html`<form class="toolbar" data-testid="history-filters" onSubmit=${(e) => { e.preventDefault(); apply(filters); }}>
    <${Field} label="Model" type="select" value=${filters.model} onInput=${setNow('model')} testid="filter-model"
      options=${[{ value: '', label: 'Any model' }, ...models.map((m) => ({ value: m, label: m }))]} />
    <${Field} label="Node" type="select" value=${filters.node_id} onInput=${setNow('node_id')} testid="filter-node"
      options=${[{ value: '', label: 'Any node' }, ...nodes.map((n) => ({ value: n.id, label: n.custom_name || n.machine_name || n.id }))]} />
    <${Field} label="Status" type="select" value=${filters.status} onInput=${setNow('status')} testid="filter-status"
      options=${[{ value: '', label: 'Any status' }, { value: 'success', label: 'Success (< 400)' }, { value: 'error', label: 'Error (≥ 400)' },
        ...['400', '401', '404', '429', '500', '502', '503', '504'].map((c) => ({ value: c, label: c }))]} />
    <${Field} label="From" type="datetime-local" value=${filters.from} onInput=${set('from')} testid="filter-from" />
    <${Field} label="To" type="datetime-local" value=${filters.to} onInput=${set('to')} testid="filter-to" />
    <${Field} label="Text" type="search" value=${filters.q} onInput=${set('q')} placeholder="words in the bodies" testid="filter-q" />
    <div class="btn-row field">
      <button type="submit" class="btn btn-primary" data-testid="filter-apply">Apply</button>
      <button type="button" class="btn" onClick=${() => apply({ ...EMPTY })}>Reset</button>
    </div>
  </form>`;
}

async function exportCsv(filters, setBusy) {
  setBusy(true);
  try {
    const res = await apiFetch('GET', `${LIST}/export`, { query: { format: 'csv', ...historyQuery(filters) } });
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `request-history-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    toast(`Exported ${formatBytes(blob.size)} of CSV`, 'success');
  } catch (e) {
    toastError(e, 'Export failed');
  } finally {
    setBusy(false);
  }
}

function HistoryList() {
  const [filters, setFilters] = useState(saved.filters); // as typed
  const [applied, setApplied] = useState(saved.filters); // as queried
  const [page, setPage] = useState(saved.page);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [models, setModels] = useState([]);
  const [nodes, setNodes] = useState([]);
  const [busy, setBusy] = useState(false);

  useEffect(() => { saved = { filters: applied, page }; }, [applied, page]);

  useEffect(() => {
    // the filter choices: failures here only narrow the pickers
    api('GET', '/v1/models').then((j) => setModels((j && j.data ? j.data : []).map((m) => m.id))).catch((e) => toastError(e, 'Models'));
    api('GET', '/api/nodes').then((j) => setNodes(Array.isArray(j) ? j : [])).catch((e) => toastError(e, 'Nodes'));
  }, []);

  const load = useCallback(async () => {
    try {
      const j = await api('GET', LIST, { query: { ...historyQuery(applied), page, per_page: PER_PAGE } });
      setData(j);
      setError(null);
    } catch (e) {
      setError(e);
      if (e.status !== 401) toastError(e, 'Request history');
    }
  }, [applied, page]);
  // new requests show up on the first page by themselves; older pages stay put
  usePoll(load, page === 1 ? 10000 : 0, [load]);

  const apply = (f) => {
    setFilters(f);
    setApplied(f);
    setPage(1);
  };
  const records = data ? data.records || [] : [];
  const filtered = Object.values(applied).some((v) => v);
  const columns = [
    { key: 'timestamp', label: 'Time', render: (r) => html`<a href=${`#/history/${encodeURIComponent(r.id)}`}>${formatTime(r.timestamp)}</a>`, sortable: false },
    { key: 'model', label: 'Model', sortable: false },
    { key: 'node', label: 'Node', value: (r) => r.node_name || r.node_id, sortable: false },
    { key: 'endpoint', label: 'Endpoint', sortable: false },
    { key: 'status', label: 'Status', render: (r) => html`<${StatusCell} r=${r} />`, sortable: false },
    { key: 'duration_ms', label: 'Duration', render: (r) => formatDuration(r.duration_ms), sortable: false, class: 'num' },
    { key: 'ttft_ms', label: 'TTFT', render: (r) => (r.ttft_ms == null ? '–' : formatDuration(r.ttft_ms)), sortable: false, class: 'num' },
    { key: 'tokens', label: 'Tokens in / out', render: tokens, sortable: false, class: 'num' },
    { key: 'client', label: 'Client', value: (r) => clientLabel(r.client), sortable: false },
    { key: 'stream', label: 'Stream', render: (r) => (r.stream ? 'yes' : 'no'), sortable: false },
  ];
  let body;
  if (!data && !error) body = html`<${Spinner} />`;
  else if (data && data.enabled === false) {
    body = html`<${EmptyState} title="The request history is off.">
      Start the router with <code>LLM_ROUTER_HISTORY=1</code> (the default) to record requests.
    <//>`;
  } else {
    body = html`<${Table} testid="history-table" caption="Recorded requests" columns=${columns} rows=${records} rowKey=${(r) => r.id}
      onRowClick=${(r) => { location.hash = `#/history/${encodeURIComponent(r.id)}`; }}
      empty=${html`<${EmptyState} title=${filtered ? 'No request matches these filters.' : 'No requests recorded yet.'}>
        ${filtered ? 'Widen the time range or reset the filters.' : html`Send one through <code>/v1/chat/completions</code>, or try the <a href="/playground">playground</a>.`}
      <//>`}
      paging=${data && data.total > 0 ? { offset: (page - 1) * PER_PAGE, limit: PER_PAGE, total: data.total, onPage: (off) => setPage(Math.floor(off / PER_PAGE) + 1) } : null} />`;
  }
  return html`<div class="page page-history" data-testid="page-history">
    <div class="page-head">
      <h1>Request history</h1>
      <div class="page-actions">
        <span class="muted" data-testid="history-total">${data ? `${formatNumber(data.total, 0)} request${data.total === 1 ? '' : 's'}` : ''}</span>
        <button type="button" class="btn" onClick=${load}>Refresh</button>
        <button type="button" class="btn" data-testid="history-export" disabled=${busy} onClick=${() => exportCsv(applied, setBusy)}>
          ${busy ? 'Exporting…' : 'Export CSV'}
        </button>
      </div>
    </div>
    <${Card}>
      <${Filters} filters=${filters} setFilters=${setFilters} apply=${apply} models=${models} nodes=${nodes} />
    <//>
    ${error && !data && html`<p class="form-error" role="alert">${error.message}</p>`}
    ${body}
  </div>`;
}

// ---- one request ----

function pretty(body) {
  if (body === null || body === undefined) return null;
  return typeof body === 'string' ? body : JSON.stringify(body, null, 2);
}

function contentText(c) {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map((p) => (p && typeof p.text === 'string' ? p.text : p && p.type ? `[${p.type}]` : '')).join('');
  if (c === null || c === undefined) return '';
  return JSON.stringify(c);
}

// The conversation a chat body carries, and the answer(s) the response holds.
function Conversation({ req, res }) {
  const msgs = req && typeof req === 'object' && Array.isArray(req.messages) ? req.messages : null;
  const prompt = req && typeof req === 'object' && req.prompt !== undefined ? req.prompt : null;
  const choices = res && typeof res === 'object' && Array.isArray(res.choices) ? res.choices : [];
  if (!msgs && prompt === null && !choices.length) return null;
  return html`<${Card} title="Conversation" testid="history-conversation">
    <ol class="convo">
      ${msgs && msgs.map((m, i) => html`<li key=${`m${i}`} class=${`convo-msg convo-${m.role}`}>
        <strong class="convo-role">${m.role}</strong><pre class="convo-text">${contentText(m.content)}</pre></li>`)}
      ${prompt !== null && html`<li class="convo-msg convo-user"><strong class="convo-role">prompt</strong>
        <pre class="convo-text">${typeof prompt === 'string' ? prompt : JSON.stringify(prompt)}</pre></li>`}
      ${choices.map((c, i) => {
        const m = c.message || {};
        const text = c.text !== undefined ? c.text : contentText(m.content);
        const calls = m.tool_calls ? JSON.stringify(m.tool_calls, null, 2) : '';
        return html`<li key=${`c${i}`} class="convo-msg convo-assistant" data-testid="history-answer">
          <strong class="convo-role">${m.role || 'answer'}${choices.length > 1 ? ` #${i}` : ''}${c.finish_reason ? ` · ${c.finish_reason}` : ''}</strong>
          <pre class="convo-text">${text}</pre>
          ${calls && html`<pre>${calls}</pre>`}
        </li>`;
      })}
    </ol>
  <//>`;
}

function BodyBlock({ title, body, bytes, truncated, testid }) {
  const text = pretty(body);
  return html`<${Card} title=${title} testid=${testid}>
    <div class="btn-row muted" style=${{ marginBottom: '8px' }}>${formatBytes(bytes)}${truncated ? ' · truncated when stored' : ''}
      ${text !== null && html` <${CopyButton} text=${text} />`}</div>
    ${text === null ? html`<p class="muted">Not recorded.</p>` : html`<pre>${text}</pre>`}
  <//>`;
}

function Meta({ label, children }) {
  return html`<dt>${label}</dt><dd>${children}</dd>`;
}

function HistoryDetail({ id }) {
  const [r, setR] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    setR(null);
    setError(null);
    api('GET', `${LIST}/${encodeURIComponent(id)}`)
      .then((j) => { if (live) setR(j); })
      .catch((e) => { if (live) { setError(e); if (e.status !== 404 && e.status !== 401) toastError(e, 'Request'); } });
    return () => { live = false; };
  }, [id]);
  const back = html`<a href="#/history" class="btn btn-small" data-testid="history-back">← Request history</a>`;
  if (error) {
    return html`<div class="page" data-testid="page-history-detail">${back}
      <${EmptyState} title=${error.status === 404 ? 'No recorded request has this id.' : 'The request could not be read.'}>${error.message}<//>
    </div>`;
  }
  if (!r) return html`<div class="page" data-testid="page-history-detail">${back}<${Spinner} /></div>`;
  const t = r.tokens || {};
  return html`<div class="page page-history-detail" data-testid="page-history-detail">
    <div class="page-head">
      <div>${back}<h1>Request <code class="wrap">${r.id}</code></h1></div>
    </div>
    <${Card}>
      <dl class="kv">
        <${Meta} label="Received">${formatTime(r.timestamp)}<//>
        <${Meta} label="Status"><${StatusCell} r=${r} /><//>
        <${Meta} label="Endpoint">${r.endpoint || '–'}<//>
        <${Meta} label="Model">${r.model || '–'}<//>
        <${Meta} label="Node">${r.node_name || r.node_id || '–'}<//>
        <${Meta} label="Duration">${formatDuration(r.duration_ms)}<//>
        <${Meta} label="Time to first token">${r.ttft_ms == null ? '–' : formatDuration(r.ttft_ms)}<//>
        <${Meta} label="Tokens (prompt / completion / total)">${t.prompt ?? '–'} / ${t.completion ?? '–'} / ${t.total ?? '–'}<//>
        <${Meta} label="Client">${clientLabel(r.client)}${r.client && r.client.kind ? ` (${r.client.kind})` : ''}${r.client && r.client.address ? ` · ${r.client.address}` : ''}<//>
        <${Meta} label="Streamed">${r.stream ? 'yes (stored reassembled)' : 'no'}<//>
        <${Meta} label="Attempts">${r.attempts}<//>
        ${r.finished_at && html`<${Meta} label="Finished">${formatTime(r.finished_at)}<//>`}
      </dl>
      ${r.error && html`<p class="form-error" role="alert" data-testid="history-error">${r.error.type ? `${r.error.type}: ` : ''}${r.error.message || ''}</p>`}
    <//>
    <${Conversation} req=${r.request_body} res=${r.response_body} />
    <div class="two-col">
      <${BodyBlock} title="Request body" testid="history-request" body=${r.request_body} bytes=${r.request_body_bytes} truncated=${r.request_truncated} />
      <${BodyBlock} title="Response body" testid="history-response" body=${r.response_body} bytes=${r.response_body_bytes} truncated=${r.response_truncated} />
    </div>
  </div>`;
}

registerPage('/history', { title: 'Request history', component: HistoryList });
registerPage('/history/:id', { title: 'Request', component: ({ params }) => html`<${HistoryDetail} id=${params.id} />` });
