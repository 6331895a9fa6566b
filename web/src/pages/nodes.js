// Nodes: the table (/api/dashboard/nodes) and a node's detail: metrics
// history (/api/dashboard/metrics/:id), its logs (/api/nodes/:id/logs),
// settings (PUT /api/nodes/:id/settings), disconnect and delete, model sync.
import { html, useState, useEffect, Table, Chart, Card, usePoll, formatNumber, formatPercent, formatDuration, formatAgo, formatTime, formatBytes, StatusBadge, EmptyState, ProgressBar, LogView, Field, confirm, toast, toastError, CopyButton, Spinner } from '../lib/ui.js';
import { api, ApiError } from '../lib/api.js';
import { registerPage, navigate } from '../lib/shell.js';

const POLL_MS = 5000;

export function nodeName(n) {
  return n.display_name || n.custom_name || n.machine_name || n.id;
}

function address(n) {
  return n.ip_address ? `${n.ip_address}:${n.runtime_port}` : '–';
}

function pct(v) {
  return v === null || v === undefined ? '–' : formatPercent(v, 0);
}

function Meter({ value }) {
  if (value === null || value === undefined) return html`<span class="muted">–</span>`;
  return html`<${ProgressBar} value=${value} max=${100} label=${formatPercent(value, 0)} />`;
}

// How to add a node: the command line, with the join token for admins.
export function StartNodeHint({ session }) {
  const [jt, setJt] = useState(null);
  const admin = session && session.user.role === 'admin';
  useEffect(() => {
    if (!admin) return;
    api('GET', '/api/auth/join-token').then(setJt, (e) => toastError(e, 'Join token'));
  }, [admin]);
  const url = location.origin;
  const cmd = `LLM_ROUTER_URL=${url} LLM_ROUTER_JOIN_TOKEN=${jt ? jt.join_token : '<join token>'} LLM_NODE_MODELS_DIR=~/models llm-node`;
  return html`<div>
    <p>Start a node on a machine with GGUF models; it registers itself and appears here within a few seconds:</p>
    <div class="secret-box"><code data-testid="node-command">${cmd}</code>${jt && html`<${CopyButton} text=${cmd} />`}</div>
    ${admin ? html`<p class="hint">The join token is on the <a href="#/users">Users and keys</a> page too.</p>`
      : html`<p class="hint">An admin can see the join token (Users and keys page).</p>`}
  </div>`;
}

function SyncList({ sync }) {
  if (!sync || sync.length === 0) return null;
  return html`<div class="sync-list" data-testid="model-sync">
    ${sync.map((s) => html`<div key=${s.model} class="field">
      <span><strong>${s.model}</strong> <${StatusBadge} status=${s.state} />${s.error ? html` <span class="muted">${s.error}</span>` : ''}</span>
      ${s.state !== 'ready' && html`<${ProgressBar} value=${s.total ? s.bytes : null} max=${s.total || 100}
        label=${s.total ? `${formatBytes(s.bytes)} / ${formatBytes(s.total)}` : formatBytes(s.bytes)} />`}
    </div>`)}
  </div>`;
}

