// The router's database: it survives kill -9 during a burst of writes, and a
// database of the previous schema version (a fixture written here in SQL) is
// upgraded in place with its rows kept.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { buildDir, startRouter, http, tempDir, cleanup } from './lib/harness.mjs';

const BIN = path.join(buildDir, 'router', 'llm-router');
const dirs = [];
const routers = [];
after(async () => {
  for (const r of routers) await r.stop('SIGKILL');
  for (const d of dirs) cleanup(d);
});

const sql = (db, q) => execFileSync('sqlite3', [db, q]).toString().trim();
const login = async (url, username, password) =>
  http('POST', `${url}/api/auth/login`, { body: { username, password } });

test('every committed row survives kill -9 in the middle of a burst of writes', async (t) => {
  const dataDir = tempDir('llmr-crash-');
  dirs.push(dataDir);
  const r = await startRouter({ LLM_ROUTER_DATA_DIR: dataDir, LLM_ROUTER_WORKERS: '2' });
  routers.push(r);
  const tok = (await login(r.url, 'admin', 'admin-test-password')).json.token;
  const committed = [];
  let stop = false;
  let errors = 0;
  const writer = async (w) => {
    for (let i = 0; !stop; i++) {
      try {
        const res = await http('POST', `${r.url}/api/api-keys`, { headers: { authorization: `Bearer ${tok}` }, body: { name: `w${w}-${i}` }, timeoutMs: 5000 });
        if (res.status === 201) committed.push(res.json.id);
      } catch { errors++; if (errors > 1000) return; }
    }
  };
  const writers = Array.from({ length: 8 }, (_, w) => writer(w));
  // let the burst run, then kill the process without warning
  await new Promise((res) => setTimeout(res, 700));
  r.proc.kill('SIGKILL');
  await new Promise((res) => r.proc.once('exit', res));
  stop = true;
  await Promise.all(writers);
  assert.ok(committed.length > 20, `only ${committed.length} writes before the kill`);
  t.diagnostic(`${committed.length} keys committed before kill -9`);

  const db = path.join(dataDir, 'router.db');
  // the checker must see the WAL too: sqlite3 recovers it like the router would
  assert.equal(sql(db, 'PRAGMA integrity_check'), 'ok');
  const stored = new Set(sql(db, 'SELECT id FROM api_keys').split('\n'));
  const missing = committed.filter((id) => !stored.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${committed.length} committed keys lost`);

  // and the router itself starts on it again
  const again = await startRouter({ LLM_ROUTER_DATA_DIR: dataDir });
  routers.push(again);
  const t2 = (await login(again.url, 'admin', 'admin-test-password')).json.token;
  const list = await http('GET', `${again.url}/api/api-keys`, { headers: { authorization: `Bearer ${t2}` } });
  assert.equal(list.status, 200);
  const ids = new Set(list.json.api_keys.map((k) => k.id));
  assert.ok(committed.every((id) => ids.has(id)));
});

// Schema version 1, as released: users, api_keys, nodes.
const V1_SCHEMA = `
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')), created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
  key_prefix TEXT NOT NULL, created_by TEXT, created_at INTEGER NOT NULL, expires_at INTEGER, last_used_at INTEGER);
CREATE TABLE nodes (id TEXT PRIMARY KEY, machine_name TEXT NOT NULL, ip_address TEXT NOT NULL,
  runtime_port INTEGER NOT NULL, api_port INTEGER NOT NULL, runtime_version TEXT,
  gpu_available INTEGER NOT NULL DEFAULT 0, gpu_devices_json TEXT NOT NULL DEFAULT '[]', custom_name TEXT,
  tags_json TEXT NOT NULL DEFAULT '[]', notes TEXT, token_hash TEXT, registered_at INTEGER NOT NULL);
PRAGMA user_version = 1;
`;

test('a database of the previous schema version is upgraded with its rows kept', async () => {
  const dir = tempDir('llmr-migrate-');
  dirs.push(dir);
  // an Argon2id hash made by the router's own CLI on a scratch database
  const scratch = path.join(dir, 'scratch.db');
  const c = spawnSync(BIN, ['user', 'add', 'olduser', '--role', 'admin'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LLM_ROUTER_DATABASE_URL: `sqlite:${scratch}` },
    input: 'old-user-password\n', timeout: 20000,
  });
  assert.equal(c.status, 0, c.stderr?.toString());
  const hash = sql(scratch, "SELECT password_hash FROM users WHERE username = 'olduser'");
  assert.match(hash, /^\$argon2id\$/);

  const db = path.join(dir, 'legacy.db');
  const key = 'sk_' + 'L'.repeat(43);
  const keyHash = createHash('sha256').update(key).digest('hex');
  sql(db, V1_SCHEMA + `
    INSERT INTO users VALUES ('u-old', 'olduser', '${hash}', 'admin', 1000, 1000);
    INSERT INTO api_keys VALUES ('k-old', 'legacy key', '${keyHash}', 'sk_LLLLLLL', NULL, 1000, NULL, NULL);
    INSERT INTO nodes (id, machine_name, ip_address, runtime_port, api_port, registered_at)
      VALUES ('n-old', 'box', '10.0.0.9', 11434, 11435, 1000);`);
  assert.equal(sql(db, 'PRAGMA user_version'), '1');

  const r = await startRouter({ LLM_ROUTER_DATA_DIR: dir, LLM_ROUTER_DATABASE_URL: `sqlite:${db}` });
  routers.push(r);
  assert.match(r.output(), /migrated to schema version 2/);
  const l = await login(r.url, 'olduser', 'old-user-password');
  assert.equal(l.status, 200, 'the old user logs in');
  assert.equal((await login(r.url, 'admin', 'admin-test-password')).status, 401, 'no second admin when users exist');
  const keys = await http('GET', `${r.url}/api/api-keys`, { headers: { authorization: `Bearer ${l.json.token}` } });
  assert.deepEqual(keys.json.api_keys.map((k) => k.name), ['legacy key']);
  // logout uses the table version 2 added
  assert.equal((await http('POST', `${r.url}/api/auth/logout`, { headers: { authorization: `Bearer ${l.json.token}` } })).status, 204);
  await r.stop();
  routers.pop();
  // every migration since applied (more are added over time: at least 2, the revocations)
  assert.ok(Number(sql(db, 'PRAGMA user_version')) >= 2);
  assert.equal(sql(db, 'SELECT COUNT(*) FROM revoked_tokens'), '1');
  assert.equal(sql(db, "SELECT machine_name FROM nodes WHERE id = 'n-old'"), 'box');
  assert.equal(sql(db, 'PRAGMA integrity_check'), 'ok');
});
