// A local fake of the Hugging Face Hub for the model-task suites (issue 15),
// speaking the Hub's real wire format as huggingface_hub and llama.cpp use
// it (/work/shared/reference/wire-formats.md section 4):
//
//   GET  /api/models/{repo}[/revision/{rev}]   model info: id, sha (the
//        commit), gated (false | "auto"), siblings [{rfilename, size, lfs:
//        {sha256, size, pointerSize}}]
//   GET  /api/models/{repo}/tree/{rev}?recursive=true[&expand=false]
//        [{type:"file", oid (git sha1), size, path, lfs?:{oid (sha256),
//        size, pointerSize}}, {type:"directory", ...}], paginated with a
//        GitHub-style `Link: <...&cursor=N>; rel="next"` when pageSize is set
//   GET|HEAD /{repo}/resolve/{rev}/{file}       302 to the second ("CDN")
//        port, with X-Repo-Commit, X-Linked-Etag (the sha256), X-Linked-Size;
//        small non-LFS files are served by the Hub itself
//   GET  /api/models?search=&filter=gguf&sort=&limit=   search, paginated by
//        Link when more match than limit
//   errors as the Hub sends them: a missing repository 401 (no token) or
//        404 (a token) with X-Error-Code: RepoNotFound; a missing revision
//        404 RevisionNotFound; a missing file 404 EntryNotFound; a gated
//        repository's info and tree public, its files 401 GatedRepo without
//        an accepted token (403 with a token lacking access); rate limit 429
//        with Retry-After (mode)
//
// The CDN port serves /blobs/{sha256}?Expires=...&Signature=... (signed URL
// shape), honours single Range requests (206 + Content-Range, 416), and
// misbehaves on demand.
//
// API
//   startFakeHf({ token }) -> Promise<hub>
//     token   the token that opens gated repositories (default HF_TEST_TOKEN)
//   hub = {
//     url (the Hub's origin), cdnUrl, env ({ HF_BASE_URL }),
//     addRepo(id, { files: [{ path, data (Buffer) | file (a path on disk),
//                  lfs (default: true for .gguf/.safetensors/.bin) }],
//                  gated, sha }),
//     mode   { dropAfter: bytes (the next CDN body is cut there, once per
//              set), corrupt: bool (bytes flipped, size kept),
//              ignoreRange: bool (200 to a Range), rateBps: number (throttle),
//              rateLimit: n (the next n Hub API calls get 429), pageSize }
//     log    [{ server: 'hub' | 'cdn', method, path, query, headers,
//               range, status }] in order,
//     reset(), close()
//   }
import http from 'node:http';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';

export const HF_TEST_TOKEN = 'hf_e2eTestToken0123456789abcdefghijklmnop';

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const sha1 = (b) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

