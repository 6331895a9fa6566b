// Models (#/models): the registered models with size, quantisation and
// readiness on each node (/api/models/registered, /api/nodes: a node lists a
// model once it has it, its model_sync says how far a pull has come);
// registration from Hugging Face with a search of GGUF repositories and live
// download progress (/api/models/tasks polled every second while a task is
// active, only while the tab is visible); discovery of the GGUF files in the
// router's models directory; conversion tasks with their log; deletion after
// a confirmation. Viewers see it all without the buttons (the API refuses
// them anyway).
import { api, isAdmin } from '../lib/api.js';
import { registerPage } from '../lib/shell.js';
import './models_history.css';
import {
  html, useState, useEffect, useRef, useCallback, Table, Card, EmptyState, Spinner, ProgressBar, StatusBadge, Field,
  formatBytes, formatTime, formatDuration, formatNumber, toast, toastError, confirm, usePoll,
} from '../lib/ui.js';

const ACTIVE = new Set(['queued', 'downloading', 'verifying', 'converting']);
const FAST_MS = 1000; // while something moves
const SLOW_MS = 10000; // otherwise

/** A model id as a path: each segment escaped, the slashes kept (the route is /api/models/*model_name). */
export function modelPath(id) {
  return id.split('/').map(encodeURIComponent).join('/');
}