const COLUMNS = [
  { key: 'name', label: 'Name', value: nodeName, render: (n) => html`<a href=${`#/nodes/${encodeURIComponent(n.id)}`}>${nodeName(n)}</a>${(n.tags || []).length ? html`<div>${n.tags.map((t) => html`<span class="tag">${t}</span>`)}</div>` : ''}` },
  { key: 'address', label: 'Address', value: address, class: 'mono' },
  { key: 'status', label: 'Status', render: (n) => html`<${StatusBadge} status=${n.status} />${n.model_sync && n.model_sync.some((s) => s.state !== 'ready') ? html` <span class="badge badge-warn">syncing</span>` : ''}` },
  { key: 'models', label: 'Models', value: (n) => n.available_models, render: (n) => (n.available_models.length ? n.available_models.join(', ') : html`<span class="muted">none</span>`) },
  { key: 'slots', label: 'Slots in use', value: (n) => n.in_flight, render: (n) => `${n.in_flight} / ${n.total_slots}`, class: 'num' },
  { key: 'cpu', label: 'CPU', value: (n) => n.cpu_usage, render: (n) => html`<${Meter} value=${n.cpu_usage} />` },
  { key: 'mem', label: 'Memory', value: (n) => n.memory_usage, render: (n) => html`<${Meter} value=${n.memory_usage} />` },
  { key: 'gpu', label: 'GPU', value: (n) => n.gpu_usage, render: (n) => (n.gpu_available ? html`<${Meter} value=${n.gpu_usage} />` : html`<span class="muted">none</span>`) },
  { key: 'latency', label: 'Latency', value: (n) => n.recent_latency_ms || n.average_response_time_ms, render: (n) => formatDuration(n.recent_latency_ms || n.average_response_time_ms), class: 'num' },
  { key: 'last_seen', label: 'Last heartbeat', value: (n) => n.last_seen, render: (n) => html`<span title=${formatTime(n.last_seen)}>${formatAgo(n.last_seen)}</span>` },
];

function NodesList({ session }) {
  const [nodes, setNodes] = useState(null);
  usePoll(async () => setNodes(await api('GET', '/api/dashboard/nodes')), POLL_MS);
  const online = nodes ? nodes.filter((n) => n.online).length : 0;
  return html`<div class="page" data-testid="page-nodes">
    <div class="page-head"><h1>Nodes</h1>${nodes && html`<span class="muted">${online} online of ${nodes.length}</span>`}</div>
    ${!nodes ? html`<${Spinner} />` : nodes.length === 0 ? html`<${EmptyState} title="No nodes yet."><${StartNodeHint} session=${session} /><//>`
      : html`<${Table} testid="nodes-table" caption="Nodes" rows=${nodes} rowKey=${(n) => n.id} columns=${COLUMNS} filter="Filter by name, address, model, status…"
          initialSort=${{ key: 'name', dir: 1 }}
          onRowClick=${(n) => navigate(`/nodes/${encodeURIComponent(n.id)}`)} />`}
  </div>`;
}

function metricsData(hist) {
  const xs = [];
  const cpu = [];
  const mem = [];
  const gpu = [];
  const tps = [];
  for (const s of hist || []) {
    const t = Date.parse(s.timestamp);
    if (isNaN(t)) continue;
    xs.push(t / 1000);
    cpu.push(s.cpu_usage);
    mem.push(s.memory_usage);
    gpu.push(s.gpu_usage);
    tps.push(s.tokens_per_second);
  }
  return [xs, cpu, mem, gpu, tps];
}

const METRIC_SERIES = [
  { label: 'CPU %', color: '#2f6fde' },
  { label: 'Memory %', color: '#b7791f' },
  { label: 'GPU %', color: '#7c4dcc' },
  { label: 'Tokens/s', color: '#1e9e6a', scale: 'y2' },
];

function Settings({ node, admin, onSaved }) {
  const [name, setName] = useState(node.custom_name || '');
  const [tags, setTags] = useState((node.tags || []).join(', '));
  const [notes, setNotes] = useState(node.notes || '');
  const [busy, setBusy] = useState(false);
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const body = {
        custom_name: name.trim() ? name.trim() : null,
        tags: tags.split(',').map((t) => t.trim()).filter(Boolean),
        notes: notes.trim() ? notes : null,
      };
      const n = await api('PUT', `/api/nodes/${encodeURIComponent(node.id)}/settings`, { body });
      toast('Settings saved', 'success');
      onSaved(n);
    } catch (err) {
      toastError(err, 'Saving the settings failed');
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="panel" onSubmit=${save} data-testid="node-settings">
    <h2>Settings</h2>
    <${Field} label="Display name" value=${name} onInput=${setName} disabled=${!admin} testid="node-name-input"
      placeholder=${node.machine_name} hint="Empty: the machine name." />
    <${Field} label="Tags (comma-separated)" value=${tags} onInput=${setTags} disabled=${!admin} testid="node-tags-input" />
    <${Field} label="Notes" type="textarea" value=${notes} onInput=${setNotes} disabled=${!admin} testid="node-notes-input" />
    ${admin ? html`<button type="submit" class="btn btn-primary" disabled=${busy} data-testid="node-save">Save</button>`
      : html`<p class="hint">Viewers cannot change settings.</p>`}
  </form>`;
}

function NodeLogs({ id, online }) {
  const [entries, setEntries] = useState(null);
  const [error, setError] = useState(null);
  usePoll(async () => {
    if (!online) return;
    try {
      const r = await api('GET', `/api/nodes/${encodeURIComponent(id)}/logs`, { query: { tail: 200 } });
      setEntries(r.entries);
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 502 || e.status === 503)) setError(e.message);
      else throw e;
    }
  }, POLL_MS * 2, [id, online]);
  return html`<div class="section">
    <h2>Logs</h2>
    ${!online ? html`<${EmptyState} title="The node is offline: its logs come from the node itself." />`
      : error ? html`<div class="form-error" role="alert">${error}</div>`
      : entries ? html`<${LogView} entries=${entries} testid="node-logs" follow=${true} />` : html`<${Spinner} />`}
  </div>`;
}

