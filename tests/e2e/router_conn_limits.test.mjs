// The router and its open-files limit: raised at start, and what happens when
// a flood of connections uses every descriptor anyway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { startRouter, http } from './lib/harness.mjs';

function nofile(pid) {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/);
  return { soft: Number(soft), hard: Number(hard) };
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ ticks
}

/** A raw keep-alive connection that sends GET /health and resolves with the status. */
function healthOn(sock) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => { sock.off('data', onData); reject(new Error('no answer on the open connection')); }, 3000);
    const onData = (d) => {
      buf += d.toString();
      if (buf.includes('{"status":"ok"}')) { clearTimeout(t); sock.off('data', onData); resolve(Number(buf.split(' ')[1])); }
    };
    sock.on('data', onData);
    sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

test('the open-files soft limit is raised to the hard limit at start', async () => {
  const r = await startRouter({}, { wrap: ['prlimit', '--nofile=256:4096'] });
  try {
    assert.deepEqual(nofile(r.proc.pid), { soft: 4096, hard: 4096 });
  } finally {
    await r.stop();
  }
});

test('out of descriptors: accepting pauses instead of spinning, open connections are served, accepting resumes', async () => {
  const r = await startRouter({ LLM_ROUTER_WORKERS: '1' });
  const conns = [];
  try {
    const pid = r.proc.pid;
    const kept = await connect(r.port);
    assert.equal(await healthOn(kept), 200);
    // leave the router 8 descriptors to spare, then connect 40 more clients:
    // the kernel completes them in the backlog, accept() gets EMFILE
    const limit = readdirSync(`/proc/${pid}/fd`).length + 8;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
    for (let i = 0; i < 40; i++) conns.push(await connect(r.port));
    await new Promise((res) => setTimeout(res, 300));
    const c0 = cpuSeconds(pid);
    await new Promise((res) => setTimeout(res, 1000));
    const used = cpuSeconds(pid) - c0;
    // libevent alone logs and returns, and the listener wakes again at once
    assert.ok(used < 0.1, `the router used ${used.toFixed(2)} s of CPU in 1 s while out of descriptors`);
    assert.equal(await healthOn(kept), 200); // the connections it has are still served
    const warned = r.output().match(/cannot accept connections: Too many open files/g) || [];
    assert.equal(warned.length, 1, 'one warning, rate-limited');
    for (const s of conns.splice(0)) s.destroy();
    const t0 = Date.now();
    const h = await http('GET', `${r.url}/health`, { timeoutMs: 5000 });
    assert.equal(h.status, 200);
    assert.ok(Date.now() - t0 < 2000, `accepting again after ${Date.now() - t0} ms`);
    kept.destroy();
  } finally {
    for (const s of conns) s.destroy();
    await r.stop();
  }
});
