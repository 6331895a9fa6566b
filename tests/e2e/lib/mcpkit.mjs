// Shared setup for the mcp_* suites: llm-router-mcp started by the official
// MCP TypeScript SDK (Client + StdioClientTransport) against a router, and a
// raw line-level client for protocol tests the SDK would refuse to send.
//
// Exports (stable; the resources suite uses them too):
//   mcpBin                      path of the built llm-router-mcp
//   startMcp({ url, env, timeoutMs }) -> { client, transport, stderr(), close() }
//       connects (initialize + notifications/initialized); url -> LLM_ROUTER_URL
//   mcpWithRouter({ env, routerEnv, creds }) -> { ctx, mcp, close() }
//       a real router (routerkit's routerWithKey) and an MCP server holding
//       its API key and the admin's username/password (creds: false for none)
//   startRawMcp({ url, env }) -> { send(obj|string), request(method, params, id),
//       next(timeoutMs), waitFor(pred, timeoutMs), lines, stderr(), close() }
//       speaks JSON lines on the child's stdin/stdout directly
//   toolJson(result)            the parsed JSON of a tools/call result's text
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { buildDir } from './harness.mjs';
import { routerWithKey } from './routerkit.mjs';

export const mcpBin = path.join(buildDir, 'mcp', 'llm-router-mcp');
export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'admin-test-password';

const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch {} } });

export async function startMcp({ url, env = {}, timeoutMs = 15000 } = {}) {
  const transport = new StdioClientTransport({
    command: mcpBin, args: [],
    env: { ...(url ? { LLM_ROUTER_URL: url } : {}), ...env },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d) => { err += d.toString(); if (err.length > 4e6) err = err.slice(-2e6); });
  const client = new Client({ name: 'llmr-e2e', version: '1.0.0' });
  await client.connect(transport, { timeout: timeoutMs });
  const pid = transport.pid;
  let closed = false;
  return {
    client, transport, pid,
    stderr: () => err,
    close: async () => { if (!closed) { closed = true; await client.close().catch(() => {}); } },
  };
}

export async function mcpWithRouter({ env = {}, routerEnv = {}, creds = true } = {}) {
  const ctx = await routerWithKey(routerEnv);
  const mcp = await startMcp({
    url: ctx.router.url,
    env: {
      LLM_ROUTER_API_KEY: ctx.apiKey,
      ...(creds ? { LLM_ROUTER_USERNAME: ADMIN_USER, LLM_ROUTER_PASSWORD: ADMIN_PASSWORD } : {}),
      ...env,
    },
  });
  return {
    ctx, mcp,
    close: async () => { await mcp.close(); await ctx.router.stop(); },
  };
}

export function toolJson(result) {
  const t = result?.content?.find((c) => c.type === 'text');
  if (!t) throw new Error(`no text content in ${JSON.stringify(result)}`);
  return JSON.parse(t.text);
}

export function startRawMcp({ url, env = {} } = {}) {
  const proc = spawn(mcpBin, [], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...(url ? { LLM_ROUTER_URL: url } : {}), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  const lines = [];
  const waiters = new Set();
  let buf = '';
  let err = '';
  proc.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let msg;
      try { msg = JSON.parse(line); } catch { msg = { __unparsable: line }; }
      lines.push(msg);
      for (const w of [...waiters]) w();
    }
  });
  proc.stderr.on('data', (d) => { err += d.toString(); if (err.length > 4e6) err = err.slice(-2e6); });
  let cursor = 0;
  const waitFor = (pred, timeoutMs = 5000) => new Promise((resolve, reject) => {
    const check = () => {
      const m = lines.find(pred);
      if (m) { waiters.delete(check); clearTimeout(t); resolve(m); return true; }
      return false;
    };
    const t = setTimeout(() => { waiters.delete(check); reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(lines.slice(-5))}\nstderr: ${err.slice(-2000)}`)); }, timeoutMs);
    if (!check()) waiters.add(check);
  });
  const next = (timeoutMs = 5000) => new Promise((resolve, reject) => {
    const check = () => {
      if (cursor < lines.length) { waiters.delete(check); clearTimeout(t); resolve(lines[cursor++]); return true; }
      return false;
    };
    const t = setTimeout(() => { waiters.delete(check); reject(new Error(`no message in ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)); }, timeoutMs);
    if (!check()) waiters.add(check);
  });
  const send = (m) => { proc.stdin.write((typeof m === 'string' ? m : JSON.stringify(m)) + '\n'); };
  const request = (method, params, id) => {
    send({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });
    return waitFor((m) => m.id === id);
  };
  const initialize = async (protocolVersion = '2025-11-25', id = 'init') => {
    const r = await request('initialize', { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } }, id);
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return r;
  };
  const close = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
    proc.stdin.end();
  });
  return { proc, send, request, initialize, next, waitFor, lines, stderr: () => err, close };
}
