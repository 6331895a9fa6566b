// A small, safe Markdown renderer for model answers: text in, preact vnodes
// out. It never builds an HTML string, so whatever a model writes (<script>,
// <img onerror=...>) reaches the page as text that preact escapes. Covered:
// paragraphs (a single newline is a line break, as chat UIs show it),
// ATX headings, bullet and numbered lists (nested by indentation), block
// quotes, horizontal rules, fenced code blocks (``` or ~~~, an unclosed fence
// runs to the end: a stream in progress), emphasis, strong, strikethrough,
// inline code, backslash escapes, links and bare URLs (http and https only,
// opened with rel="noopener noreferrer"; any other scheme stays text).
import { h } from 'preact';

const MAX_DEPTH = 8; // nesting of lists, quotes and emphasis: deeper is text

// ---- links ----

/** The URL when it is an absolute http(s) URL, else null. */
export function safeHref(url) {
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url.trim())) return null;
  try {
    const u = new URL(url.trim());
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch (e) {
    return null;
  }
}

function link(href, children, key) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', key }, children);
}

// ---- inline ----

const ESCAPABLE = '\\`*_{}[]()#+-.!~>|<';

// Finds the closing delimiter d at or after i, not preceded by whitespace
// (nor, for underscores, followed by a letter or digit: snake_case and
// __init__-like words are not emphasis); -1 when none.
function closing(s, d, i) {
  for (let j = s.indexOf(d, i); j !== -1; j = s.indexOf(d, j + 1)) {
    if (j <= i || /\s/.test(s[j - 1]) || s[j - 1] === '\\') continue;
    if (d[0] === '_' && /[A-Za-z0-9]/.test(s[j + d.length] || '')) continue;
    if (s[j + d.length] === d[0]) continue; // part of a longer run
    return j;
  }
  return -1;
}

/** Inline Markdown of s as an array of strings and vnodes. */
export function inline(s, depth = 0) {
  const out = [];
  let text = '';
  let key = 0;
  const flush = () => {
    if (text) out.push(text);
    text = '';
  };
  const push = (node) => {
    flush();
    out.push(node);
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && ESCAPABLE.includes(s[i + 1])) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      let n = 1;
      while (s[i + n] === '`') n++;
      const fence = '`'.repeat(n);
      const end = s.indexOf(fence, i + n);
      if (end !== -1) {
        let code = s.slice(i + n, end);
        if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ') code = code.slice(1, -1);
        push(h('code', { key: key++ }, code));
        i = end + n;
        continue;
      }
      text += fence;
      i += n;
      continue;
    }
    if (depth < MAX_DEPTH && (c === '*' || c === '_' || c === '~')) {
      const two = s[i + 1] === c;
      if (c === '~' && !two) {
        text += c;
        i++;
        continue;
      }
      const d = two ? c + c : c;
      // an underscore inside a word (snake_case) is not emphasis
      const wordBefore = c === '_' && i > 0 && /[A-Za-z0-9]/.test(s[i - 1]);
      const start = i + d.length;
      const end = !wordBefore && start < s.length && !/\s/.test(s[start]) ? closing(s, d, start) : -1;
      if (end !== -1) {
        const tag = c === '~' ? 's' : two ? 'strong' : 'em';
        push(h(tag, { key: key++ }, inline(s.slice(start, end), depth + 1)));
        i = end + d.length;
        continue;
      }
      text += d;
      i += d.length;
      continue;
    }
    if (c === '[' && depth < MAX_DEPTH) {
      const m = /^\[([^\]\n]*)\]\(\s*([^()\s]*)(?:\s+"[^"]*")?\s*\)/.exec(s.slice(i));
      if (m) {
        const href = safeHref(m[2]);
        const label = inline(m[1], depth + 1);
        if (href) push(link(href, label.length ? label : href, key++));
        else {
          // not a web link: the label as text, the target shown, never followed
          flush();
          out.push(...label, ` (${m[2]})`);
        }
        i += m[0].length;
        continue;
      }
    }
    if ((c === 'h' || c === 'H') && (i === 0 || /[\s(<]/.test(s[i - 1]))) {
      const m = /^https?:\/\/[^\s<>"')\]]+/i.exec(s.slice(i));
      if (m) {
        let u = m[0];
        while (/[.,;:!?]$/.test(u)) u = u.slice(0, -1); // sentence punctuation
        const href = safeHref(u);
        if (href) {
          push(link(href, u, key++));
          i += u.length;
          continue;
        }
      }
    }
    text += c;
    i++;
  }
  flush();
  return out;
}

