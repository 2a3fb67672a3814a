// Documents: upload for text extraction (the box keeps nothing), and the chunking of long
// texts for summaries made in several passes.
import { h, field, newId, formatNumber, messageZones, append } from './dom.js';
import { api, ApiError } from './api.js';
import { limits } from './state.js';

export const ACCEPT = '.pdf,.docx,.odt,.txt';
const EXTENSIONS = ['pdf', 'docx', 'odt', 'txt'];
// French text runs at about 2.5 to 3 characters per token with the small vocabularies of the
// served models: 2.5 keeps a long part from overflowing the context window.
const CHARS_PER_TOKEN = 2.5;

export function maxDocumentBytes() {
  return limits().max_document_bytes || 20 * 1024 * 1024;
}

export function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toLocaleString('fr-FR', { maximumFractionDigits: 1 })} Mo`;
  if (n >= 1024) return `${Math.round(n / 1024).toLocaleString('fr-FR')} Ko`;
  return `${n} octets`;
}

/** A refusal found before sending the file (size, extension), as a French message, or null. */
export function checkFile(file) {
  const ext = (file.name.split('.').pop() || '').toLowerCase();
  if (!EXTENSIONS.includes(ext)) {
    return `Le fichier « ${file.name} » n'est pas dans un format accepté. Formats acceptés : PDF, DOCX, ODT ou TXT.`;
  }
  const max = maxDocumentBytes();
  if (file.size > max) {
    return `Le fichier « ${file.name} » est trop volumineux (${formatBytes(file.size)}) : la taille maximale est de ${formatBytes(max)}.`;
  }
  if (file.size === 0) return `Le fichier « ${file.name} » est vide.`;
  return null;
}

/** Sends the file to the box for text extraction: {format, text, characters, pages, truncated}. */
export async function extractDocument(file, signal) {
  return api('POST', '/v1/parse', file, {
    headers: { 'X-Civia-Filename': encodeURIComponent(file.name) },
    signal,
  });
}

/**
 * A file field that reads the document as soon as it is chosen.
 * Returns {wrap, input, text(), name(), reset()}.
 */
export function documentPicker({ label = 'Document', required = false, onText } = {}) {
  const f = field({
    label, name: 'document', type: 'file', required,
    hint: `PDF, DOCX, ODT ou TXT, ${formatBytes(maxDocumentBytes())} au plus. Le fichier sert seulement à en lire le texte : la box ne le conserve pas.`,
    attrs: { accept: ACCEPT },
  });
  const zones = messageZones();
  append(f.wrap, zones.status, zones.alert);
  let doc = null;
  let fileName = '';
  let pending = null;
  f.input.addEventListener('change', async () => {
    doc = null;
    zones.clearAll();
    f.input.removeAttribute('aria-invalid');
    const file = f.input.files && f.input.files[0];
    if (!file) return;
    fileName = file.name;
    const refusal = checkFile(file);
    if (refusal) {
      zones.error(refusal);
      f.input.setAttribute('aria-invalid', 'true');
      return;
    }
    zones.info(`Lecture du document « ${file.name} »…`);
    const p = extractDocument(file).then((d) => {
      if (pending !== p) return;
      doc = d;
      const pages = d.pages ? `${d.pages} page${d.pages > 1 ? 's' : ''}, ` : '';
      zones.info(`Document lu : « ${file.name} » (${pages}${formatNumber(d.characters)} caractères).`);
      if (d.truncated) zones.error('Le texte du document a été tronqué : seule sa première partie sera utilisée.');
      if (onText) onText(d.text, file.name);
    }).catch((e) => {
      if (pending !== p) return;
      zones.info('');
      zones.error(e instanceof ApiError ? e.french : 'La lecture du document a échoué.');
      f.input.setAttribute('aria-invalid', 'true');
    });
    pending = p;
  });
  return {
    wrap: f.wrap,
    input: f.input,
    async ready() { if (pending) await pending; return doc; },
    text() { return doc ? doc.text : ''; },
    name() { return fileName; },
    hasFile() { return !!(f.input.files && f.input.files.length); },
  };
}

/** How many characters of material fit in one request next to `overhead` characters of instructions. */
export function budgetChars(answerTokens, overhead = 0) {
  const l = limits();
  const ctx = l.context_tokens || 4096;
  let budget = Math.floor((ctx - answerTokens - 200) * CHARS_PER_TOKEN);
  if (l.max_prompt_chars) budget = Math.min(budget, l.max_prompt_chars);
  return Math.max(800, budget - overhead);
}

/** The answer length to ask for: `want`, within the box's limits. */
export function answerTokens(want) {
  const l = limits();
  let t = want;
  if (l.max_tokens) t = Math.min(t, l.max_tokens);
  if (l.context_tokens) t = Math.min(t, Math.floor(l.context_tokens / 3));
  return Math.max(64, t);
}

/** Splits `text` into parts of at most `size` characters, at paragraph (then sentence) boundaries. */
export function splitText(text, size) {
  const paras = text.replace(/\r\n/g, '\n').split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  const pieces = [];
  for (const p of paras) {
    if (p.length <= size) { pieces.push(p); continue; }
    // A paragraph too long by itself: by sentences, then by hard cuts.
    let cur = '';
    for (const s of p.split(/(?<=[.!?;:])\s+/)) {
      if (s.length > size) {
        if (cur) { pieces.push(cur); cur = ''; }
        for (let i = 0; i < s.length; i += size) pieces.push(s.slice(i, i + size));
      } else if ((cur ? cur.length + 1 : 0) + s.length > size) {
        pieces.push(cur); cur = s;
      } else {
        cur = cur ? `${cur} ${s}` : s;
      }
    }
    if (cur) pieces.push(cur);
  }
  const chunks = [];
  let cur = '';
  for (const p of pieces) {
    if (cur && cur.length + 2 + p.length > size) { chunks.push(cur); cur = p; } else cur = cur ? `${cur}\n\n${p}` : p;
  }
  if (cur) chunks.push(cur);
  return chunks;
}

export { newId };
