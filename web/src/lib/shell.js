// The dashboard's layout and hash router. Pages register themselves
// (registerPage) from web/src/pages/*.js; dashboard.js imports them and
// calls mount(). Routes are hash paths: '#/nodes/abc' matches '/nodes/:id'
// and the page gets {params: {id: 'abc'}, query}. Every route but the
// sign-in page needs a session; an admin page is hidden from viewers.
import { html, useState, useEffect, render, Overlays } from './ui.js';
import { session, logout, onSessionChange } from './api.js';

const pages = [];
// The nav's order; pages not listed come after, in registration order.
const NAV_ORDER = ['/overview', '/nodes', '/models', '/history', '/logs', '/users'];

// route: '/overview', '/nodes/:id'. opts: {title, component, admin, nav}
// (nav: shown in the header's links; default true for routes without a
// parameter other than /login).
export function registerPage(route, { title, component, admin = false, nav } = {}) {
  const parts = route.split('/').filter(Boolean);
  const showInNav = nav !== undefined ? nav : !route.includes(':') && route !== '/login';
  const i = pages.findIndex((p) => p.route === route);
  const page = { route, parts, title: title || route, component, admin, nav: showInNav };
  if (i >= 0) pages[i] = page;
  else pages.push(page);
}

export function parseHash(hash) {
  let h = (hash || '').replace(/^#/, '');
  if (!h.startsWith('/')) h = `/${h}`;
  const qi = h.indexOf('?');
  const path = qi >= 0 ? h.slice(0, qi) : h;
  const query = Object.fromEntries(new URLSearchParams(qi >= 0 ? h.slice(qi + 1) : ''));
  return { path: path === '/' ? '/overview' : path, query };
}

export function matchRoute(path) {
  const parts = path.split('/').filter(Boolean).map((x) => {
    try { return decodeURIComponent(x); } catch (e) { return x; }
  });
  for (const p of pages) {
    // a trailing '*name' parameter takes the rest of the path
    const star = p.parts.length && p.parts[p.parts.length - 1].startsWith('*');
    if (star ? parts.length < p.parts.length : parts.length !== p.parts.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < p.parts.length; i++) {
      const want = p.parts[i];
      if (want.startsWith('*')) {
        params[want.slice(1)] = parts.slice(i).join('/');
        break;
      }
      if (want.startsWith(':')) params[want.slice(1)] = parts[i];
      else if (want !== parts[i]) { ok = false; break; }
    }
    if (ok) return { page: p, params };
  }
  return null;
}

export function navigate(path) {
  const target = path.startsWith('#') ? path : `#${path}`;
  if (location.hash !== target) location.hash = target;
}

// The current route, re-rendering on hash changes.
export function useRoute() {
  const [r, setR] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setR(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return r;
}

function navPages(isAdmin) {
  const list = pages.filter((p) => p.nav && (!p.admin || isAdmin));
  const rank = (p) => {
    const i = NAV_ORDER.indexOf(p.route);
    return i < 0 ? NAV_ORDER.length + pages.indexOf(p) : i;
  };
  return list.sort((a, b) => rank(a) - rank(b));
}

function Header({ sess, path }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  const isAdmin = sess && sess.user.role === 'admin';
  const signOut = async () => {
    await logout();
    navigate('/login');
  };
  return html`<header class="app-header">
    <a class="brand" href="#/overview">llm-router</a>
    ${sess && html`<button type="button" class="btn-icon nav-toggle" aria-expanded=${open} aria-controls="main-nav"
        aria-label="Menu" onClick=${() => setOpen(!open)}>☰</button>`}
    ${sess && html`<nav id="main-nav" class=${`main-nav${open ? ' open' : ''}`} aria-label="Main">
      ${navPages(isAdmin).map((p) => {
        const active = path === p.route || path.startsWith(`${p.route}/`);
        return html`<a key=${p.route} href=${`#${p.route}`} class=${active ? 'active' : undefined} aria-current=${active ? 'page' : undefined}>${p.title}</a>`;
      })}
      <a href="/playground">Playground</a>
    </nav>`}
    ${sess && html`<div class="user-box">
      <span class="user-name" data-testid="current-user">${sess.user.username}</span>
      <span class=${`badge ${isAdmin ? 'badge-ok' : 'badge-warn'}`} data-testid="current-role">${sess.user.role}</span>
      <button type="button" class="btn btn-small" data-testid="sign-out" onClick=${signOut}>Sign out</button>
    </div>`}
  </header>`;
}

function NotFound({ path }) {
  return html`<div class="page"><h1>Not found</h1><p>No page at <code>${path}</code>. <a href="#/overview">Go to the overview</a>.</p></div>`;
}

function AdminOnly({ title }) {
  return html`<div class="page"><h1>${title}</h1>
    <div class="empty" role="note"><p class="empty-title">This page needs an admin.</p>
    <div class="empty-body">You are signed in as a viewer: you can read the other pages. Ask an admin for access.</div></div></div>`;
}

function App() {
  const { path, query } = useRoute();
  const [sess, setSess] = useState(session());
  useEffect(() => onSessionChange(setSess), []);
  useEffect(() => {
    // the token may have been cleared in another tab
    const on = (e) => { if (e.key === 'llmr_token' || e.key === null) setSess(session()); };
    window.addEventListener('storage', on);
    return () => window.removeEventListener('storage', on);
  }, []);
  const m = matchRoute(path);
  const needLogin = !sess && path !== '/login';
  useEffect(() => {
    if (needLogin) {
      try { sessionStorage.setItem('llmr_next', path); } catch (e) { /* ignore */ }
      navigate('/login');
    } else if (sess && path === '/login') {
      navigate('/overview');
    }
  }, [needLogin, sess, path]);
  useEffect(() => {
    document.title = m ? `${m.page.title} · llm-router` : 'llm-router';
  }, [m && m.page.title]);
  let body;
  if (needLogin || (sess && path === '/login')) body = null;
  else if (!m) body = html`<${NotFound} path=${path} />`;
  else if (m.page.admin && !(sess && sess.user.role === 'admin')) body = html`<${AdminOnly} title=${m.page.title} />`;
  else {
    const C = m.page.component;
    body = html`<${C} key=${m.page.route} params=${m.params} query=${query} path=${path} session=${sess} />`;
  }
  return html`<a class="skip-link" href="#main" onClick=${(e) => { e.preventDefault(); const el = document.getElementById('main'); if (el) el.focus(); }}>Skip to content</a>
    <${Header} sess=${sess} path=${path} />
    <main id="main" tabindex="-1" class="app-main">${body}</main>
    <${Overlays} />`;
}

// The route to go to after signing in (the one that sent us to login).
export function takeNextRoute() {
  try {
    const n = sessionStorage.getItem('llmr_next');
    sessionStorage.removeItem('llmr_next');
    return n && n !== '/login' ? n : '/overview';
  } catch (e) {
    return '/overview';
  }
}

export function mount(el) {
  render(html`<${App} />`, el);
}