// ---- blocks ----

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const HR = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const LIST = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;

function indentOf(line) {
  const m = /^\s*/.exec(line);
  return m[0].replace(/\t/g, '    ').length;
}

function paragraph(lines, key, depth) {
  const kids = [];
  lines.forEach((l, n) => {
    if (n) kids.push(h('br', { key: `b${n}` }));
    kids.push(...inline(l.trim(), depth));
  });
  return h('p', { key }, kids);
}

// Parses a list starting at lines[i]; returns [vnode, next index].
function list(lines, i, key, depth) {
  const first = LIST.exec(lines[i]);
  const base = indentOf(lines[i]);
  const ordered = /\d/.test(first[2]);
  const start = ordered ? parseInt(first[2], 10) : 1;
  const items = [];
  let cur = null;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      // a blank line ends the list unless the next line continues it
      const next = lines[i + 1];
      if (next !== undefined && (indentOf(next) > base || (LIST.exec(next) && indentOf(next) === base))) {
        i++;
        continue;
      }
      break;
    }
    const m = LIST.exec(line);
    const ind = indentOf(line);
    if (m && ind === base && /\d/.test(m[2]) === ordered) {
      cur = { text: [m[3]], sub: [] };
      items.push(cur);
      i++;
      continue;
    }
    if (m && ind > base && cur && depth < MAX_DEPTH) {
      const [node, next] = list(lines, i, `l${i}`, depth + 1);
      cur.sub.push(node);
      i = next;
      continue;
    }
    if (ind > base && cur && !m) {
      cur.text.push(line.trim()); // a continuation line of the item
      i++;
      continue;
    }
    break;
  }
  const lis = items.map((it, n) => {
    const kids = [];
    it.text.forEach((t, k) => {
      if (k) kids.push(h('br', { key: `b${k}` }));
      kids.push(...inline(t, depth));
    });
    return h('li', { key: n }, [...kids, ...it.sub]);
  });
  const props = { key };
  if (ordered && start !== 1) props.start = start;
  return [h(ordered ? 'ol' : 'ul', props, lis), i];
}

function blocks(lines, depth) {
  const out = [];
  let para = [];
  let i = 0;
  const endPara = () => {
    if (para.length) out.push(paragraph(para, `p${i}`, depth));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = FENCE.exec(line))) {
      endPara();
      const mark = m[1];
      const lang = m[2];
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(mark[0].repeat(mark.length)) && /^\s*[`~]+\s*$/.test(lines[i]))) {
        body.push(lines[i]);
        i++;
      }
      i++; // the closing fence (or past the end)
      const props = lang ? { 'data-lang': lang, class: `lang-${lang.replace(/[^A-Za-z0-9_+-]/g, '')}` } : {};
      out.push(h('pre', { key: `c${i}`, class: 'md-code' }, h('code', props, body.join('\n'))));
      continue;
    }
    if (!line.trim()) {
      endPara();
      i++;
      continue;
    }
    if ((m = HEADING.exec(line))) {
      endPara();
      out.push(h(`h${m[1].length}`, { key: `h${i}` }, inline(m[2] || '', depth)));
      i++;
      continue;
    }
    if (HR.test(line) && !para.length) {
      out.push(h('hr', { key: `r${i}` }));
      i++;
      continue;
    }
    if (LIST.test(line) && (!para.length || !/^\s/.test(line)) && depth < MAX_DEPTH) {
      endPara();
      const [node, next] = list(lines, i, `l${i}`, depth);
      out.push(node);
      i = next;
      continue;
    }
    if (QUOTE.test(line) && depth < MAX_DEPTH) {
      endPara();
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        inner.push(m[1]);
        i++;
      }
      out.push(h('blockquote', { key: `q${i}` }, blocks(inner, depth + 1)));
      continue;
    }
    para.push(line);
    i++;
  }
  endPara();
  return out;
}

/** Markdown text as an array of preact vnodes (empty for no text). */
export function markdown(text) {
  if (typeof text !== 'string' || !text) return [];
  return blocks(text.replace(/\r\n?/g, '\n').split('\n'), 0);
}

/** A component: <Markdown text=${s} />. */
export function Markdown({ text, class: cls }) {
  return h('div', { class: cls ? `md ${cls}` : 'md' }, markdown(text));
}
