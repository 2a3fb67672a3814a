// DOM helpers. Every text goes through textContent / text nodes: no HTML string is ever
// parsed (model output and server data are untrusted).

/**
 * h('p', {class: 'x', text: 'Bonjour'}, child, ...)
 * props: class, text, on: {event: fn}, dataset: {}, and any other key as an attribute
 * (true -> empty attribute, false/null/undefined -> omitted). Properties `value`,
 * `checked`, `selected`, `disabled`, `hidden` are set as DOM properties.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (['value', 'checked', 'selected', 'disabled', 'hidden', 'required', 'multiple'].includes(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

/** Appends nodes and texts; arrays are flattened, null/undefined/false skipped. */
export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let uid = 0;
/** A unique id for label/aria associations. */
export function newId(prefix = 'c') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * A labelled form field. opts: {label, name, type ('text'|'textarea'|'select'|...),
 * required, hint, options: [[value, label]], value, placeholder, autocomplete, rows, attrs}
 * Returns {wrap, input}.
 */
export function field(opts) {
  const id = newId(opts.name || 'champ');
  const hintId = opts.hint ? `${id}-aide` : null;
  const label = h('label', { for: id, class: 'etiquette' }, opts.label,
    opts.required ? h('span', { class: 'obligatoire', text: ' (obligatoire)' }) : null);
  let input;
  const common = {
    id, name: opts.name, required: !!opts.required, 'aria-describedby': hintId,
    placeholder: opts.placeholder, autocomplete: opts.autocomplete, ...(opts.attrs || {}),
  };
  if (opts.type === 'textarea') {
    input = h('textarea', { ...common, rows: opts.rows || 5 });
    if (opts.value) input.value = opts.value;
  } else if (opts.type === 'select') {
    input = h('select', common, (opts.options || []).map(([v, l]) =>
      h('option', { value: v, selected: v === opts.value }, l)));
  } else {
    input = h('input', { ...common, type: opts.type || 'text', value: opts.value ?? undefined });
  }
  const wrap = h('div', { class: 'champ' }, label,
    hintId ? h('p', { class: 'aide', id: hintId, text: opts.hint }) : null, input);
  return { wrap, input };
}

/** Formats unix seconds as a French date and time. */
export function formatDate(secs, withTime = true) {
  if (secs === null || secs === undefined) return '—';
  const d = new Date(secs * 1000);
  return withTime
    ? d.toLocaleString('fr-FR', { dateStyle: 'long', timeStyle: 'short' })
    : d.toLocaleDateString('fr-FR', { dateStyle: 'long' });
}

export function formatNumber(n) {
  return new Intl.NumberFormat('fr-FR').format(n);
}

/** Announces a message to screen readers through the page's polite live region. */
export function announce(msg) {
  const region = document.getElementById('annonce');
  if (!region) return;
  region.textContent = '';
  // A new text node after a tick is announced even when the message repeats.
  setTimeout(() => { region.textContent = msg; }, 50);
}

/** Triggers the download of a Blob under `filename`. */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, class: 'visuellement-cache' }, filename);
  append(document.body, a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A status paragraph (role=status, polite) and an alert zone (role=alert), kept empty until used. */
export function messageZones() {
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const alert = h('div', { class: 'zone-alerte', role: 'alert' });
  return {
    status, alert,
    info(msg) { status.textContent = msg; },
    error(msg) {
      clear(alert);
      if (msg) append(alert, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg));
    },
    clearAll() { status.textContent = ''; clear(alert); },
  };
}

/** Copies text to the clipboard; falls back to a hidden textarea selection. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'visuellement-cache', 'aria-hidden': 'true', tabindex: '-1' });
    ta.value = text;
    append(document.body, ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}