export async function startFakeHf({ token = HF_TEST_TOKEN } = {}) {
  const repos = new Map();
  const blobs = new Map(); // sha256 -> Buffer
  const log = [];
  const mode = {};
  const sockets = new Set();
  let hubPort = 0;
  let cdnPort = 0;

  function authOf(req) {
    const a = req.headers.authorization || '';
    return a.startsWith('Bearer ') ? a.slice(7) : null;
  }
  function hubError(res, status, code, message, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code, 'x-error-message': message, ...headers });
    res.end(JSON.stringify({ error: message }));
  }
  function notFoundRepo(req, res) {
    // the Hub says 401 without a token, 404 with one (it does not tell a
    // private repository from a missing one)
    const status = authOf(req) ? 404 : 401;
    return hubError(res, status, 'RepoNotFound', 'Repository Not Found for url: ' + req.url + '.');
  }
  function revOk(repo, rev) { return rev === 'main' || rev === repo.sha; }
  function treeEntries(repo) {
    const dirs = new Set();
    const out = [];
    for (const f of repo.files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
      const e = { type: 'file', oid: sha1(f.data), size: f.data.length, path: f.path };
      if (f.lfs) e.lfs = { oid: f.sha256, size: f.data.length, pointerSize: 134 };
      out.push(e);
    }
    for (const d of dirs) out.push({ type: 'directory', oid: sha1(Buffer.from(d)), size: 0, path: d });
    return out;
  }
  function page(req, res, url, items) {
    const size = mode.pageSize || 0;
    const cursor = Number(url.searchParams.get('cursor') || 0);
    let slice = items;
    const headers = { 'content-type': 'application/json' };
    if (size > 0) {
      slice = items.slice(cursor, cursor + size);
      if (cursor + size < items.length) {
        const next = new URL(url.toString());
        next.searchParams.set('cursor', String(cursor + size));
        headers.link = `<http://127.0.0.1:${hubPort}${next.pathname}${next.search}>; rel="next"`;
      }
    }
    res.writeHead(200, headers);
    res.end(JSON.stringify(slice));
  }

  const hub = http.createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${hubPort}`);
    const entry = { server: 'hub', method: req.method, path: decodeURIComponent(url.pathname), query: Object.fromEntries(url.searchParams), headers: req.headers, range: req.headers.range || null, status: 0 };
    log.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    req.resume();
    if (mode.rateLimit > 0 && url.pathname.startsWith('/api/')) {
      mode.rateLimit--;
      return hubError(res, 429, 'RateLimited', 'You have been rate-limited.', { 'retry-after': '7' });
    }
    let m;
    if (req.method === 'GET' && url.pathname === '/api/models') {
      const q = (url.searchParams.get('search') || '').toLowerCase();
      const items = [...repos.values()]
        .filter((r) => r.id.toLowerCase().includes(q) && (url.searchParams.get('filter') !== 'gguf' || r.files.some((f) => f.path.endsWith('.gguf'))))
        .map((r) => ({ _id: r.sha.slice(0, 24), id: r.id, modelId: r.id, likes: r.likes, downloads: r.downloads, private: false, gated: r.gated ? 'auto' : false, tags: ['gguf'], lastModified: '2026-01-02T03:04:05.000Z', createdAt: '2025-01-01T00:00:00.000Z' }))
        .sort((a, b) => b.downloads - a.downloads);
      const limit = Number(url.searchParams.get('limit') || 0);
      const saved = mode.pageSize;
      if (limit > 0 && !mode.pageSize) mode.pageSize = limit;
      page(req, res, url, items);
      mode.pageSize = saved;
      return;
    }
    if (req.method === 'GET' && (m = /^\/api\/models\/([^/]+(?:\/[^/]+)?)\/tree\/([^/]+)$/.exec(url.pathname))) {
      const repo = repos.get(m[1]);
      if (!repo) return notFoundRepo(req, res);
      if (!revOk(repo, decodeURIComponent(m[2]))) return hubError(res, 404, 'RevisionNotFound', `Invalid rev id: ${decodeURIComponent(m[2])}`);
      return page(req, res, url, treeEntries(repo));
    }
    if (req.method === 'GET' && (m = /^\/api\/models\/([^/]+(?:\/[^/]+)??)(?:\/revision\/([^/]+))?$/.exec(url.pathname))) {
      const repo = repos.get(m[1]);
      if (!repo) return notFoundRepo(req, res);
      const rev = m[2] ? decodeURIComponent(m[2]) : 'main';
      if (!revOk(repo, rev)) return hubError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({
        _id: repo.sha.slice(0, 24), id: repo.id, modelId: repo.id, author: repo.id.split('/')[0], sha: repo.sha,
        private: false, gated: repo.gated ? 'auto' : false, disabled: false, downloads: repo.downloads, likes: repo.likes,
        tags: ['gguf'], library_name: 'gguf', lastModified: '2026-01-02T03:04:05.000Z',
        siblings: repo.files.map((f) => ({ rfilename: f.path, size: f.data.length, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.data.length, pointerSize: 134 } } : {}) })),
      }));
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (m = /^\/([^/]+\/[^/]+|[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname))) {
      const repo = repos.get(m[1]);
      if (!repo) return notFoundRepo(req, res);
      const rev = decodeURIComponent(m[2]);
      if (!revOk(repo, rev)) return hubError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      if (repo.gated && authOf(req) !== token) {
        return authOf(req)
          ? hubError(res, 403, 'GatedRepo', `Access to model ${repo.id} is restricted and you are not in the authorized list.`)
          : hubError(res, 401, 'GatedRepo', `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      }
      const path = decodeURIComponent(m[3]);
      const f = repo.files.find((x) => x.path === path);
      if (!f) return hubError(res, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
      const common = { 'x-repo-commit': repo.sha, 'accept-ranges': 'bytes' };
      if (!f.lfs) {
        res.writeHead(200, { ...common, etag: `"${sha1(f.data)}"`, 'content-length': f.data.length, 'content-type': 'application/octet-stream' });
        return res.end(req.method === 'HEAD' ? undefined : f.data);
      }
      const loc = `http://127.0.0.1:${cdnPort}/blobs/${f.sha256}?Expires=9999999999&Signature=fakesig&Key-Pair-Id=K1`;
      res.writeHead(302, { ...common, location: loc, 'x-linked-etag': `"${f.sha256}"`, 'x-linked-size': String(f.data.length), 'content-length': 0 });
      return res.end();
    }
    hubError(res, 404, 'EntryNotFound', 'not found');
  });

  const cdn = http.createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${cdnPort}`);
    const entry = { server: 'cdn', method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, range: req.headers.range || null, status: 0 };
    log.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    req.resume();
    const m = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
    const blob = m && blobs.get(m[1]);
    if (!blob || url.searchParams.get('Signature') !== 'fakesig') {
      res.writeHead(403, { 'content-type': 'application/xml' });
      return res.end('<Error><Code>AccessDenied</Code></Error>');
    }
    let start = 0;
    let end = blob.length - 1;
    let status = 200;
    const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', etag: `"${m[1]}"` };
    const r = req.headers.range && !mode.ignoreRange ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range) : null;
    if (req.headers.range && !mode.ignoreRange && !r) { res.writeHead(416, { 'content-range': `bytes */${blob.length}` }); return res.end(); }
    if (r) {
      start = Number(r[1]);
      if (r[2]) end = Math.min(Number(r[2]), blob.length - 1);
      if (start >= blob.length || start > end) { res.writeHead(416, { 'content-range': `bytes */${blob.length}` }); return res.end(); }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${blob.length}`;
    }
    let body = blob.subarray(start, end + 1);
    if (mode.corrupt) { body = Buffer.from(body); for (let i = 0; i < body.length; i += 997) body[i] ^= 0xff; }
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    let cut = mode.dropAfter > 0 ? mode.dropAfter : 0;
    if (cut) mode.dropAfter = 0; // once
    const chunk = 16384;
    let off = 0;
    const pump = () => {
      while (off < body.length) {
        if (res.destroyed) return;
        let n = Math.min(chunk, body.length - off);
        if (cut && off + n >= cut) {
          res.write(body.subarray(off, cut), () => res.socket?.destroy());
          return;
        }
        const ok = res.write(body.subarray(off, off + n));
        off += n;
        if (mode.rateBps > 0) { setTimeout(pump, Math.ceil((n * 1000) / mode.rateBps)); return; }
        if (!ok) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  });

  for (const s of [hub, cdn]) s.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
  hubPort = await listen(hub);
  cdnPort = await listen(cdn);

  return {
    url: `http://127.0.0.1:${hubPort}`,
    cdnUrl: `http://127.0.0.1:${cdnPort}`,
    env: { HF_BASE_URL: `http://127.0.0.1:${hubPort}` },
    mode,
    log,
    addRepo(id, { files = [], gated = false, sha, downloads = 100, likes = 1 } = {}) {
      const fs = files.map((f) => {
        const data = f.data ?? readFileSync(f.file);
        const lfs = f.lfs ?? /\.(gguf|safetensors|bin)$/.test(f.path);
        const s = sha256(data);
        if (lfs) blobs.set(s, data);
        return { path: f.path, data, lfs, sha256: s };
      });
      const repo = { id, files: fs, gated, downloads, likes, sha: sha || crypto.createHash('sha1').update(id).digest('hex') };
      repos.set(id, repo);
      return repo;
    },
    reset() { log.length = 0; for (const k of Object.keys(mode)) delete mode[k]; },
    close() {
      for (const s of sockets) s.destroy();
      return Promise.all([hub, cdn].map((s) => new Promise((r) => s.close(() => r()))));
    },
  };
}
