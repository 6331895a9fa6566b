// Builds the dashboard and the playground into the router.
//
//   cd web && npm ci && node build.mjs        (or: cmake --build <dir> --target web)
//
// 1. Every HTML page in src/ (dashboard.html, playground.html) is read; its
//    local <script src> and <link rel="stylesheet" href> references are the
//    entry points. esbuild bundles them (ES2020, minified, code shared by the
//    two pages split into common chunks) into dist/assets/ with the content's
//    hash in every name, and the references are rewritten to those names
//    (absolute: /dashboard/assets/...; the playground uses the same folder).
//    The pages must not hold inline script or style, nor event-handler
//    attributes: the router's Content-Security-Policy forbids them, and the
//    build refuses such a page rather than ship one that breaks.
// 2. Every file of dist/ goes into router/src/api/web_assets.c (generated;
//    committed, so the router builds without Node): its URL path, content
//    type, raw bytes, gzip bytes (zlib, level 9; left out where gzip does not
//    make it smaller), a strong ETag (SHA-256 of the raw bytes) and whether
//    its name is hashed (then it may be cached forever).
//
// Options:
//   --out FILE      write the C source to FILE (default ../router/src/api/web_assets.c)
//   --check         build into a temporary folder and compare with the
//                   committed web_assets.c: exit 1 when they differ (the
//                   gzip bytes are compared only by their gunzipped content,
//                   since another zlib may compress the same bytes otherwise)
//   --stub-missing  relative imports that do not resolve become empty
//                   modules, and a missing page is left out (for trying the pipeline while pages are written;
//                   never for a build that is committed)
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, gunzipSync, constants as zc } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.join(here, 'src');
const DEFAULT_OUT = path.resolve(here, '../router/src/api/web_assets.c');
const URL_ASSETS = '/dashboard/assets/'; // both pages' assets (api_static.c serves them)
const PAGES = ['dashboard', 'playground']; // src/<name>.html, served at /<name>

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

function fail(msg) {
  console.error(`build.mjs: ${msg}`);
  process.exit(1);
}

function parseArgs(argv) {
  const o = { out: DEFAULT_OUT, check: false, stubMissing: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') o.out = path.resolve(argv[++i] || fail('--out needs a file'));
    else if (a === '--check') o.check = true;
    else if (a === '--stub-missing') o.stubMissing = true;
    else fail(`unknown option ${a}`);
  }
  return o;
}

/* ---- HTML pages: their local references and the CSP rules ---- */

// The tags that load a local file: <script ... src="x"> and <link rel="stylesheet" ... href="x">.
const REF_RE = /<script\b[^>]*\bsrc="([^"]+)"[^>]*>\s*<\/script>|<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"[^>]*>|<link\b[^>]*\bhref="([^"]+)"[^>]*\brel="stylesheet"[^>]*>/gi;

function isLocal(ref) {
  return !/^[a-z][a-z0-9+.-]*:/i.test(ref) && !ref.startsWith('//');
}

/** The page's local entry files (absolute paths), after the CSP checks. */
function pageEntries(name, text, stubMissing) {
  const bad = [
    [/<script\b(?![^>]*\bsrc=)[^>]*>/i, 'an inline <script>'],
    [/<style\b/i, 'a <style> element'],
    [/\sstyle\s*=/i, 'a style attribute'],
    [/\son[a-z]+\s*=/i, 'an event-handler attribute'],
    [/javascript:/i, 'a javascript: URL'],
  ];
  for (const [re, what] of bad) if (re.test(text)) fail(`src/${name}.html has ${what}: the CSP forbids it`);
  const entries = [];
  for (const m of text.matchAll(REF_RE)) {
    const ref = m[1] || m[2] || m[3];
    if (!isLocal(ref)) fail(`src/${name}.html loads ${ref}: everything must come from the router (no CDN)`);
    const file = path.resolve(SRC, ref);
    if (!file.startsWith(SRC + path.sep) || !existsSync(file)) {
      if (stubMissing && file.startsWith(SRC + path.sep)) {
        console.warn(`build.mjs: src/${name}.html references ${ref}, which is not there yet: page left out`);
        return null;
      }
      fail(`src/${name}.html references ${ref}, which is not in src/`);
    }
    entries.push(file);
  }
  if (!entries.some((f) => f.endsWith('.js'))) fail(`src/${name}.html loads no script`);
  return entries;
}

/* ---- the bundle ---- */

