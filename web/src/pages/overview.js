// Overview: cards from /api/dashboard/overview, the request trend from
// /api/dashboard/request-history (minute or hour buckets) and a live node
// list from /api/dashboard/nodes; polled every 5 s while the tab is visible.
import { html, useState, Card, Chart, Table, usePoll, formatNumber, formatPercent, formatDuration, formatAgo, StatusBadge, EmptyState } from '../lib/ui.js';
import { api } from '../lib/api.js';
import { registerPage, navigate } from '../lib/shell.js';
import { StartNodeHint, nodeName } from './nodes.js';

const POLL_MS = 5000;

function trendData(buckets) {
  const xs = [];
  const req = [];
  const err = [];
  const tok = [];
  for (const b of buckets || []) {
    const t = Date.parse(b.timestamp);
    if (isNaN(t)) continue;
    xs.push(t / 1000);
    req.push(b.requests);
    err.push(b.errors);
    tok.push(b.total_tokens);
  }
  return [xs, req, err, tok];
}

const TREND_SERIES = [
  { label: 'Requests', color: '#2f6fde' },
  { label: 'Errors', color: '#d9483b' },
  { label: 'Tokens', color: '#1e9e6a', scale: 'y2' },
];

function Overview({ session }) {
  const [ov, setOv] = useState(null);
  const [nodes, setNodes] = useState(null);
  const [bucket, setBucket] = useState('minute');
  const [trend, setTrend] = useState(null);
  usePoll(async () => {
    const [o, n] = await Promise.all([api('GET', '/api/dashboard/overview'), api('GET', '/api/dashboard/nodes')]);
    setOv(o);
    setNodes(n);
  }, POLL_MS);
  usePoll(async () => {
    const t = await api('GET', '/api/dashboard/request-history', { query: { bucket } });
    setTrend(t);
  }, bucket === 'minute' ? POLL_MS * 2 : 60000, [bucket]);

  const hour = (ov && ov.last_hour) || {};
  const histOn = ov && ov.history;
  const win = (v, f) => (histOn && v !== null && v !== undefined ? f(v) : '–');
  return html`<div class="page" data-testid="page-overview">
    <div class="page-head"><h1>Overview</h1>
      ${ov && html`<span class="muted">up ${formatDuration(ov.uptime_seconds * 1000)}</span>`}</div>
    <div class="cards">
      <${Card} testid="card-nodes" title="Nodes online" value=${ov ? `${ov.nodes_online} / ${ov.nodes_total}` : '…'}
        sub=${ov ? `${ov.active_requests} active, ${ov.queued_requests} queued` : ''} />
      <${Card} testid="card-requests" title="Requests (1 h)" value=${ov ? win(hour.requests, formatNumber) : '…'}
        sub=${ov ? `${formatNumber(ov.requests_since_start, 0)} since start` : ''} />
      <${Card} testid="card-errors" title="Error rate (1 h)" value=${ov ? win(hour.error_rate, (v) => formatPercent(v * 100)) : '…'}
        sub=${ov ? `${win(hour.errors, formatNumber)} errors` : ''} />
      <${Card} testid="card-latency" title="Latency (1 h)" value=${ov ? win(hour.average_latency_ms, formatDuration) : '…'}
        sub=${ov ? `p95 ${win(hour.p95_latency_ms, formatDuration)}` : ''} />
      <${Card} testid="card-tps" title="Tokens/s (1 h)" value=${ov ? win(hour.tokens_per_second, (v) => formatNumber(v, 1)) : '…'}
        sub=${ov ? `${win(hour.total_tokens, (v) => formatNumber(v, 0))} tokens` : ''} />
      <${Card} testid="card-models" title="Models" value=${ov ? ov.models_served_count : '…'}
        sub=${ov && ov.models_served.length ? ov.models_served.slice(0, 3).join(', ') + (ov.models_served.length > 3 ? '…' : '') : html`<a href="#/models">register one</a>`} />
    </div>
    ${ov && !ov.history && html`<p class="form-note">The request history is off (LLM_ROUTER_HISTORY=0): the 1-hour figures and the trend need it.</p>`}
    <div class="section">
      <div class="toolbar">
        <h2 style=${{ margin: 0, flex: 1 }}>Request trend</h2>
        <div class="btn-row" role="group" aria-label="Bucket size">
          <button type="button" class=${`btn btn-small${bucket === 'minute' ? ' btn-primary' : ''}`} aria-pressed=${bucket === 'minute'} onClick=${() => setBucket('minute')}>Last hour, per minute</button>
          <button type="button" class=${`btn btn-small${bucket === 'hour' ? ' btn-primary' : ''}`} aria-pressed=${bucket === 'hour'} onClick=${() => setBucket('hour')}>Last day, per hour</button>
        </div>
      </div>
      ${trend ? html`<${Chart} testid="trend-chart" series=${TREND_SERIES} data=${trendData(trend.buckets)} height=${220} />` : html`<div class="chart"><div class="spinner">Loading…</div></div>`}
    </div>
    <div class="section">
      <h2>Nodes</h2>
      ${nodes && nodes.length === 0 ? html`<${EmptyState} title="No nodes yet.">
          <${StartNodeHint} session=${session} />
        <//>` : html`<${Table} testid="overview-nodes" caption="Nodes" rows=${nodes || []} rowKey=${(n) => n.id}
          onRowClick=${(n) => navigate(`/nodes/${encodeURIComponent(n.id)}`)}
          columns=${[
            { key: 'name', label: 'Name', value: nodeName, render: (n) => html`<a href=${`#/nodes/${encodeURIComponent(n.id)}`}>${nodeName(n)}</a>` },
            { key: 'status', label: 'Status', render: (n) => html`<${StatusBadge} status=${n.status} />` },
            { key: 'models', label: 'Models', value: (n) => n.available_models },
            { key: 'in_flight', label: 'Slots in use', value: (n) => n.in_flight, render: (n) => `${n.in_flight} / ${n.total_slots}` },
            { key: 'tps', label: 'Tokens/s', value: (n) => n.tokens_per_second, render: (n) => formatNumber(n.tokens_per_second) },
            { key: 'last_seen', label: 'Last heartbeat', value: (n) => n.last_seen, render: (n) => formatAgo(n.last_seen) },
          ]} />`}
    </div>
  </div>`;
}

registerPage('/overview', { title: 'Overview', component: Overview });
