// llm-node's command line and configuration: --help/--version/--help-markdown
// from the option table, legacy variable names, the JSON config file, and a
// bad value refused at start with the variable named.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDir, startNode, makeModel, tempDir, http, cleanup } from './lib/harness.mjs';

const bin = path.join(buildDir, 'node', 'llm-node');
const dirs = [];
after(() => dirs.forEach(cleanup));

const VARS = ['LLM_ROUTER_URL', 'LLM_ROUTER_JOIN_TOKEN', 'LLM_NODE_PORT', 'LLM_NODE_BIND_ADDRESS', 'LLM_NODE_IP',
  'LLM_NODE_MODELS_DIR', 'LLM_NODE_HEARTBEAT_SECS', 'LLM_NODE_LOG_LEVEL', 'LLM_NODE_LOG_DIR',
  'LLM_NODE_LOG_RETENTION_DAYS', 'LLM_NODE_CONFIG', 'LLM_NODE_PARALLEL', 'LLM_NODE_THREADS', 'LLM_NODE_CTX_SIZE',
  'LLM_NODE_BATCH_SIZE', 'LLM_NODE_GPU_LAYERS', 'LLM_NODE_MODEL_IDLE_TIMEOUT', 'LLM_NODE_MAX_LOADED_MODELS', 'LLM_NODE_MAX_MEMORY_BYTES'];
const LEGACY = ['LLM_MODEL_IDLE_TIMEOUT', 'LLM_MAX_LOADED_MODELS', 'LLM_MAX_MEMORY_BYTES', 'LLM_MODELS_DIR', 'LLM_BIND_ADDRESS', 'LLM_HEARTBEAT_SECS', 'LLM_LOG_LEVEL', 'LOG_LEVEL', 'LLM_LOG_DIR', 'LLM_LOG_RETENTION_DAYS'];

test('--version, --help and --help-markdown list every variable', () => {
  assert.match(execFileSync(bin, ['--version']).toString(), /^llm-node \d+\.\d+\.\d+/);
  const help = execFileSync(bin, ['--help']).toString();
  const md = execFileSync(bin, ['--help-markdown']).toString();
  for (const v of [...VARS, ...LEGACY]) {
    assert.ok(help.includes(v), `--help lacks ${v}`);
    assert.ok(md.includes(v), `--help-markdown lacks ${v}`);
  }
  const r = spawnSync(bin, ['--bogus']);
  assert.equal(r.status, 2);
});

test('a bad value stops the start with the variable named', () => {
  const r = spawnSync(bin, [], { env: { PATH: process.env.PATH, HOME: process.env.HOME, LLM_NODE_PARALLEL: '0' }, timeout: 10000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /LLM_NODE_PARALLEL/);
  const l = spawnSync(bin, [], { env: { PATH: process.env.PATH, HOME: process.env.HOME, LLM_HEARTBEAT_SECS: 'soon' }, timeout: 10000 });
  assert.equal(l.status, 2);
  assert.match(l.stderr.toString(), /LLM_HEARTBEAT_SECS/);
});

test('legacy names work with a deprecation warning; the JSON config file fills the rest', async () => {
  const dir = tempDir('llmr-node-cli-');
  dirs.push(dir);
  symlinkSync(makeModel('tiny', 'q8_0'), path.join(dir, 'legacy.gguf'));
  const cfg = path.join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ LLM_NODE_PARALLEL: 3, LLM_NODE_THREADS: 1, LLM_ROUTER_URL: '' }));
  const node = await startNode({ LLM_MODELS_DIR: dir, LLM_NODE_CONFIG: cfg, LOG_LEVEL: 'debug' });
  try {
    const m = (await http('GET', `${node.url}/metrics`)).json;
    assert.deepEqual(m.available_models, ['legacy']);
    assert.equal(m.total_slots, 3);
    assert.equal((await http('GET', `${node.url}/log/level`)).json.level, 'debug');
    assert.match(node.output(), /LLM_MODELS_DIR is deprecated; use LLM_NODE_MODELS_DIR/);
    assert.match(node.output(), /LOG_LEVEL is deprecated/);
    assert.equal((await http('GET', `${node.url}/health`)).json.registered, false);
  } finally {
    await node.stop();
  }
});