// --stub-missing: relative imports that do not resolve become empty modules.
const stubPlugin = {
  name: 'stub-missing',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const p = path.resolve(args.resolveDir, args.path);
      if (existsSync(p)) return undefined;
      console.warn(`build.mjs: stub for missing ${path.relative(here, p)}`);
      return { path: p, namespace: 'stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

async function bundle(entries, outdir, stubMissing) {
  const result = await esbuild.build({
    entryPoints: entries,
    outdir,
    outbase: SRC,
    bundle: true,
    splitting: true,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    minify: true,
    sourcemap: false,
    metafile: true,
    write: true,
    charset: 'utf8',
    legalComments: 'eof',
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    loader: { '.svg': 'file', '.png': 'file', '.woff2': 'file' },
    publicPath: URL_ASSETS.slice(0, -1),
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
    plugins: stubMissing ? [stubPlugin] : [],
  }).catch(() => fail('esbuild failed (its errors above)'));
  return result.metafile;
}

/** For each entry file, the URL of its output, its CSS bundle and the chunks it imports. */
function outputsByEntry(meta, outdir) {
  const map = new Map();
  for (const [out, info] of Object.entries(meta.outputs)) {
    if (!info.entryPoint) continue;
    const entry = path.resolve(info.entryPoint);
    const url = (p) => URL_ASSETS + path.relative(outdir, path.resolve(p));
    map.set(entry, {
      url: url(out),
      css: info.cssBundle ? url(info.cssBundle) : null,
      chunks: (info.imports || []).filter((i) => i.kind === 'import-statement' && !i.external).map((i) => url(i.path)),
    });
  }
  return map;
}

function rewritePage(name, text, outs) {
  const extra = new Set();
  let html = text.replace(REF_RE, (tag, s1, s2, s3) => {
    const ref = s1 || s2 || s3;
    const o = outs.get(path.resolve(SRC, ref));
    if (!o) fail(`no output for ${ref} of src/${name}.html`);
    if (s1) {
      for (const c of o.chunks) extra.add(`<link rel="modulepreload" href="${c}">`);
      if (o.css) extra.add(`<link rel="stylesheet" href="${o.css}">`);
      return `<script type="module" src="${o.url}"></script>`;
    }
    return `<link rel="stylesheet" href="${o.url}">`;
  });
  // no favicon request that would 404: an empty one unless the page has one
  if (!/rel="(shortcut )?icon"/i.test(html)) extra.add('<link rel="icon" href="data:,">');
  if (extra.size) html = html.replace(/<\/head>/i, `${[...extra].join('\n')}\n</head>`);
  return html;
}

/* ---- the C source ---- */

function cString(buf, indent = '    ') {
  // printable ASCII as is (", \ and ? escaped: ? could start a trigraph),
  // newline and tab by name, every other byte as a three-digit octal escape;
  // a new literal after each newline and every ~96 columns
  const named = { 0x0a: '\\n', 0x09: '\\t', 0x22: '\\"', 0x5c: '\\\\', 0x3f: '\\?' };
  const lines = [];
  let line = '';
  for (const b of buf) {
    line += named[b] || (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '\\' + b.toString(8).padStart(3, '0'));
    if (line.length >= 96 || b === 0x0a) {
      lines.push(`${indent}"${line}"`);
      line = '';
    }
  }
  if (line || !lines.length) lines.push(`${indent}"${line}"`);
  return lines.join('\n');
}

function listFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/** The served files of dist/: [{ url, type, raw, gz, etag, hashed }], sorted by url. */
function collectAssets(dist) {
  const assets = [];
  for (const file of listFiles(dist)) {
    const rel = path.relative(dist, file).split(path.sep).join('/');
    const ext = path.extname(rel);
    const type = TYPES[ext];
    if (!type) fail(`dist/${rel}: no content type for ${ext}`);
    let url;
    let hashed;
    if (rel.startsWith('assets/')) {
      url = URL_ASSETS + rel.slice('assets/'.length);
      hashed = true;
    } else if (ext === '.html' && PAGES.includes(rel.slice(0, -5))) {
      url = '/' + rel.slice(0, -5);
      hashed = false;
    } else {
      fail(`dist/${rel}: not a page nor an asset`);
    }
    const raw = readFileSync(file);
    let gz = gzipSync(raw, { level: 9, memLevel: 9, strategy: zc.Z_DEFAULT_STRATEGY });
    if (gz.length >= raw.length) gz = null;
    const etag = createHash('sha256').update(raw).digest('hex').slice(0, 32);
    assets.push({ url, type, raw, gz, etag, hashed });
  }
  assets.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  return assets;
}

function cSource(assets) {
  const total = (k) => assets.reduce((n, a) => n + (a[k] ? a[k].length : 0), 0);
  const out = [];
  out.push('/* GENERATED by web/build.mjs from web/src: do not edit (cd web && npm ci && node build.mjs). */');
  out.push('/* The dashboard\'s and the playground\'s files, served by api_static.c:');
  for (const a of assets) {
    out.push(` *   ${a.url}  ${a.raw.length} bytes${a.gz ? `, gzip ${a.gz.length}` : ''}`);
  }
  out.push(` * in all ${total('raw')} bytes, gzip ${total('gz')}. */`);
  out.push('#include "api/web_assets.h"');
  out.push('');
  assets.forEach((a, i) => {
    out.push(`/* ${a.url} */`);
    out.push(`static const unsigned char a${i}[] =\n${cString(a.raw)};`);
    if (a.gz) out.push(`static const unsigned char a${i}_gz[] =\n${cString(a.gz)};`);
    out.push('');
  });
  out.push('const rt_web_asset_t rt_web_assets[] = {');
  assets.forEach((a, i) => {
    out.push(`    { "${a.url}", "${a.type}", a${i}, sizeof(a${i}) - 1, ${a.gz ? `a${i}_gz, sizeof(a${i}_gz) - 1` : 'NULL, 0'},`);
    out.push(`      "\\"${a.etag}\\"", "\\"${a.etag}-gz\\"", ${a.hashed ? 'true' : 'false'} },`);
  });
  out.push('};');
  out.push('const size_t rt_web_assets_count = sizeof(rt_web_assets) / sizeof(rt_web_assets[0]);');
  out.push('');
  return out.join('\n');
}

/* ---- --check: the committed source against a fresh build ---- */

// The generated source as { manifest, blobs }: the gzip arrays are replaced
// by their gunzipped content's hash (another zlib may compress differently).
function normalise(src) {
  const unescape = (body) => {
    const named = { n: 0x0a, t: 0x09, '"': 0x22, '\\': 0x5c, '?': 0x3f };
    const bytes = [];
    for (const lit of body.matchAll(/"((?:[^"\\]|\\[0-7]{3}|\\[nt"\\?])*)"/g)) {
      const s = lit[1];
      for (let i = 0; i < s.length; i++) {
        if (s[i] !== '\\') bytes.push(s.charCodeAt(i));
        else if (named[s[i + 1]] !== undefined) bytes.push(named[s[++i]]);
        else {
          bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
          i += 3;
        }
      }
    }
    return Buffer.from(bytes);
  };
  return src.replace(/(static const unsigned char a\d+_gz\[\] =\n)([\s\S]*?);\n/g, (m, decl, body) => {
    let h;
    try {
      h = createHash('sha256').update(gunzipSync(unescape(body))).digest('hex');
    } catch {
      h = 'not gzip';
    }
    return `${decl}/* gunzips to ${h} */;\n`;
  }).replace(/( \* in all \d+ bytes, gzip )\d+/, '$1N').replace(/(bytes, gzip )\d+/g, '$1N');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(here, 'node_modules', 'esbuild'))) fail('node_modules missing: run npm ci in web/ first');
  const work = mkdtempSync(path.join(tmpdir(), 'llmr-web-'));
  try {
    const dist = path.join(work, 'dist');
    const assetsDir = path.join(dist, 'assets');
    mkdirSync(assetsDir, { recursive: true });
    const pages = [];
    const entries = new Set();
    for (const name of PAGES) {
      const file = path.join(SRC, `${name}.html`);
      if (!existsSync(file)) {
        if (!opts.stubMissing) fail(`src/${name}.html missing`);
        console.warn(`build.mjs: src/${name}.html missing: left out`);
        continue;
      }
      const text = readFileSync(file, 'utf8');
      const mine = pageEntries(name, text, opts.stubMissing);
      if (!mine) continue;
      for (const e of mine) entries.add(e);
      pages.push({ name, text });
    }
    const meta = await bundle([...entries], assetsDir, opts.stubMissing);
    const outs = outputsByEntry(meta, assetsDir);
    for (const p of pages) writeFileSync(path.join(dist, `${p.name}.html`), rewritePage(p.name, p.text, outs));
    const assets = collectAssets(dist);
    const src = cSource(assets);

    const first = assets.filter((a) => a.url === '/dashboard' || (a.hashed && /\.(js|css)$/.test(a.url)));
    const gzBytes = first.reduce((n, a) => n + (a.gz || a.raw).length, 0);
    console.log(`build.mjs: ${assets.length} files, ${assets.reduce((n, a) => n + a.raw.length, 0)} bytes raw, ` +
      `${gzBytes} bytes gzip (both pages' HTML, JS and CSS)`);

    if (opts.check) {
      if (!existsSync(opts.out)) fail(`${opts.out} missing`);
      const committed = readFileSync(opts.out, 'utf8');
      if (committed === src) {
        console.log(`build.mjs: ${path.relative(process.cwd(), opts.out)} is up to date`);
        return;
      }
      if (normalise(committed) === normalise(src)) {
        console.log(`build.mjs: ${path.relative(process.cwd(), opts.out)} is up to date (its gzip bytes come from another zlib)`);
        return;
      }
      fail(`${opts.out} is out of date with web/src: run \`cd web && npm ci && node build.mjs\` (or the CMake target web)`);
    }
    // dist/ for a look at what is served; the C source replaced atomically
    const keep = path.join(here, 'dist');
    rmSync(keep, { recursive: true, force: true });
    renameOrCopy(dist, keep);
    const tmp = `${opts.out}.tmp${process.pid}`;
    writeFileSync(tmp, src);
    renameSync(tmp, opts.out);
    console.log(`build.mjs: wrote ${path.relative(process.cwd(), opts.out)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function renameOrCopy(from, to) {
  try {
    renameSync(from, to);
  } catch {
    // another file system (tmp on tmpfs): copy
    for (const f of listFiles(from)) {
      const rel = path.relative(from, f);
      mkdirSync(path.dirname(path.join(to, rel)), { recursive: true });
      writeFileSync(path.join(to, rel), readFileSync(f));
    }
  }
}

await main();