function NodeDetail({ params, session }) {
  const id = params.id;
  const admin = session && session.user.role === 'admin';
  const [node, setNode] = useState(null);
  const [hist, setHist] = useState(null);
  const [missing, setMissing] = useState(false);
  const [formKey, setFormKey] = useState(0);
  usePoll(async () => {
    try {
      const [n, m] = await Promise.all([
        api('GET', `/api/nodes/${encodeURIComponent(id)}`),
        api('GET', `/api/dashboard/metrics/${encodeURIComponent(id)}`),
      ]);
      setNode(n);
      setHist(m.history);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setMissing(true);
      else throw e;
    }
  }, POLL_MS, [id]);
  if (missing) return html`<div class="page"><h1>Node not found</h1><p>No node with id <code>${id}</code> (it may have been deleted). <a href="#/nodes">Back to the nodes</a>.</p></div>`;
  if (!node) return html`<div class="page"><${Spinner} /></div>`;
  const disconnect = async () => {
    if (!(await confirm(`Disconnect ${nodeName(node)}? It is taken out of rotation until its next registration.`, { title: 'Disconnect node', okLabel: 'Disconnect', danger: true }))) return;
    try {
      setNode(await api('POST', `/api/nodes/${encodeURIComponent(id)}/disconnect`));
      toast('Node disconnected', 'success');
    } catch (e) {
      toastError(e, 'Disconnect failed');
    }
  };
  const del = async () => {
    if (!(await confirm(`Delete ${nodeName(node)} from the router? A running node registers again with its join token.`, { title: 'Delete node', okLabel: 'Delete', danger: true }))) return;
    try {
      await api('DELETE', `/api/nodes/${encodeURIComponent(id)}`);
      toast('Node deleted', 'success');
      navigate('/nodes');
    } catch (e) {
      toastError(e, 'Delete failed');
    }
  };
  return html`<div class="page" data-testid="page-node-detail">
    <div class="page-head">
      <h1 data-testid="node-title">${nodeName(node)}</h1>
      <${StatusBadge} status=${node.status} />
      ${admin && html`<div class="btn-row">
        <button type="button" class="btn" onClick=${disconnect} data-testid="node-disconnect">Disconnect</button>
        <button type="button" class="btn btn-danger" onClick=${del} data-testid="node-delete">Delete</button>
      </div>`}
    </div>
    <p class="muted"><a href="#/nodes">← All nodes</a></p>
    <div class="cards">
      <${Card} title="Slots in use" value=${`${node.in_flight} / ${node.total_slots}`} sub=${`${node.active_requests} active, ${node.queued_requests} queued on the node`} />
      <${Card} title="CPU / memory" value=${`${pct(node.cpu_usage)} / ${pct(node.memory_usage)}`} />
      <${Card} title="GPU" value=${node.gpu_available ? pct(node.gpu_usage) : 'none'} sub=${node.gpu_available ? `memory ${pct(node.gpu_memory_usage)}` : 'CPU node'} />
      <${Card} title="Latency" value=${formatDuration(node.recent_latency_ms || node.average_response_time_ms)} sub=${`${formatNumber(node.tokens_per_second)} tokens/s`} />
      <${Card} title="Requests" value=${formatNumber(node.total_requests, 0)} sub=${`${formatNumber(node.failed_requests, 0)} failed`} />
    </div>
    <div class="two-col">
      <section class="panel">
        <h2>Details</h2>
        <dl class="kv">
          <dt>Id</dt><dd class="mono">${node.id}</dd>
          <dt>Machine</dt><dd>${node.machine_name}</dd>
          <dt>Address</dt><dd class="mono">${address(node)} (API ${node.node_api_port})</dd>
          <dt>Version</dt><dd>${node.runtime_version || '–'}</dd>
          <dt>Registered</dt><dd>${formatTime(node.registered_at)}</dd>
          <dt>Last heartbeat</dt><dd>${formatTime(node.last_seen)} (${formatAgo(node.last_seen)})</dd>
          <dt>Models</dt><dd>${node.available_models.length ? node.available_models.join(', ') : 'none'}</dd>
          <dt>Loaded</dt><dd>${node.loaded_models.length ? node.loaded_models.join(', ') : 'none'}</dd>
          <dt>GPUs</dt><dd>${(node.gpu_devices || []).length ? node.gpu_devices.map((g) => (typeof g === 'string' ? g : g.name || JSON.stringify(g))).join(', ') : 'none'}</dd>
          ${node.notes && html`<dt>Notes</dt><dd>${node.notes}</dd>`}
        </dl>
        ${(node.model_sync || []).length > 0 && html`<h3 class="section">Model sync</h3><${SyncList} sync=${node.model_sync} />`}
      </section>
      <${Settings} key=${formKey} node=${node} admin=${admin} onSaved=${(n) => { setNode(n); setFormKey(formKey + 1); }} />
    </div>
    <div class="section">
      ${hist && hist.length ? html`<${Chart} testid="node-chart" title="Metrics (recent heartbeats)" series=${METRIC_SERIES} data=${metricsData(hist)} height=${220} />`
        : html`<${EmptyState} title="No heartbeats recorded yet." />`}
    </div>
    <${NodeLogs} id=${id} online=${node.online} />
  </div>`;
}

registerPage('/nodes', { title: 'Nodes', component: NodesList });
registerPage('/nodes/:id', { title: 'Node', component: NodeDetail });
