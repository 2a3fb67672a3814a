// A small, safe renderer for the model's Markdown-like output: headings, paragraphs, lists,
// bold, and pipe tables. It builds DOM nodes with text nodes only (never innerHTML), so
// whatever the model writes stays text.
import { h, append } from './dom.js';

// *emphasis* (not a list marker, not bold): opening star after a start or a space, closing
// star before an end, a space or punctuation.
const EMPHASIS = /(^|[\s(«])\*(?=\S)([^*\n]*?\S)\*(?=$|[\s).,;:!?»])/g;

function inline(text) {
  // **bold** -> <strong>, *emphasis* -> <em>; everything else is text. Backticks are dropped.
  const out = [];
  const parts = text.replace(/`/g, '').split(/(\*\*[^*]+\*\*)/g);
  for (const p of parts) {
    if (!p) continue;
    if (p.startsWith('**') && p.endsWith('**') && p.length > 4) { out.push(h('strong', { text: p.slice(2, -2) })); continue; }
    let last = 0;
    for (const m of p.matchAll(EMPHASIS)) {
      const start = m.index + m[1].length;
      if (start > last) out.push(document.createTextNode(p.slice(last, start)));
      out.push(h('em', { text: m[2] }));
      last = m.index + m[0].length;
    }
    if (last < p.length) out.push(document.createTextNode(p.slice(last)));
  }
  return out;
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  return s.split('|').map((c) => c.trim().replace(/\*\*/g, ''));
}

const SEPARATOR = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function isTableLine(line) {
  return line.trim().startsWith('|') || (line.includes('|') && line.split('|').length >= 3);
}

/** Parses the pipe tables of `md`: [{header: [...], rows: [[...]]}]. */
export function parseTables(md) {
  const lines = md.split(/\r?\n/);
  const tables = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (isTableLine(lines[i]) && i + 1 < lines.length && SEPARATOR.test(lines[i + 1])) {
      const header = splitRow(lines[i]);
      const rows = [];
      let j = i + 2;
      while (j < lines.length && isTableLine(lines[j]) && lines[j].trim()) {
        const r = splitRow(lines[j]);
        while (r.length < header.length) r.push('');
        rows.push(r.slice(0, header.length));
        j += 1;
      }
      tables.push({ header, rows, start: i, end: j });
      i = j - 1;
    }
  }
  return tables;
}

/** A <table> from a parsed table, with a caption. */
export function tableElement(t, caption) {
  return h('div', { class: 'tableau-defilant' },
    h('table', { class: 'tableau' },
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, t.header.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, t.rows.map((r) => h('tr', {}, r.map((c, k) => (k === 0
        ? h('th', { scope: 'row', text: c }) : h('td', { text: c }))))))));
}

/** Renders `md` into a DocumentFragment. headingBase: the level of '#' (default 3). */
export function renderMarkdown(md, { headingBase = 3, tableCaption = 'Tableau' } = {}) {
  const frag = document.createDocumentFragment();
  const lines = md.replace(/\r\n/g, '\n').split('\n');
  const tables = parseTables(md);
  let para = [];
  let list = null;
  let tableCount = 0;
  const flushPara = () => {
    if (!para.length) return;
    const p = h('p');
    para.forEach((l, k) => {
      if (k) append(p, h('br'));
      append(p, ...inline(l));
    });
    append(frag, p);
    para = [];
  };
  const flushList = () => { if (list) { append(frag, list); list = null; } };
  for (let i = 0; i < lines.length; i += 1) {
    const t = tables.find((x) => x.start === i);
    if (t) {
      flushPara(); flushList();
      tableCount += 1;
      append(frag, tableElement(t, tables.length > 1 ? `${tableCaption} ${tableCount}` : tableCaption));
      i = t.end - 1;
      continue;
    }
    const line = lines[i];
    const trimmed = line.trim();
    let m;
    if (!trimmed) { flushPara(); flushList(); continue; }
    if ((m = /^(#{1,6})\s+(.*)$/.exec(trimmed))) {
      flushPara(); flushList();
      const level = Math.min(6, headingBase + Math.max(0, m[1].length - 1));
      append(frag, h(`h${level}`, {}, inline(m[2].replace(/#+\s*$/, ''))));
      continue;
    }
    if ((m = /^[-*•]\s+(.*)$/.exec(trimmed)) || (m = /^\d+[.)]\s+(.*)$/.exec(trimmed))) {
      const ordered = /^\d/.test(trimmed);
      flushPara();
      if (!list || (list.tagName === 'OL') !== ordered) { flushList(); list = h(ordered ? 'ol' : 'ul'); }
      append(list, h('li', {}, inline(m[1])));
      continue;
    }
    flushList();
    para.push(trimmed);
  }
  flushPara(); flushList();
  return frag;
}

/** The text without Markdown markers, for copies and exports. */
export function plainText(md) {
  return md
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/^(\s*)#{1,6}\s+/, '$1').replace(/\*\*([^*]+)\*\*/g, '$1').replace(EMPHASIS, '$1$2').replace(/`/g, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
