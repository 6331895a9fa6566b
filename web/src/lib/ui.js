// Shared view helpers for the dashboard and the playground: htm bound to
// preact, formatting (dates in the browser's time zone), and the small
// components every page uses. Everything renders through preact, which
// escapes text: no innerHTML anywhere (the CSP forbids inline script, and
// data from the API or a model must never become markup).
import { h, render as preactRender } from 'preact';
import { useState, useEffect, useRef, useCallback, useMemo } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

export const html = htm.bind(h);
export { h, preactRender as render, useState, useEffect, useRef, useCallback, useMemo };

/* ---- formatting ---- */

export function formatBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return '–';
  n = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

// t: a Date, epoch milliseconds, epoch seconds (< 1e12) or an ISO string.
export function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  if (t instanceof Date) return t;
  if (typeof t === 'number') return new Date(t < 1e12 ? t * 1000 : t);
  if (typeof t === 'string' && /^\d+(\.\d+)?$/.test(t)) return toDate(Number(t));
  const d = new Date(t);
  return isNaN(d.getTime()) ? null : d;
}

// A date and time in the browser's time zone.
export function formatTime(t, opts) {
  const d = toDate(t);
  if (!d) return '–';
  return d.toLocaleString(undefined, opts || { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// "12 s ago", "3 min ago", or the date when older than a day.
export function formatAgo(t, now) {
  const d = toDate(t);
  if (!d) return '–';
  const s = Math.round(((now || Date.now()) - d.getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return formatTime(d);
}

// ms -> "850 ms", "1.2 s", "3 min 4 s", "2 h 5 min"
export function formatDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '–';
  ms = Number(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatNumber(n, digits) {
  if (n === null || n === undefined || isNaN(n)) return '–';
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 1 : digits });
}

export function formatPercent(n, digits) {
  if (n === null || n === undefined || isNaN(n)) return '–';
  return `${Number(n).toFixed(digits === undefined ? 1 : digits)}%`;
}

/* ---- toasts (API errors are shown, never swallowed) ---- */

let toastSeq = 0;
let toastList = [];
const toastSubs = new Set();
function setToasts(list) {
  toastList = list;
  for (const fn of toastSubs) fn(list);
}

// kind: 'error' | 'info' | 'success'. Errors stay until dismissed.
export function toast(message, kind = 'info', ms) {
  const id = ++toastSeq;
  setToasts([...toastList, { id, message: String(message), kind }]);
  const life = ms !== undefined ? ms : kind === 'error' ? 0 : 4000;
  if (life > 0) setTimeout(() => dismissToast(id), life);
  return id;
}

export function dismissToast(id) {
  setToasts(toastList.filter((t) => t.id !== id));
}

// Show an error from api() (ApiError) or anything thrown; ignores aborts.
export function toastError(err, prefix) {
  if (err && err.name === 'AbortError') return;
  const msg = err && err.message ? err.message : String(err);
  toast(prefix ? `${prefix}: ${msg}` : msg, 'error');
  if (typeof console !== 'undefined') console.warn(prefix || 'error', err && err.status, msg);
}

// The toast host: mount once per page (the shell does; the playground too).
export function Toast() {
  const [list, setList] = useState(toastList);
  useEffect(() => {
    toastSubs.add(setList);
    return () => toastSubs.delete(setList);
  }, []);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${list.map((t) => html`<div key=${t.id} class=${`toast toast-${t.kind}`} role=${t.kind === 'error' ? 'alert' : undefined}>
      <span class="toast-msg">${t.message}</span>
      <button type="button" class="btn-icon" aria-label="Dismiss" onClick=${() => dismissToast(t.id)}>×</button>
    </div>`)}
  </div>`;
}

/* ---- modal and confirm ---- */

const FOCUSABLE = 'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])';

export function Modal({ title, onClose, children, footer, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const prev = document.activeElement;
    const el = ref.current;
    const first = el && (el.querySelector('[autofocus]') || el.querySelector(FOCUSABLE));
    if (first) first.focus();
    const onKey = (e) => {
      if (e.key === 'Escape' && onClose) {
        e.stopPropagation();
        onClose();
      } else if (e.key === 'Tab' && el) {
        const f = [...el.querySelectorAll(FOCUSABLE)].filter((x) => !x.disabled);
        if (!f.length) return;
        if (e.shiftKey && document.activeElement === f[0]) {
          e.preventDefault();
          f[f.length - 1].focus();
        } else if (!e.shiftKey && document.activeElement === f[f.length - 1]) {
          e.preventDefault();
          f[0].focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      if (prev && prev.focus) prev.focus();
    };
  }, []);
  return html`<div class="modal-backdrop" onClick=${(e) => { if (e.target === e.currentTarget && onClose) onClose(); }}>
    <div class=${`modal${wide ? ' modal-wide' : ''}`} role="dialog" aria-modal="true" aria-label=${title} ref=${ref}>
      <div class="modal-head">
        <h2>${title}</h2>
        ${onClose && html`<button type="button" class="btn-icon" aria-label="Close" onClick=${onClose}>×</button>`}
      </div>
      <div class="modal-body">${children}</div>
      ${footer && html`<div class="modal-foot">${footer}</div>`}
    </div>
  </div>`;
}

let confirmState = null;
const confirmSubs = new Set();
function setConfirm(s) {
  confirmState = s;
  for (const fn of confirmSubs) fn(s);
}

// Ask before a destructive action: resolves true (confirmed) or false.
export function confirm(message, { title = 'Are you sure?', okLabel = 'OK', danger = false } = {}) {
  return new Promise((resolve) => {
    if (confirmState) confirmState.resolve(false);
    setConfirm({ message, title, okLabel, danger, resolve });
  });
}

export function ConfirmHost() {
  const [s, setS] = useState(confirmState);
  useEffect(() => {
    confirmSubs.add(setS);
    return () => confirmSubs.delete(setS);
  }, []);
  if (!s) return null;
  const done = (v) => {
    setConfirm(null);
    s.resolve(v);
  };
  return html`<${Modal} title=${s.title} onClose=${() => done(false)}
    footer=${html`<button type="button" class="btn" onClick=${() => done(false)}>Cancel</button>
      <button type="button" class=${s.danger ? 'btn btn-danger' : 'btn btn-primary'} data-testid="confirm-ok" onClick=${() => done(true)}>${s.okLabel}</button>`}>
    <p>${s.message}</p>
  <//>`;
}

// Toasts and the confirm dialog together: what a page mounts once.
export function Overlays() {
  return html`<${Toast} /><${ConfirmHost} />`;
}

/* ---- small pieces ---- */

export function Card({ title, value, sub, children, class: cls, testid }) {
  return html`<section class=${`card${cls ? ` ${cls}` : ''}`} data-testid=${testid}>
    ${title && html`<h3 class="card-title">${title}</h3>`}
    ${value !== undefined && html`<div class="card-value">${value}</div>`}
    ${sub && html`<div class="card-sub">${sub}</div>`}
    ${children}
  </section>`;
}

export function EmptyState({ title, children }) {
  return html`<div class="empty" role="note">
    ${title && html`<p class="empty-title">${title}</p>`}
    ${children && html`<div class="empty-body">${children}</div>`}
  </div>`;
}

// value: 0..max; label: text read by screen readers and shown.
export function ProgressBar({ value, max = 100, label, testid }) {
  const pct = max > 0 && value !== null && value !== undefined ? Math.max(0, Math.min(100, (value / max) * 100)) : null;
  return html`<div class="progress" data-testid=${testid}>
    <div class="progress-track" role="progressbar" aria-valuemin="0" aria-valuemax=${max} aria-valuenow=${value === null || value === undefined ? undefined : value} aria-label=${label || 'progress'}>
      <div class=${`progress-fill${pct === null ? ' progress-indeterminate' : ''}`} style=${{ width: pct === null ? '30%' : `${pct}%` }}></div>
    </div>
    ${label && html`<span class="progress-label">${label}</span>`}
  </div>`;
}

export function StatusBadge({ status }) {
  const s = String(status || 'unknown').toLowerCase();
  const cls = s === 'online' || s === 'ready' || s === 'completed' || s === 'ok' || s === 'active' ? 'ok'
    : s === 'offline' || s === 'failed' || s === 'error' || s === 'revoked' || s === 'expired' ? 'bad'
    : 'warn';
  return html`<span class=${`badge badge-${cls}`}>${s}</span>`;
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // 127.0.0.1 over http is a secure context; other hosts over http are not
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  try {
    if (!document.execCommand('copy')) throw new Error('copy refused');
  } finally {
    document.body.removeChild(ta);
  }
}

export function CopyButton({ text, label = 'Copy', testid }) {
  const [done, setDone] = useState(false);
  const onClick = async () => {
    try {
      await copyText(typeof text === 'function' ? text() : text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch (e) {
      toastError(e, 'Copy failed (select the text and copy it by hand)');
    }
  };
  return html`<button type="button" class="btn btn-small" data-testid=${testid} onClick=${onClick}>${done ? 'Copied' : label}</button>`;
}

/* ---- polling, only while the tab is visible ---- */

// Calls fn now, then every ms while document.visibilityState is 'visible';
// at once again when the tab comes back. Never overlaps two calls. fn may
// return a promise; its errors go to toastError unless fn handles them.
// Returns a function that polls now. deps: re-start when they change.
export function usePoll(fn, ms, deps = []) {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const state = useRef({ busy: false, timer: null, alive: false });
  const tick = useCallback(async () => {
    const st = state.current;
    if (!st.alive || st.busy) return;
    st.busy = true;
    try {
      await fnRef.current();
    } catch (e) {
      toastError(e);
    } finally {
      st.busy = false;
    }
  }, []);
  useEffect(() => {
    const st = state.current;
    st.alive = true;
    const arm = () => {
      clearInterval(st.timer);
      st.timer = null;
      if (ms > 0 && document.visibilityState === 'visible') st.timer = setInterval(tick, ms);
    };
    const onVis = () => {
      if (document.visibilityState === 'visible') tick();
      arm();
    };
    tick();
    arm();
    document.addEventListener('visibilitychange', onVis);
    return () => {
      st.alive = false;
      clearInterval(st.timer);
      st.timer = null;
      document.removeEventListener('visibilitychange', onVis);
    };
  }, [ms, ...deps]);
  return tick;
}

/* ---- table: sortable, filterable, optionally paged on the server ---- */

// columns: [{key, label, render?(row), value?(row) (sort/filter value),
//            sortable? (default true), class?}]
// rows: array. rowKey: (row) => key. onRowClick?(row).
// filter: true or a placeholder string shows a filter box; with onFilter
//   (server-side) the text goes there instead of filtering rows here.
// onSort?(key, dir): server-side sorting instead of sorting rows here.
// paging: {offset, limit, total, onPage(offset)} for server-side paging.
// empty: what to show when there are no rows (EmptyState content).
export function Table({ columns, rows, rowKey, onRowClick, filter, onFilter, onSort, paging, empty, caption, testid, initialSort }) {
  const [sort, setSort] = useState(initialSort || { key: null, dir: 1 });
  const [q, setQ] = useState('');
  const valueOf = (c, r) => (c.value ? c.value(r) : r[c.key]);
  const shown = useMemo(() => {
    let out = rows || [];
    if (q && !onFilter) {
      const needle = q.toLowerCase();
      out = out.filter((r) => columns.some((c) => {
        const v = valueOf(c, r);
        return v !== null && v !== undefined && String(Array.isArray(v) ? v.join(' ') : v).toLowerCase().includes(needle);
      }));
    }
    if (sort.key && !onSort) {
      const c = columns.find((x) => x.key === sort.key);
      if (c) {
        out = [...out].sort((a, b) => {
          const va = valueOf(c, a);
          const vb = valueOf(c, b);
          if (va === vb) return 0;
          if (va === null || va === undefined) return 1;
          if (vb === null || vb === undefined) return -1;
          if (typeof va === 'number' && typeof vb === 'number') return (va - vb) * sort.dir;
          return String(va).localeCompare(String(vb), undefined, { numeric: true }) * sort.dir;
        });
      }
    }
    return out;
  }, [rows, q, sort, columns]);
  const clickSort = (c) => {
    if (c.sortable === false) return;
    const next = sort.key === c.key ? { key: c.key, dir: -sort.dir } : { key: c.key, dir: 1 };
    setSort(next);
    if (onSort) onSort(next.key, next.dir > 0 ? 'asc' : 'desc');
  };
  const filterId = useMemo(() => `tf-${Math.random().toString(36).slice(2, 9)}`, []);
  return html`<div class="table-wrap" data-testid=${testid}>
    ${filter && html`<div class="table-tools">
      <label for=${filterId} class="sr-only">Filter</label>
      <input id=${filterId} type="search" class="input" placeholder=${typeof filter === 'string' ? filter : 'Filter…'} value=${q}
        onInput=${(e) => { setQ(e.target.value); if (onFilter) onFilter(e.target.value); }} />
    </div>`}
    ${shown.length === 0 ? (empty || html`<${EmptyState} title=${q ? 'Nothing matches the filter.' : 'Nothing here yet.'} />`) : html`
    <div class="table-scroll">
      <table class="table stack">
        ${caption && html`<caption class="sr-only">${caption}</caption>`}
        <thead><tr>
          ${columns.map((c) => html`<th key=${c.key} class=${c.class} scope="col"
              aria-sort=${sort.key === c.key ? (sort.dir > 0 ? 'ascending' : 'descending') : undefined}>
            ${c.sortable === false ? c.label : html`<button type="button" class="th-sort" onClick=${() => clickSort(c)}>
              ${c.label}<span class="sort-mark" aria-hidden="true">${sort.key === c.key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}</span>
            </button>`}
          </th>`)}
        </tr></thead>
        <tbody>
          ${shown.map((r, i) => html`<tr key=${rowKey ? rowKey(r) : i} class=${onRowClick ? 'row-link' : undefined}
              tabindex=${onRowClick ? 0 : undefined}
              onClick=${onRowClick ? (e) => { if (!e.target.closest('button, a, input, select')) onRowClick(r); } : undefined}
              onKeyDown=${onRowClick ? (e) => { if (e.key === 'Enter' && e.target === e.currentTarget) onRowClick(r); } : undefined}>
            ${columns.map((c) => html`<td key=${c.key} class=${c.class} data-label=${typeof c.label === 'string' ? c.label : ''}>${c.render ? c.render(r) : fmtCell(valueOf(c, r))}</td>`)}
          </tr>`)}
        </tbody>
      </table>
    </div>`}
    ${paging && html`<${Pager} ...${paging} />`}
  </div>`;
}

function fmtCell(v) {
  if (v === null || v === undefined || v === '') return '–';
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

export function Pager({ offset = 0, limit = 50, total, onPage }) {
  const from = total === 0 ? 0 : offset + 1;
  const to = total === undefined || total === null ? offset + limit : Math.min(offset + limit, total);
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" class="btn btn-small" disabled=${offset <= 0} onClick=${() => onPage(Math.max(0, offset - limit))}>Previous</button>
    <span class="pager-info">${from}–${to}${total !== undefined && total !== null ? ` of ${total}` : ''}</span>
    <button type="button" class="btn btn-small" disabled=${total !== undefined && total !== null && offset + limit >= total} onClick=${() => onPage(offset + limit)}>Next</button>
  </nav>`;
}

/* ---- chart: a uPlot wrapper ---- */

const PALETTE = ['#2f6fde', '#d9483b', '#1e9e6a', '#b7791f', '#7c4dcc', '#0f8ea8'];

// x: epoch seconds (shown in the browser's time zone).
// series: [{label, color?, scale?, fill?}] for data[1..]; data: [xs, ys1, ...].
// height in px; the width follows the container.
export function Chart({ series, data, height = 220, title, yLabel, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  const key = series.map((s) => `${s.label}:${s.scale || 'y'}`).join('|');
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    // canvas does not resolve CSS variables: read the theme's colour here
    const muted = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#777';
    const scales = { x: { time: true } };
    const axes = [{ stroke: muted, grid: { stroke: 'rgba(128,128,128,0.15)' }, space: 70 },
      { stroke: muted, grid: { stroke: 'rgba(128,128,128,0.15)' }, label: yLabel, size: 56 }];
    const hasY2 = series.some((s) => s.scale === 'y2');
    if (hasY2) {
      scales.y2 = {};
      axes.push({ scale: 'y2', side: 1, stroke: muted, grid: { show: false }, size: 56 });
    }
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      scales,
      axes,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        scale: s.scale || 'y',
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: 2,
        fill: s.fill,
        points: { show: false },
        spanGaps: true,
      }))],
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== u.width) u.setSize({ width: w, height });
    }) : null;
    if (ro) ro.observe(el);
    return () => {
      if (ro) ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [key, height]);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<figure class="chart" data-testid=${testid}>
    ${title && html`<figcaption class="chart-title">${title}</figcaption>`}
    <div class="chart-box" ref=${box}></div>
  </figure>`;
}

/* ---- form fields with labels ---- */

let fieldSeq = 0;
// A labelled input: <Field label="Name" value=.. onInput=.. />; type
// 'textarea' and 'select' (options: [{value, label}]) too.
export function Field({ label, type = 'text', value, onInput, options, hint, id, required, disabled, placeholder, autocomplete, testid, rows, min, max, step, autofocus }) {
  const fid = useMemo(() => id || `f-${++fieldSeq}`, [id]);
  const common = { id: fid, name: fid, required, disabled, placeholder, 'data-testid': testid, autocomplete, autofocus };
  let control;
  if (type === 'textarea') {
    control = html`<textarea class="input" rows=${rows || 3} ...${common} value=${value} onInput=${(e) => onInput && onInput(e.target.value)}></textarea>`;
  } else if (type === 'select') {
    control = html`<select class="input" ...${common} value=${value} onChange=${(e) => onInput && onInput(e.target.value)}>
      ${(options || []).map((o) => html`<option key=${o.value} value=${o.value}>${o.label}</option>`)}
    </select>`;
  } else if (type === 'checkbox') {
    return html`<div class="field field-check">
      <input type="checkbox" ...${common} checked=${!!value} onChange=${(e) => onInput && onInput(e.target.checked)} />
      <label for=${fid}>${label}</label>
      ${hint && html`<small class="hint">${hint}</small>`}
    </div>`;
  } else {
    control = html`<input class="input" type=${type} ...${common} min=${min} max=${max} step=${step} value=${value} onInput=${(e) => onInput && onInput(e.target.value)} />`;
  }
  return html`<div class="field">
    <label for=${fid}>${label}</label>
    ${control}
    ${hint && html`<small class="hint">${hint}</small>`}
  </div>`;
}

export function Spinner({ label = 'Loading…' }) {
  return html`<div class="spinner" role="status"><span class="spinner-dot" aria-hidden="true"></span>${label}</div>`;
}

/* ---- log lines (router and node logs: {timestamp, level, target, message}) ---- */

export function LogView({ entries, testid, follow }) {
  const ref = useRef(null);
  useEffect(() => {
    // follow mode keeps the newest line in view
    if (follow && ref.current) ref.current.scrollTop = ref.current.scrollHeight;
  }, [entries, follow]);
  if (!entries || entries.length === 0) return html`<${EmptyState} title="No log lines at this level." />`;
  return html`<div class="log-view" ref=${ref} data-testid=${testid} tabindex="0" role="log" aria-label="Log lines">
    ${entries.map((e, i) => {
      const lv = String(e.level || 'info').toLowerCase();
      return html`<div key=${i} class=${`log-line log-${lv}`}>
        <span class="log-time">${formatTime(e.timestamp || e.ts || e.time)}</span>
        <span class="log-level">${lv.toUpperCase()}</span>
        <span class="log-module">${e.target || e.module || e.component || ''}</span>
        <span class="log-msg">${typeof e.message === 'string' ? e.message : JSON.stringify(e.message !== undefined ? e.message : e)}</span>
      </div>`;
    })}
  </div>`;
}
