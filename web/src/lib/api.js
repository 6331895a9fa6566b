// The dashboard's one door to the router's JSON API: the session token from
// localStorage, the router's OpenAI-shaped errors turned into ApiError, and a
// 401 sending the user back to the sign-in page with a message.

const TOKEN_KEY = 'llmr_token';
const USER_KEY = 'llmr_user';
const MESSAGE_KEY = 'llmr_login_message';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

// The signed-in session, or null: {token, user: {username, role}}.
export function session() {
  let token = null;
  let user = null;
  try {
    token = localStorage.getItem(TOKEN_KEY);
    user = JSON.parse(localStorage.getItem(USER_KEY) || 'null');
  } catch (e) {
    return null;
  }
  if (!token || !user) return null;
  return { token, user };
}

export function isAdmin() {
  const s = session();
  return !!s && s.user.role === 'admin';
}

function clearSession() {
  try {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  } catch (e) {
    /* storage disabled: nothing to clear */
  }
}

// A message for the sign-in page to show once (expired session, signed out).
export function setLoginMessage(msg) {
  try { sessionStorage.setItem(MESSAGE_KEY, msg); } catch (e) { /* ignore */ }
}

export function takeLoginMessage() {
  try {
    const m = sessionStorage.getItem(MESSAGE_KEY);
    sessionStorage.removeItem(MESSAGE_KEY);
    return m;
  } catch (e) {
    return null;
  }
}

// Listeners told when the session changes (sign-in, sign-out, expiry).
const listeners = new Set();
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function notify() {
  for (const fn of listeners) fn(session());
}

function expired(message) {
  const had = session() !== null;
  clearSession();
  if (had) setLoginMessage(message || 'Your session has expired; please sign in again.');
  notify();
  if (typeof location !== 'undefined' && location.pathname.startsWith('/dashboard')) {
    if (!location.hash.startsWith('#/login')) location.hash = '#/login';
  } else if (typeof location !== 'undefined') {
    // the playground signs in on the dashboard's page
    location.href = '/dashboard#/login';
  }
}

function buildUrl(path, query) {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function errorFrom(res) {
  let code = null;
  let message = `${res.status} ${res.statusText || 'error'}`;
  try {
    const j = await res.json();
    if (j && j.error) {
      if (typeof j.error === 'string') message = j.error;
      else {
        if (j.error.message) message = j.error.message;
        code = j.error.code || j.error.type || null;
      }
    }
  } catch (e) {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, code, message);
}

// Raw fetch with the session's token; returns the Response (for streams,
// CSV). Throws ApiError on a non-2xx answer, as api() does.
export async function apiFetch(method, path, { body, query, signal, headers } = {}) {
  const h = Object.assign({}, headers || {});
  const s = session();
  if (s) h.Authorization = `Bearer ${s.token}`;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(buildUrl(path, query), { method, headers: h, body: payload, signal, credentials: 'same-origin' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', `Cannot reach the router: ${e && e.message ? e.message : e}`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && s && !path.startsWith('/api/auth/login')) expired('Your session has expired or was revoked; please sign in again.');
    throw err;
  }
  return res;
}

// JSON request: returns the parsed body (null for an empty one).
export async function api(method, path, opts = {}) {
  const res = await apiFetch(method, path, opts);
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(res.status, 'bad_json', 'The router sent a reply that is not JSON');
  }
}

export async function login(username, password) {
  const res = await apiFetch('POST', '/api/auth/login', { body: { username, password } });
  const j = await res.json();
  try {
    localStorage.setItem(TOKEN_KEY, j.token);
    localStorage.setItem(USER_KEY, JSON.stringify({ id: j.user && j.user.id, username: j.user ? j.user.username : username, role: j.user ? j.user.role : 'viewer' }));
  } catch (e) {
    throw new ApiError(0, 'storage', 'This browser does not allow storing the session (localStorage)');
  }
  notify();
  return session();
}

export async function logout() {
  const s = session();
  if (s) {
    try {
      await fetch('/api/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${s.token}` } });
    } catch (e) {
      /* the router is unreachable: the local session still ends */
    }
  }
  clearSession();
  setLoginMessage('You have signed out.');
  notify();
}