function params(n) {
  if (!n) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

function nodeName(n) {
  return n.custom_name || n.machine_name || n.id;
}

// Where model id stands on node n: null (not there, nothing under way) or
// {state, bytes, total, error}.
export function readiness(n, id) {
  if ((n.available_models || []).includes(id)) {
    if (!n.online) return { state: 'offline' };
    return { state: n.initializing ? 'loading' : 'ready' };
  }
  const s = (n.model_sync || []).find((e) => e.model === id);
  return s ? { state: s.state, bytes: s.bytes, total: s.total, error: s.error } : null;
}

function NodeReadiness({ model, nodes }) {
  const rows = nodes.map((n) => ({ n, r: readiness(n, model.id) })).filter((x) => x.r);
  return html`<div class="readiness" data-testid="model-readiness">
    <div><strong>${model.ready_nodes}</strong> ready of ${model.nodes} node${model.nodes === 1 ? '' : 's'}</div>
    ${rows.map(({ n, r }) => html`<div key=${n.id} class="readiness-node">
      <span class="muted">${nodeName(n)}:</span> <${StatusBadge} status=${r.state} />
      ${r.total > 0 && r.state !== 'ready' && html`<${ProgressBar} value=${r.bytes} max=${r.total} label=${`${formatBytes(r.bytes)} of ${formatBytes(r.total)}`} />`}
      ${r.error && html`<span class="hint">${r.error}</span>`}
    </div>`)}
  </div>`;
}

// ---- registered models ----

function ModelsTable({ models, nodes, admin, onDeleted }) {
  const del = async (m) => {
    const ok = await confirm(`Delete the model "${m.id}"? Its files are removed when they lie in the router's models directory, and nodes drop the copies they synced.`,
      { title: 'Delete model', okLabel: 'Delete', danger: true });
    if (!ok) return;
    try {
      await api('DELETE', `/api/models/${modelPath(m.id)}`);
      toast(`Deleted ${m.id}`, 'success');
      onDeleted();
    } catch (e) {
      toastError(e, `Deleting ${m.id}`);
    }
  };
  const columns = [
    { key: 'id', label: 'Model', render: (m) => html`<strong class="wrap" data-testid="model-id">${m.id}</strong>` },
    { key: 'format', label: 'Format' },
    { key: 'size', label: 'Size', render: (m) => formatBytes(m.size), class: 'num' },
    { key: 'quantization', label: 'Quantisation', value: (m) => (m.info && m.info.quantization) || null },
    { key: 'parameters', label: 'Parameters', value: (m) => (m.info ? m.info.parameters : null), render: (m) => params(m.info && m.info.parameters), class: 'num' },
    { key: 'context', label: 'Context', value: (m) => (m.info ? m.info.context_length : null), render: (m) => (m.info && m.info.context_length ? formatNumber(m.info.context_length, 0) : '–'), class: 'num' },
    { key: 'source', label: 'Source', value: (m) => (m.source ? [m.source.repo, m.source.file].filter(Boolean).join(' / ') : 'local file') },
    { key: 'ready', label: 'Nodes', value: (m) => m.ready_nodes, render: (m) => html`<${NodeReadiness} model=${m} nodes=${nodes} />` },
  ];
  if (admin) {
    columns.push({
      key: 'actions', label: 'Actions', sortable: false,
      render: (m) => html`<button type="button" class="btn btn-small btn-danger" data-testid="model-delete" aria-label=${`Delete ${m.id}`} onClick=${() => del(m)}>Delete</button>`,
    });
  }
  return html`<${Table} testid="models-table" caption="Registered models" columns=${columns} rows=${models} rowKey=${(m) => m.id}
    filter="Filter models…" initialSort=${{ key: 'id', dir: 1 }}
    empty=${html`<${EmptyState} title="No models registered yet.">
      ${admin ? 'Register one from Hugging Face below, or put GGUF files in the router\'s models directory and press "Discover local files".'
        : 'An admin registers models from Hugging Face or from the router\'s models directory.'}
    <//>`} />`;
}

// ---- Hugging Face ----

function HfSearch({ onPick }) {
  const [q, setQ] = useState('');
  const [busy, setBusy] = useState(false);
  const [results, setResults] = useState(null);
  const [error, setError] = useState(null);
  const search = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const j = await api('GET', '/api/models/available', { query: { source: 'hf', search: q.trim(), limit: 20 } });
      setResults(j.models || []);
    } catch (err) {
      setError(err.message);
      setResults(null);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="hf-search">
    <form class="toolbar" onSubmit=${search} role="search">
      <${Field} label="Search GGUF repositories on Hugging Face" type="search" value=${q} onInput=${setQ} placeholder="e.g. llama 3 8b" testid="hf-search" />
      <button type="submit" class="btn" disabled=${busy} data-testid="hf-search-go">${busy ? 'Searching…' : 'Search'}</button>
    </form>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    ${results && html`<${Table} testid="hf-results" caption="Repositories" rows=${results} rowKey=${(r) => r.repo}
      columns=${[
        { key: 'repo', label: 'Repository', render: (r) => html`<span class="wrap">${r.repo}</span>${r.gated ? html` <span class="badge badge-warn" title="needs HF_TOKEN with access">gated</span>` : ''}` },
        { key: 'downloads', label: 'Downloads', render: (r) => formatNumber(r.downloads, 0), class: 'num' },
        { key: 'likes', label: 'Likes', render: (r) => formatNumber(r.likes, 0), class: 'num' },
        { key: 'updated', label: 'Updated', render: (r) => formatTime(r.updated) },
        { key: 'use', label: '', sortable: false, render: (r) => html`<button type="button" class="btn btn-small" data-testid="hf-use" onClick=${() => onPick(r.repo)}>Use</button>` },
      ]}
      empty=${html`<${EmptyState} title="No GGUF repository matches.">Try fewer words.<//>`} />`}
  </div>`;
}

function RegisterForm({ onTask }) {
  const [repo, setRepo] = useState('');
  const [file, setFile] = useState('');
  const [revision, setRevision] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { repo: repo.trim() };
      if (file.trim()) body.filename = file.trim();
      if (revision.trim()) body.revision = revision.trim();
      const t = await api('POST', '/api/models/register', { body });
      toast(`Downloading ${t.filename || t.repo} as ${t.model_id || 'a new model'}`, 'success');
      setFile('');
      onTask(t);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Card} title="Register from Hugging Face" testid="hf-register">
    <form onSubmit=${submit} data-testid="register-form">
      <div class="two-col">
        <${Field} label="Repository" value=${repo} onInput=${setRepo} required placeholder="owner/name-GGUF" testid="register-repo"
          hint="A Hugging Face repository with GGUF files" />
        <${Field} label="File (optional)" value=${file} onInput=${setFile} placeholder="model.Q4_K_M.gguf" testid="register-file"
          hint="Empty: the router picks one (Q4_K_M first)" />
      </div>
      <${Field} label="Revision (optional)" value=${revision} onInput=${setRevision} placeholder="main" testid="register-revision" />
      ${error && html`<p class="form-error" role="alert" data-testid="register-error">${error}</p>`}
      <button type="submit" class="btn btn-primary" disabled=${busy || !repo.trim()} data-testid="register-submit">${busy ? 'Registering…' : 'Register'}</button>
    </form>
    <div class="section"><${HfSearch} onPick=${(r) => { setRepo(r); setError(null); }} /></div>
  <//>`;
}

// ---- tasks ----

function taskLabel(t) {
  if (t.state === 'ready') return `${formatBytes(t.bytes_total)} · ready`;
  if (t.bytes_total > 0) {
    const parts = [`${formatBytes(t.bytes_done)} of ${formatBytes(t.bytes_total)}`, `${Math.floor((t.progress || 0) * 100)}%`];
    if (ACTIVE.has(t.state) && t.speed_bps > 0) parts.push(`${formatBytes(t.speed_bps)}/s`);
    if (ACTIVE.has(t.state) && t.eta_s != null) parts.push(`${formatDuration(t.eta_s * 1000)} left`);
    return parts.join(' · ');
  }
  return t.state;
}

function TaskRow({ t, admin, onChange }) {
  const active = ACTIVE.has(t.state);
  const act = async () => {
    if (active) {
      const ok = await confirm(`Cancel the ${t.kind} of ${t.repo}? What it has fetched so far is removed.`, { title: 'Cancel task', okLabel: 'Cancel task', danger: true });
      if (!ok) return;
    }
    try {
      await api('DELETE', `/api/models/tasks/${encodeURIComponent(t.id)}`);
      onChange();
    } catch (e) {
      toastError(e, active ? 'Cancelling' : 'Removing');
    }
  };
  return html`<li class="task" data-testid="task" data-state=${t.state} data-task=${t.id}>
    <div class="btn-row">
      <strong class="wrap">${t.repo}${t.filename ? ` / ${t.filename}` : ''}</strong>
      ${t.model_id && html`<span class="muted">→ ${t.model_id}</span>`}
      <${StatusBadge} status=${t.state} />
      <span class="muted">${formatTime(t.updated_at || t.created_at)}</span>
      ${admin && html`<button type="button" class="btn btn-small" data-testid=${active ? 'task-cancel' : 'task-remove'} onClick=${act}>${active ? 'Cancel' : 'Remove'}</button>`}
    </div>
    ${(t.kind === 'download' || t.bytes_total > 0) && html`<${ProgressBar} testid="task-progress" value=${t.state === 'ready' ? 1 : t.bytes_total ? t.bytes_done : null}
      max=${t.state === 'ready' ? 1 : t.bytes_total || 1} label=${taskLabel(t)} />`}
    ${t.error && html`<p class="form-error" role="alert" data-testid="task-error">${t.error}</p>`}
    ${t.kind === 'convert' && html`<details class="task-log" open=${t.state === 'failed'}>
      <summary>Converter log (${t.outtype || 'f16'}${t.name ? `, as ${t.name}` : ''})</summary>
      <pre data-testid="task-log">${t.log || '(nothing written yet)'}</pre>
    </details>`}
  </li>`;
}

function TaskList({ tasks, admin, onChange, kind, empty }) {
  const list = tasks.filter((t) => t.kind === kind);
  if (!list.length) return html`<p class="muted">${empty}</p>`;
  return html`<ul class="task-list" data-testid=${`tasks-${kind}`}>${list.map((t) => html`<${TaskRow} key=${t.id} t=${t} admin=${admin} onChange=${onChange} />`)}</ul>`;
}

// ---- discovery, conversion ----

function Discover({ onDone }) {
  const [dir, setDir] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const j = await api('POST', '/api/models/discover-gguf', { body: dir.trim() ? { dir: dir.trim() } : {} });
      setResult(j);
      toast(`Discovery: ${j.registered.length} registered, ${j.skipped.length} skipped`, 'success');
      onDone();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Card} title="Discover local files" testid="discover">
    <form class="toolbar" onSubmit=${run}>
      <${Field} label="Directory (optional)" value=${dir} onInput=${setDir} placeholder="the router's models directory" testid="discover-dir" />
      <button type="submit" class="btn" disabled=${busy} data-testid="discover-run">${busy ? 'Scanning…' : 'Discover local files'}</button>
    </form>
    ${error && html`<p class="form-error" role="alert">${error}</p>`}
    ${result && html`<div data-testid="discover-result">
      <p>${result.registered.length ? `Registered: ${result.registered.map((m) => m.id).join(', ')}` : 'No new model.'}</p>
      ${result.skipped.length > 0 && html`<details><summary>${result.skipped.length} skipped</summary>
        <ul>${result.skipped.map((s, i) => html`<li key=${i}><code>${s.file}</code>: ${s.reason}</li>`)}</ul></details>`}
    </div>`}
  <//>`;
}

function ConvertForm({ onTask }) {
  const [repo, setRepo] = useState('');
  const [outtype, setOuttype] = useState('f16');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { repo: repo.trim(), outtype };
      if (name.trim()) body.name = name.trim();
      const t = await api('POST', '/api/models/convert', { body });
      toast(`Converting ${t.repo}`, 'success');
      onTask(t);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form onSubmit=${submit} data-testid="convert-form">
    <div class="toolbar">
      <${Field} label="Repository (safetensors)" value=${repo} onInput=${setRepo} required placeholder="owner/name" testid="convert-repo" />
      <${Field} label="Output type" type="select" value=${outtype} onInput=${setOuttype} testid="convert-outtype"
        options=${['f16', 'bf16', 'f32', 'q8_0'].map((v) => ({ value: v, label: v }))} />
      <${Field} label="Model name (optional)" value=${name} onInput=${setName} testid="convert-name" />
      <div class="field"><button type="submit" class="btn" disabled=${busy || !repo.trim()} data-testid="convert-submit">${busy ? 'Starting…' : 'Convert'}</button></div>
    </div>
    ${error && html`<p class="form-error" role="alert" data-testid="convert-error">${error}</p>`}
  </form>`;
}

// ---- the page ----

function ModelsPage() {
  const admin = isAdmin();
  const [models, setModels] = useState(null);
  const [tasks, setTasks] = useState([]);
  const [nodes, setNodes] = useState([]);
  const [error, setError] = useState(null);
  const states = useRef(new Map()); // task id -> last state seen

  // a task that reached a terminal state changes the catalogue: read it again
  const noteTasks = (list) => {
    let finished = false;
    for (const t of list) {
      const before = states.current.get(t.id);
      if (before && ACTIVE.has(before) && !ACTIVE.has(t.state)) {
        finished = true;
        if (t.state === 'ready') toast(`${t.model_id || t.repo} is ready`, 'success');
        else if (t.state === 'failed') toast(`${t.repo}: ${t.error || 'failed'}`, 'error');
      }
      states.current.set(t.id, t.state);
    }
    setTasks(list);
    return finished;
  };

  const loadAll = useCallback(async () => {
    try {
      const [reg, ns] = await Promise.all([api('GET', '/api/models/registered'), api('GET', '/api/nodes')]);
      setModels(reg.models || []);
      noteTasks(reg.tasks || []);
      setNodes(Array.isArray(ns) ? ns : []);
      setError(null);
    } catch (e) {
      setError(e);
      if (e.status !== 401) toastError(e, 'Models');
    }
  }, []);

  const anyTask = tasks.some((t) => ACTIVE.has(t.state));
  const anySync = nodes.some((n) => (n.model_sync || []).some((s) => s.state !== 'ready' && s.state !== 'failed'));
  // the catalogue and the nodes: every 10 s, every second while nodes pull models
  usePoll(loadAll, anySync ? FAST_MS : SLOW_MS);
  // the tasks: every second while one is active, else not at all
  usePoll(async () => {
    const j = await api('GET', '/api/models/tasks');
    if (noteTasks(j.tasks || [])) await loadAll();
  }, anyTask ? FAST_MS : 0, [anyTask]);

  const addTask = (t) => {
    if (!t) return;
    states.current.set(t.id, t.state);
    setTasks((old) => [t, ...old.filter((x) => x.id !== t.id)]);
  };

  return html`<div class="page page-models" data-testid="page-models">
    <div class="page-head">
      <h1>Models</h1>
      <button type="button" class="btn" onClick=${loadAll}>Refresh</button>
    </div>
    ${error && !models && html`<p class="form-error" role="alert">${error.message}</p>`}
    ${models ? html`<${ModelsTable} models=${models} nodes=${nodes} admin=${admin} onDeleted=${loadAll} />` : !error && html`<${Spinner} />`}
    <div class="section">
      <h2>Downloads</h2>
      <${TaskList} tasks=${tasks} admin=${admin} onChange=${loadAll} kind="download"
        empty=${admin ? 'No downloads. Register a model from Hugging Face below.' : 'No downloads.'} />
    </div>
    ${admin && html`<div class="section two-col">
      <${RegisterForm} onTask=${addTask} />
      <${Discover} onDone=${loadAll} />
    </div>`}
    <div class="section">
      <h2>Conversions</h2>
      ${admin && html`<${ConvertForm} onTask=${addTask} />`}
      <${TaskList} tasks=${tasks} admin=${admin} onChange=${loadAll} kind="convert"
        empty="No conversion tasks. A conversion turns a safetensors repository into a GGUF model (the router runs LLM_ROUTER_CONVERTER)." />
    </div>
  </div>`;
}

registerPage('/models', { title: 'Models', component: ModelsPage });
