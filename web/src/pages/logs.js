// Logs: the router's (/api/dashboard/logs/router) or a node's
// (/api/nodes/:id/logs), a level filter, and follow mode (polls while the
// tab is visible).
import { html, useState, usePoll, LogView, Field, Spinner } from '../lib/ui.js';
import { api, ApiError } from '../lib/api.js';
import { registerPage } from '../lib/shell.js';
import { nodeName } from './nodes.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const RANK = { trace: 0, debug: 1, info: 2, warn: 3, warning: 3, error: 4, fatal: 5 };

function Logs({ query }) {
  const [source, setSource] = useState(query.node || 'router');
  const [level, setLevel] = useState('info');
  const [tail, setTail] = useState('200');
  const [follow, setFollow] = useState(true);
  const [nodes, setNodes] = useState([]);
  const [entries, setEntries] = useState(null);
  const [error, setError] = useState(null);
  usePoll(async () => setNodes(await api('GET', '/api/nodes')), 30000);
  const n = Math.max(1, Math.min(1000, parseInt(tail, 10) || 200));
  const load = async () => {
    try {
      if (source === 'router') {
        const r = await api('GET', '/api/dashboard/logs/router', { query: { level, tail: n } });
        setEntries(r.entries);
      } else {
        const r = await api('GET', `/api/nodes/${encodeURIComponent(source)}/logs`, { query: { tail: n } });
        // a node's log has no level filter: filter here
        setEntries(r.entries.filter((e) => (RANK[String(e.level).toLowerCase()] ?? 2) >= RANK[level]));
      }
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) {
        setError(e.message);
        setEntries(null);
      } else throw e;
    }
  };
  const refresh = usePoll(load, follow ? 3000 : 0, [source, level, n, follow]);
  const options = [{ value: 'router', label: 'Router' }, ...nodes.map((x) => ({ value: x.id, label: `Node: ${nodeName(x)}${x.online ? '' : ' (offline)'}` }))];
  return html`<div class="page" data-testid="page-logs">
    <div class="page-head"><h1>Logs</h1></div>
    <div class="toolbar">
      <${Field} label="Source" type="select" value=${source} onInput=${setSource} options=${options} testid="log-source" />
      <${Field} label="Level (and more severe)" type="select" value=${level} onInput=${setLevel} options=${LEVELS.map((l) => ({ value: l, label: l }))} testid="log-level" />
      <${Field} label="Lines" type="number" min="1" max="1000" value=${tail} onInput=${setTail} testid="log-tail" />
      <${Field} label="Follow (refresh every 3 s)" type="checkbox" value=${follow} onInput=${setFollow} testid="log-follow" />
      ${!follow && html`<button type="button" class="btn" onClick=${refresh}>Refresh</button>`}
    </div>
    ${error ? html`<div class="form-error" role="alert" data-testid="log-error">${error}</div>`
      : entries ? html`<${LogView} entries=${entries} follow=${follow} testid="log-view" />` : html`<${Spinner} />`}
  </div>`;
}

registerPage('/logs', { title: 'Logs', component: Logs });
