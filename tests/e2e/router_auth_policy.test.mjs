// The authorization policy, table-driven: every route the router serves
// (read from the router itself with `llm-router --routes`, so new routes are
// covered without touching this file) is called with no credential, a wrong
// one, an expired one, an API key, a viewer's and an admin's session, and the
// join token; each answer must be what the route's policy says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { buildDir, startRouter, http, cleanup } from './lib/harness.mjs';

const SECRET = 'policy-test-jwt-secret-0123456789abcdef';
const JOIN = 'policy-test-join-token';
const AUTH_CODES = new Set(['invalid_api_key', 'unauthorized', 'forbidden']);
const POLICIES = ['open', 'api_key', 'api_key_or_node', 'node', 'join', 'viewer', 'admin', 'user', 'metrics', 'node_or_admin'];

const routes = JSON.parse(execFileSync(path.join(buildDir, 'router', 'llm-router'), ['--routes']).toString());

// A JWT signed like the router's, for the "expired" column.
function signJwt(claims, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return head + '.' + createHmac('sha256', secret).update(head).digest('base64url');
}

let router, base, adminToken, adminId, viewerToken, apiKey, expiredKey;

async function login(username, password) {
  const r = await http('POST', `${base}/api/auth/login`, { body: { username, password } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

before(async () => {
  router = await startRouter({ LLM_ROUTER_JWT_SECRET: SECRET, LLM_ROUTER_JOIN_TOKEN: JOIN });
  base = router.url;
  const a = await login('admin', 'admin-test-password');
  adminToken = a.token;
  adminId = a.user.id;
  const auth = { authorization: `Bearer ${adminToken}` };
  let r = await http('POST', `${base}/api/users`, { headers: auth, body: { username: 'viewer1', password: 'viewer-password', role: 'viewer' } });
  assert.equal(r.status, 201, r.text);
  viewerToken = (await login('viewer1', 'viewer-password')).token;
  r = await http('POST', `${base}/api/api-keys`, { headers: auth, body: { name: 'policy' } });
  assert.equal(r.status, 201, r.text);
  apiKey = r.json.key;
  r = await http('POST', `${base}/api/api-keys`, { headers: auth, body: { name: 'old', expires_at: '2001-01-01T00:00:00Z' } });
  assert.equal(r.status, 201, r.text);
  expiredKey = r.json.key;
});

after(async () => {
  await router?.stop();
  cleanup(router?.dataDir);
});

const isV1 = (p) => p === 'api_key' || p === 'api_key_or_node' || p === 'metrics';

// The credentials of each column, as headers, for a route of policy p.
const columns = {
  none: () => ({}),
  wrong: (p) => isV1(p) ? { authorization: 'Bearer sk_' + 'x'.repeat(43) }
    : p === 'node' || p === 'node_or_admin' ? { 'x-node-token': 'nt_' + 'x'.repeat(43) }
    : p === 'join' ? { 'x-join-token': 'not-the-join-token' }
    : { authorization: 'Bearer ' + signJwt({ sub: adminId, jti: 'w', exp: Math.floor(Date.now() / 1000) + 600 }, 'another-secret-another-secret-xx') },
  expired: (p) => isV1(p) ? { authorization: `Bearer ${expiredKey}` }
    : p === 'node' || p === 'node_or_admin' ? { 'x-node-token': 'nt_' + 'y'.repeat(43) } // node tokens do not expire: an unknown one
    : p === 'join' ? { 'x-join-token': JOIN.slice(0, -1) }
    : { authorization: 'Bearer ' + signJwt({ sub: adminId, jti: 'e', role: 'admin', exp: Math.floor(Date.now() / 1000) - 5 }) },
  api_key: () => ({ 'x-api-key': apiKey }),
  viewer: () => ({ authorization: `Bearer ${viewerToken}` }),
  admin: () => ({ authorization: `Bearer ${adminToken}` }),
  join: () => ({ 'x-join-token': JOIN }),
};

// What the policy says: 'pass' (the handler ran), 401 or 403.
function expected(policy, col) {
  if (policy === 'open') return 'pass';
  if (col === 'none' || col === 'wrong' || col === 'expired') return 401;
  const ok = {
    api_key: ['api_key', 'viewer', 'admin'],
    api_key_or_node: ['api_key', 'viewer', 'admin'],
    metrics: ['api_key', 'viewer', 'admin'],
    node: [],
    node_or_admin: ['admin'],
    join: ['join'],
    viewer: ['viewer', 'admin'],
    user: ['viewer', 'admin'],
    admin: ['admin'],
  }[policy];
  if (ok.includes(col)) return 'pass';
  if ((policy === 'admin' || policy === 'node_or_admin') && col === 'viewer') return 403;
  return 401;
}

function concretePath(p) {
  return p.replace(/:[A-Za-z_]+/g, 'policy-test-id').replace(/\*[A-Za-z_]*$/, 'policy-test-file');
}

test('the route table names only known policies and keeps the open surface small', () => {
  assert.ok(routes.length > 0);
  for (const r of routes) {
    assert.ok(POLICIES.includes(r.policy), `${r.method} ${r.path}: unknown policy ${r.policy}`);
    if (r.path.startsWith('/v1/')) assert.ok(r.policy === 'api_key' || r.policy === 'api_key_or_node', `${r.method} ${r.path} must need an API key`);
    if (r.path.startsWith('/metrics')) assert.equal(r.policy, 'metrics', `${r.method} ${r.path}: Prometheus routes follow LLM_ROUTER_METRICS_PUBLIC`);
    if (r.path.startsWith('/api/dashboard/')) assert.ok(['viewer', 'admin'].includes(r.policy), `${r.method} ${r.path}: dashboard data needs a session`);
    if (r.policy === 'open') {
      assert.match(r.path, /^\/(health|startup|api\/auth\/login|dashboard.*|playground.*|metrics.*|favicon.*|)$/,
        `${r.method} ${r.path} is open to anyone: give it a policy in routes.c`);
    }
    if (r.path.startsWith('/api/') && r.method !== 'GET' && r.method !== 'HEAD' && !['/api/auth/login', '/api/auth/logout', '/api/health', '/api/nodes'].includes(r.path)) {
      assert.equal(r.policy, 'admin', `${r.method} ${r.path} changes state: admin only`);
    }
  }
  const find = (m, p) => routes.find((r) => r.method === m && r.path === p)?.policy;
  assert.equal(find('POST', '/api/auth/login'), 'open');
  assert.equal(find('GET', '/api/users'), 'admin');
  assert.equal(find('GET', '/api/api-keys'), 'admin');
  assert.equal(find('GET', '/api/auth/me'), 'user');
});

test('every route answers each credential as its policy says', async () => {
  const failures = [];
  let calls = 0;
  for (const r of routes) {
    for (const col of Object.keys(columns)) {
      let headers = columns[col](r.policy);
      if (r.path.includes('logout') && (col === 'viewer' || col === 'admin')) {
        // logging out revokes the token: use a throwaway session
        const u = col === 'admin' ? ['admin', 'admin-test-password'] : ['viewer1', 'viewer-password'];
        headers = { authorization: `Bearer ${(await login(...u)).token}` };
      }
      const body = ['POST', 'PUT', 'PATCH'].includes(r.method) ? {} : undefined;
      let res;
      try {
        res = await http(r.method, base + concretePath(r.path), { headers, body, timeoutMs: 10000 });
      } catch (e) {
        assert.fail(`${r.method} ${r.path} with ${col}: ${e.message}; router output:\n${router.output().slice(-4000)}`);
      }
      calls++;
      // a HEAD answer has no body: its status alone tells
      const blocked = (res.status === 401 || res.status === 403) && (r.method === 'HEAD' || AUTH_CODES.has(res.json?.error?.code));
      const got = blocked ? res.status : 'pass';
      const want = expected(r.policy, col);
      if (got !== want) failures.push(`${r.method} ${r.path} [${r.policy}] with ${col}: got ${res.status} ${res.text.slice(0, 120)}, want ${want}`);
      if (blocked && res.status === 401) {
        if (!res.headers.get('www-authenticate')) failures.push(`${r.method} ${r.path}: 401 without WWW-Authenticate`);
        if (r.method === 'HEAD') continue;
        assert.equal(typeof res.json.error.message, 'string');
        assert.ok('param' in res.json.error && 'type' in res.json.error, 'OpenAI error shape');
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${calls} calls disagree with the policy:\n${failures.join('\n')}`);
  // the admin session was never revoked along the way
  assert.equal((await http('GET', `${base}/api/auth/me`, { headers: columns.admin() })).status, 200);
});

test('LLM_ROUTER_METRICS_PUBLIC=1 opens the metrics routes and nothing else', async () => {
  const metricRoutes = routes.filter((r) => r.policy === 'metrics');
  assert.ok(metricRoutes.length >= 3);
  const open = await startRouter({ LLM_ROUTER_METRICS_PUBLIC: '1' });
  try {
    for (const r of metricRoutes) {
      const res = await http(r.method, open.url + concretePath(r.path));
      assert.ok(!(res.status === 401 && AUTH_CODES.has(res.json?.error?.code)), `${r.path}: ${res.status} ${res.text}`);
    }
    const res = await http('GET', open.url + '/api/dashboard/overview');
    assert.equal(res.status, 401);
  } finally {
    await open.stop();
    cleanup(open.dataDir);
  }
});

test('open registration lets join routes through without a token', async () => {
  const joinRoutes = routes.filter((r) => r.policy === 'join');
  if (joinRoutes.length === 0) return; // no registration route yet
  const open = await startRouter({ LLM_ROUTER_OPEN_REGISTRATION: '1' });
  try {
    for (const r of joinRoutes) {
      const res = await http(r.method, open.url + concretePath(r.path), { body: {} });
      assert.ok(!(res.status === 401 && AUTH_CODES.has(res.json?.error?.code)), `${r.path}: ${res.status} ${res.text}`);
    }
  } finally {
    await open.stop();
    cleanup(open.dataDir);
  }
});
