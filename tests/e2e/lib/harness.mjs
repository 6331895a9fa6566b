// Test harness: starts the real binaries on free ports (port 0, then the
// "<NAME>_LISTENING port=N" line they print), makes models with tools/mkgguf,
// and cleans up every child process when the test process exits.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const buildDir = process.env.LLMR_BUILD_DIR || path.join(repoRoot, 'build');

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch {} } });

export function tempDir(prefix = 'llmr-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Writes (once per build) a generated model and returns its path. */
export function makeModel(preset = 'tiny', type = 'q8_0', extra = []) {
  const dir = path.join(buildDir, 'models');
  mkdirSync(dir, { recursive: true });
  const suffix = extra.length ? '-' + extra.join('').replace(/[^a-z0-9]/gi, '') : '';
  const file = path.join(dir, `${preset}-${type}${suffix}.gguf`);
  if (!existsSync(file)) {
    const tmp = `${file}.tmp${process.pid}`;
    execFileSync(path.join(buildDir, 'tools', 'mkgguf'),
      ['--preset', preset, '--type', type, ...extra, '-o', tmp], { stdio: 'pipe' });
    execFileSync('mv', [tmp, file]);
  }
  return file;
}

/**
 * Starts a server binary and resolves once it printed its listening line.
 * Returns { proc, port, url, output(), stop() }.
 */
export function startServer(bin, env, { name = path.basename(bin), args = [], timeoutMs = 20000, wrap = [] } = {}) {
  return new Promise((resolve, reject) => {
    // wrap: a command that execs the server, e.g. ['prlimit', '--nofile=256:4096']
    const argv = wrap.length ? [...wrap.slice(1), bin, ...args] : args;
    const proc = spawn(wrap.length ? wrap[0] : bin, argv, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let out = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d) => {
      out += d.toString();
      if (out.length > 4e6) out = out.slice(-2e6);
      const m = /_LISTENING port=(\d+)/.exec(out);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          proc, port, url: `http://127.0.0.1:${port}`,
          output: () => out,
          stop: (signal = 'SIGTERM') => stopProc(proc, signal),
        });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, sig) => {
      children.delete(proc);
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? sig}) before listening:\n${out}`));
      }
    });
  });
}

function stopProc(proc, signal) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
    proc.kill(signal);
  });
}

/** Router on a free loopback port with its own data directory. */
export function startRouter(env = {}, opts = {}) {
  const dataDir = env.LLM_ROUTER_DATA_DIR || tempDir('llmr-router-');
  return startServer(path.join(buildDir, 'router', 'llm-router'), {
    LLM_ROUTER_HOST: '127.0.0.1', LLM_ROUTER_PORT: '0', LLM_ROUTER_DATA_DIR: dataDir,
    LLM_ROUTER_WORKERS: '2', LLM_ROUTER_ADMIN_PASSWORD: 'admin-test-password',
    // suites register many nodes from 127.0.0.1 within a minute; the limit
    // itself is tested by router_registration with its own value
    LLM_ROUTER_REGISTER_RATE_PER_MIN: '100000',
    ...env,
  }, { name: 'llm-router', ...opts }).then((s) => ({ ...s, dataDir }));
}

/** The key startNode gives its nodes (LLM_NODE_API_KEY) unless told otherwise. */
export const NODE_KEY = 'nk_e2e_node_key_0123456789';
// Nodes answer 401 without a credential. http() presents the key of a node
// started here when the caller sends no Authorization header of its own, so
// suites about the API stay about the API; suites about the credential pass
// their own header (or `authorization: ''` for none).
const nodeKeys = new Map();

/** Node on a free loopback port. Pass LLM_NODE_MODELS_DIR (or models: [paths]).
 * Resolves to the server plus key (its LLM_NODE_API_KEY, '' for none) and
 * auth ({ authorization }) for requests made without http(). */
export function startNode(env = {}, opts = {}) {
  const key = env.LLM_NODE_API_KEY ?? NODE_KEY;
  return startServer(path.join(buildDir, 'node', 'llm-node'), {
    LLM_NODE_BIND_ADDRESS: '127.0.0.1', LLM_NODE_PORT: '0', LLM_NODE_IP: '127.0.0.1',
    LLM_NODE_LOG_DIR: tempDir('llmr-nodelog-'),
    ...env,
    LLM_NODE_API_KEY: key,
  }, { name: 'llm-node', timeoutMs: 60000, ...opts }).then((s) => {
    if (key) nodeKeys.set(s.url, key);
    // a port freed by this node may go to a router later: forget its key
    const stop = (...a) => { nodeKeys.delete(s.url); return s.stop(...a); };
    return { ...s, stop, key, auth: key ? { authorization: `Bearer ${key}` } : {} };
  });
}

/** For a node started some other way: http() presents key to url from now on. */
export function useNodeKey(url, key) { nodeKeys.set(url, key); }

function nodeKeyFor(url) {
  for (const [base, key] of nodeKeys) if (url.startsWith(base + '/') || url === base) return key;
  return undefined;
}

/** fetch with a JSON body; returns { status, headers, json, text }. */
export async function http(method, url, { body, headers = {}, timeoutMs = 30000 } = {}) {
  const key = nodeKeyFor(url);
  const own = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
  const auth = key && !own ? { authorization: `Bearer ${key}` } : {};
  const hdrs = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...auth, ...headers };
  for (const h of Object.keys(hdrs)) if (hdrs[h] === '') delete hdrs[h];
  const res = await fetch(url, {
    method,
    headers: hdrs,
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

/** Polls fn until it returns truthy or the time runs out (bounded loop). */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function cleanup(dir) { try { rmSync(dir, { recursive: true, force: true }); } catch {} }
