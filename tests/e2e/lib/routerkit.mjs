// Shared setup for the router_* suites: a router with a known join token, an
// admin session and an API key, fake nodes, and an OpenAI client.
import OpenAI from 'openai';
import { startRouter, http } from './harness.mjs';
import { FakeNode } from './fakenode.mjs';

export const JOIN = 'jt_test_join_token_0123456789';

export async function routerWithKey(env = {}) {
  const router = await startRouter({ LLM_ROUTER_JOIN_TOKEN: JOIN, LLM_ROUTER_LOG_LEVEL: 'warn', ...env });
  const login = await http('POST', `${router.url}/api/auth/login`, { body: { username: 'admin', password: 'admin-test-password' } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  const admin = { authorization: `Bearer ${login.json.token}` };
  const k = await http('POST', `${router.url}/api/api-keys`, { body: { name: 'e2e' }, headers: admin });
  if (k.status !== 201 && k.status !== 200) throw new Error(`api key failed: ${k.status} ${k.text}`);
  const apiKey = k.json.key;
  const openai = new OpenAI({ apiKey, baseURL: `${router.url}/v1`, maxRetries: 0, timeout: 30000 });
  return { router, admin, apiKey, openai, v1: { authorization: `Bearer ${apiKey}` } };
}

export async function fakeNode(router, opts = {}) {
  return new FakeNode({ routerUrl: router.url, joinToken: JOIN, ...opts }).start();
}

/** Raw POST to /v1/chat/completions (no SDK), for status and header checks. */
export function chat(ctx, body, opts = {}) {
  return http('POST', `${ctx.router.url}/v1/chat/completions`, {
    body: { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], ...body }, headers: ctx.v1, ...opts,
  });
}

export async function nodeStatus(ctx, id) {
  const r = await http('GET', `${ctx.router.url}/api/nodes`, { headers: ctx.admin });
  return r.json.find((n) => n.id === id);
}

export async function summary(ctx) {
  return (await http('GET', `${ctx.router.url}/api/metrics/summary`, { headers: ctx.admin })).json;
}
