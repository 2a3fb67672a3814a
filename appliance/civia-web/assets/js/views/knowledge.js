// The commune's documents (issue 20): questions answered from the collections with their
// sources (`POST /v1/chat/completions` with `search: true`, or `POST /v1/search` alone), the
// collections grouped by visibility, and the manager of one collection (upload with
// progress and indexing status, deletion, renaming). Every document text is inserted as
// text (dom.js), never as HTML.
import { h, clear, append, field, newId, messageZones, formatDate, formatNumber, announce } from '../dom.js';
import { api, streamChat, uploadForm, ApiError } from '../api.js';
import { limits, role, session, userName } from '../state.js';
import { confirmDialog } from '../dialog.js';
import { renderMarkdown } from '../markdown.js';
import { aiBadge, aiMarking, warningNodes } from '../output.js';
import { answerTokens, formatBytes } from '../documents.js';
import { documentFailureFrench } from '../messages.js';

export const NO_SOURCE = 'Aucun passage des documents ne correspond à la question.';
const VISIBILITIES = [
  ['private', 'Mes collections', 'Privée : visible de vous seul'],
  ['service', 'Mon service', 'Service : visible des agents de votre service'],
  ['public', 'Toute la commune', 'Toute la commune : visible de tous les agents'],
];
const VISIBILITY_LABEL = {
  private: 'privée (vous seul)',
  service: 'votre service',
  public: 'toute la commune',
};
const STATUS_LABEL = { queued: 'En attente', indexing: 'Indexation…', indexed: 'Indexé', failed: 'Échec' };
const FINAL = new Set(['indexed', 'failed']);
// What the box reads (civia-documents): text formats, office files, scans.
export const KNOWLEDGE_ACCEPT = '.pdf,.docx,.odt,.txt,.md,.markdown,.html,.htm,.png,.jpg,.jpeg,.tif,.tiff';
const KNOWLEDGE_EXTENSIONS = KNOWLEDGE_ACCEPT.split(',').map((e) => e.slice(1));
const FORMATS = 'PDF (scans compris), DOCX, ODT, TXT, Markdown, HTML, images PNG, JPEG ou TIFF';
const QUESTION_SYSTEM = 'Vous êtes l\'assistant des agents d\'une mairie française. Répondez en français clair et correct, en vouvoyant votre interlocuteur, uniquement à partir des extraits fournis.';
const SEARCH_K = 5;
const POLL_MS = 1000;

/**
 * The message of a refusal from the knowledge routes: worded in French from its code and
 * details (their 403 and their checks of names and files carry a `details.reason`, see
 * messages.js); `fallback` for what is not an ApiError.
 */
export function knowledgeMessage(e, fallback) {
  return e instanceof ApiError ? e.french : fallback;
}

const plural = (n, one, many) => `${formatNumber(n)} ${n > 1 ? many : one}`;
/** A document's date (YYYY-MM-DD, a calendar day) in French. */
const documentDate = (d) => (d ? new Date(`${d}T00:00:00Z`).toLocaleDateString('fr-FR', { dateStyle: 'long', timeZone: 'UTC' }) : '—');
const documentsCount = (n) => plural(n || 0, 'document', 'documents');

/** Whether the signed-in user may change `c` (the API checks it anyway). */
function writable(c) {
  if (c.owner === userName()) return true;
  if (c.visibility === 'service') return true; // seen: the owner is of the user's service
  return c.visibility === 'public' && role() === 'admin';
}

function visibilityOptions(current) {
  return VISIBILITIES
    .filter(([v]) => v !== 'public' || role() === 'admin' || current === 'public')
    .map(([v, , label]) => [v, label]);
}

function visibilityHint() {
  const service = session.me && session.me.user && session.me.user.service;
  const mine = service
    ? `« Service » : les agents du service ${service} la voient et peuvent y ajouter des documents.`
    : '« Service » : vous n\'êtes rattaché à aucun service, vous serez seul à la voir.';
  const pub = role() === 'admin'
    ? ' « Toute la commune » : tous les agents la consultent ; seuls les administrateurs la modifient.'
    : ' Seul un administrateur peut publier une collection pour toute la commune.';
  return `« Privée » : vous seul la voyez. ${mine}${pub}`;
}

/**
 * Why a document failed, in French: worded from its `error_details` (messages.js); a row from
 * before them has only `error`, shown as it is.
 */
export function failureText(d) {
  return documentFailureFrench(d.error_details) || d.error || '';
}

/** Status text of a document: "Indexé", "Échec : <raison>"… */
export function statusText(d) {
  if (d.status === 'failed') return `Échec : ${failureText(d) || 'raison inconnue'}`;
  return STATUS_LABEL[d.status] || d.status;
}

function pagesText(d) {
  return d.pages ? plural(d.pages, 'page', 'pages') : '—';
}

function alertNode(msg) {
  return h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg);
}

function unavailable(main, e) {
  append(main, h('p', { class: 'alerte alerte-info', role: 'status' }, e.french));
}

async function loadCollections(signal) {
  const r = await api('GET', '/v1/collections', undefined, { signal });
  return r.data || [];
}

// ---- sources -----------------------------------------------------------------------------

/**
 * The numbered list of the passages found ([1], [2]… as the answer cites them): document
 * name, page when known, section heading, and the excerpt behind a button (collapsed).
 * Returns {el, open(n)}.
 */
export function sourcesList(results, { label }) {
  const items = [];
  const list = h('ol', { class: 'sources', 'aria-label': label });
  results.forEach((r, i) => {
    const n = i + 1;
    const chunk = r.chunk || {};
    const meta = chunk.metadata || {};
    const titleId = newId('source');
    const excerptId = newId('extrait');
    const name = meta.document_name || 'Document';
    const title = h('p', { class: 'source-titre', id: titleId, tabindex: '-1' },
      h('span', { class: 'source-numero', text: `[${n}]` }), ' ',
      h('strong', { class: 'source-document', text: name }),
      meta.page ? h('span', { class: 'source-page', text: `, page ${meta.page}` }) : null,
      meta.heading ? h('span', { class: 'source-section', text: ` — ${meta.heading}` }) : null);
    const excerpt = h('div', { class: 'extrait', id: excerptId, hidden: true, text: chunk.content || '' });
    const toggle = h('button', {
      type: 'button', class: 'bouton bouton-secondaire bouton-petit', 'aria-expanded': 'false', 'aria-controls': excerptId,
    }, h('span', { class: 'libelle', text: 'Afficher l\'extrait' }), h('span', { class: 'visuellement-cache', text: ` [${n}] de « ${name} »` }));
    const setOpen = (open) => {
      excerpt.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
      toggle.querySelector('.libelle').textContent = open ? 'Masquer l\'extrait' : 'Afficher l\'extrait';
    };
    toggle.addEventListener('click', () => setOpen(excerpt.hidden));
    const li = h('li', { class: 'source', dataset: { source: String(n), document: String(meta.document_id ?? '') } },
      title, toggle, excerpt);
    items.push({ li, title, setOpen, name, page: meta.page });
    append(list, li);
  });
  return {
    el: list,
    items,
    open(n) {
      const it = items[n - 1];
      if (!it) return;
      it.setOpen(true);
      it.title.focus();
      it.li.scrollIntoView({ block: 'nearest' });
    },
  };
}

/** Turns the "[n]" of the rendered answer into buttons that open source n. */
function linkCitations(root, sources) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) if (/\[\d+\]/.test(n.nodeValue)) nodes.push(n);
  for (const node of nodes) {
    const frag = document.createDocumentFragment();
    let last = 0;
    const text = node.nodeValue;
    for (const m of text.matchAll(/\[(\d+)\]/g)) {
      const n = Number(m[1]);
      const it = sources.items[n - 1];
      if (!it) continue;
      if (m.index > last) frag.append(text.slice(last, m.index));
      const where = it.page ? `${it.name}, page ${it.page}` : it.name;
      frag.append(h('button', { type: 'button', class: 'citation', on: { click: () => sources.open(n) } },
        `[${n}]`, h('span', { class: 'visuellement-cache', text: ` (source : ${where})` })));
      last = m.index + m[0].length;
    }
    if (!last) continue;
    if (last < text.length) frag.append(text.slice(last));
    node.replaceWith(frag);
  }
}

// ---- the page: question, collections, creation -------------------------------------------

function collectionGroups(collections) {
  return VISIBILITIES.map(([v, title]) => ({ v, title, items: collections.filter((c) => c.visibility === v) }));
}

function collectionsSection(collections) {
  const headingId = newId('collections');
  const groups = collectionGroups(collections).map((g) => {
    const id = newId('groupe');
    return h('section', { class: 'groupe-collections', 'aria-labelledby': id, dataset: { visibilite: g.v } },
      h('h3', { id, text: `${g.title} (${formatNumber(g.items.length)})` }),
      g.items.length
        ? h('ul', { class: 'liste-collections' }, g.items.map((c) => h('li', { class: 'collection', dataset: { collection: String(c.id) } },
          h('p', { class: 'collection-nom' },
            h('a', { href: `#/documents/collections/${c.id}` }, c.name),
            h('span', { class: 'collection-compte', text: ` — ${documentsCount(c.documents)}` })),
          c.description ? h('p', { class: 'aide', text: c.description }) : null,
          c.owner && c.owner !== userName() ? h('p', { class: 'aide', text: `Créée par ${c.owner}.` }) : null)))
        : h('p', { class: 'vide', text: 'Aucune collection.' }));
  });
  return h('section', { 'aria-labelledby': headingId },
    h('h2', { id: headingId, text: 'Collections' }),
    h('p', { text: 'Une collection rassemble des documents de même nature (délibérations, arrêtés, règlements…). Ouvrez-en une pour y ajouter des documents, suivre leur indexation ou la modifier.' }),
    groups);
}

function createForm(onCreated) {
  const zones = messageZones();
  const name = field({ label: 'Nom de la collection', name: 'nom', required: true, autocomplete: 'off', hint: '128 caractères au plus. Ex. : Délibérations du conseil municipal.', attrs: { maxlength: '128' } });
  const description = field({ label: 'Description', name: 'description', type: 'textarea', rows: 3, hint: 'Facultatif : ce que contient la collection.', attrs: { maxlength: '2000' } });
  const visibility = field({ label: 'Qui peut la consulter ?', name: 'visibilite', type: 'select', value: 'private', options: visibilityOptions(), hint: visibilityHint() });
  const headingId = newId('creer');
  const form = h('form', { class: 'formulaire', novalidate: true, 'aria-labelledby': headingId },
    h('h2', { id: headingId, text: 'Créer une collection' }),
    name.wrap, description.wrap, visibility.wrap, zones.alert, zones.status,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Créer la collection')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll();
    const n = name.input.value.trim();
    if (!n) {
      name.input.setAttribute('aria-invalid', 'true');
      zones.error('Veuillez donner un nom à la collection.');
      name.input.focus();
      return;
    }
    name.input.removeAttribute('aria-invalid');
    const body = { name: n, visibility: visibility.input.value };
    if (description.input.value.trim()) body.description = description.input.value.trim();
    try {
      const c = await api('POST', '/v1/collections', body);
      onCreated(c);
    } catch (e) {
      zones.error(knowledgeMessage(e, 'La création de la collection a échoué.'));
      visibility.input.focus();
    }
  });
  return form;
}

/** The question form and its result panel. */
function questionSection(collections, ctx) {
  const zones = messageZones();
  const question = field({ label: 'Votre question', name: 'question', type: 'textarea', rows: 4, required: true, hint: 'Ex. : Quel est le prix du repas à la cantine scolaire ? Ctrl + Entrée pour rechercher.' });
  const boxes = [];
  const groups = collectionGroups(collections).filter((g) => g.items.length).map((g) => h('fieldset', { class: 'cases-groupe' },
    h('legend', { text: g.title }),
    g.items.map((c) => {
      const id = newId('collection');
      const input = h('input', { type: 'checkbox', id, name: 'collections', value: String(c.id), checked: true });
      boxes.push(input);
      return h('div', { class: 'champ-case' }, input, h('label', { for: id }, c.name,
        h('span', { class: 'aide-inline', text: ` (${documentsCount(c.documents)})` })));
    })));
  const choice = h('fieldset', { class: 'cases' },
    h('legend', { class: 'etiquette', text: 'Collections consultées' }),
    h('p', { class: 'aide', text: 'Toutes les collections que vous pouvez consulter sont cochées.' }),
    groups);
  // An optional period: only the documents dated within it (a délibération's own date, given
  // when it was added, else the day it was added).
  const dateFrom = field({ label: 'Du', name: 'date_debut', type: 'date' });
  const dateTo = field({ label: 'Au', name: 'date_fin', type: 'date' });
  const period = h('fieldset', { class: 'cases periode' },
    h('legend', { class: 'etiquette', text: 'Période des documents (facultatif)' }),
    h('p', { class: 'aide', text: 'Seuls les documents datés dans cette période sont consultés : la date de la délibération ou de l\'arrêté indiquée à l\'ajout, sinon le jour de l\'ajout.' }),
    dateFrom.wrap, dateTo.wrap);
  const ask = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, 'Rechercher');
  const searchOnly = h('button', { type: 'button', class: 'bouton bouton-secondaire bouton-large' }, 'Recherche seule');
  const headingId = newId('question');
  const form = h('form', { class: 'formulaire', novalidate: true, 'aria-labelledby': headingId },
    h('h2', { id: headingId, text: 'Poser une question' }),
    h('p', { class: 'aide', text: '« Rechercher » : Civia répond à partir des passages trouvés et cite ses sources. « Recherche seule » : la liste des passages, sans réponse rédigée.' }),
    question.wrap, choice, period, zones.alert, zones.status,
    h('div', { class: 'actions' }, ask, searchOnly));

  // The result: rebuilt for each question.
  const resultHeading = h('h2', { tabindex: '-1', id: newId('resultat') });
  const result = h('section', { class: 'resultat resultat-recherche', 'aria-labelledby': resultHeading.id, hidden: true });
  let controller = null;
  ctx.signal.addEventListener('abort', () => { if (controller) controller.abort(); });
  question.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });

  const read = () => {
    zones.clearAll();
    const text = question.input.value.trim();
    const chosen = boxes.filter((b) => b.checked).map((b) => Number(b.value));
    if (!text) {
      question.input.setAttribute('aria-invalid', 'true');
      zones.error('Veuillez écrire votre question.');
      question.input.focus();
      return null;
    }
    question.input.removeAttribute('aria-invalid');
    if (!chosen.length) {
      zones.error('Cochez au moins une collection à consulter.');
      boxes[0].focus();
      return null;
    }
    const dates = {};
    if (dateFrom.input.value) dates.date_from = dateFrom.input.value;
    if (dateTo.input.value) dates.date_to = dateTo.input.value;
    if (dates.date_from && dates.date_to && dates.date_from > dates.date_to) {
      dateTo.input.setAttribute('aria-invalid', 'true');
      zones.error('La fin de la période est avant son début.');
      dateTo.input.focus();
      return null;
    }
    dateTo.input.removeAttribute('aria-invalid');
    return { text, chosen, dates };
  };

  // After an answer, the focus goes to its heading unless the user went elsewhere in the page.
  const focusResult = () => {
    const active = document.activeElement;
    const page = document.getElementById('contenu');
    if (!active || active === document.body || !page.contains(active) || result.contains(active)) resultHeading.focus();
  };

  function sourcesBlock(results, title) {
    const id = newId('sources');
    const box = h('div', { class: 'bloc-sources' }, h('h3', { id, text: title }));
    if (!results.length) {
      append(box, h('p', { class: 'alerte alerte-info aucune-source', text: NO_SOURCE }));
      return { el: box, sources: sourcesList([], { label: title }) };
    }
    const sources = sourcesList(results, { label: title });
    append(box, sources.el);
    return { el: box, sources };
  }

  async function answer({ text, chosen, dates }) {
    const l = limits();
    controller = new AbortController();
    clear(result);
    resultHeading.textContent = 'Réponse';
    const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite', text: 'Recherche dans les documents…' });
    const alerts = h('div', { class: 'zone-alerte', role: 'alert' });
    const out = h('div', { class: 'sortie sortie-flux', 'aria-labelledby': resultHeading.id, 'aria-busy': 'true' });
    const meta = h('p', { class: 'meta' });
    const stop = h('button', { type: 'button', class: 'bouton bouton-arret' }, 'Arrêter la réponse');
    const sourcesZone = h('div');
    stop.addEventListener('click', () => { if (controller) controller.abort(); });
    append(result, resultHeading, aiBadge(), status, alerts, stop, out, meta, sourcesZone);
    result.hidden = false;
    let noSource = false;
    let frame = 0;
    try {
      const r = await streamChat({
        model: l.model,
        messages: [{ role: 'system', content: QUESTION_SYSTEM }, { role: 'user', content: text }],
        maxTokens: answerTokens(400), temperature: 0.2, signal: controller.signal,
        extra: { search: true, search_args: { collections: chosen, k: SEARCH_K, method: 'hybrid', ...dates } },
        onSearchResults: (results) => {
          if (!results.length) { noSource = true; controller.abort(); return; }
          status.textContent = `${plural(results.length, 'passage trouvé', 'passages trouvés')} : Civia rédige la réponse…`;
        },
        onDelta: (_d, full) => {
          if (frame) return;
          frame = requestAnimationFrame(() => { frame = 0; out.textContent = full; });
        },
      });
      if (frame) { cancelAnimationFrame(frame); frame = 0; }
      stop.remove();
      out.removeAttribute('aria-busy');
      out.classList.remove('sortie-flux');
      const results = r.searchResults || [];
      if (r.aborted && !noSource && !r.searchResults) {
        out.remove();
        status.textContent = 'Recherche arrêtée.';
        focusResult();
        return;
      }
      if (noSource || !results.length) {
        result.querySelectorAll('.badge-ia').forEach((b) => b.remove());
        out.remove();
        status.textContent = 'Recherche terminée.';
        append(sourcesZone, sourcesBlock([], 'Sources').el);
        focusResult();
        return;
      }
      clear(out);
      append(out, renderMarkdown(r.text, { headingBase: 4 }));
      const block = sourcesBlock(results, 'Sources');
      append(sourcesZone, block.el);
      linkCitations(out, block.sources);
      for (const n of warningNodes(r.civia)) append(alerts, n);
      meta.textContent = aiMarking(r.civia, 'Réponse générée');
      status.textContent = r.aborted
        ? 'Réponse arrêtée. Les sources trouvées restent affichées.'
        : `Réponse terminée (${plural(results.length, 'source', 'sources')}). Vérifiez-la dans les sources avant de l'utiliser.`;
      focusResult();
    } catch (e) {
      stop.remove();
      out.removeAttribute('aria-busy');
      status.textContent = '';
      append(alerts, alertNode(knowledgeMessage(e, 'La recherche a échoué. Veuillez réessayer.')));
      focusResult();
    } finally {
      controller = null;
    }
  }

  async function searchAlone({ text, chosen, dates }) {
    controller = new AbortController();
    clear(result);
    resultHeading.textContent = 'Passages trouvés';
    const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite', text: 'Recherche dans les documents…' });
    const alerts = h('div', { class: 'zone-alerte', role: 'alert' });
    const zone = h('div');
    append(result, resultHeading, status, alerts, zone);
    result.hidden = false;
    try {
      const r = await api('POST', '/v1/search', { prompt: text, collections: chosen, k: 10, method: 'hybrid', ...dates }, { signal: controller.signal });
      const results = r.data || [];
      status.textContent = results.length
        ? `Recherche terminée : ${plural(results.length, 'passage trouvé', 'passages trouvés')}, du plus pertinent au moins pertinent.`
        : 'Recherche terminée.';
      append(zone, sourcesBlock(results, 'Sources').el);
      focusResult();
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      status.textContent = '';
      append(alerts, alertNode(knowledgeMessage(e, 'La recherche a échoué. Veuillez réessayer.')));
      focusResult();
    } finally {
      controller = null;
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (controller) return;
    const q = read();
    if (q) answer(q);
  });
  searchOnly.addEventListener('click', () => {
    if (controller) return;
    const q = read();
    if (q) searchAlone(q);
  });
  return [form, result];
}

export async function knowledgeView(main, ctx) {
  append(main, h('h1', { text: 'Rechercher dans les documents de la commune' }),
    h('p', { class: 'introduction', text: 'Posez une question : Civia cherche la réponse dans les documents des collections que vous pouvez consulter, et cite ses sources avec leur page. Les documents restent sur la box de la mairie.' }));
  let collections;
  try {
    collections = await loadCollections(ctx.signal);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'knowledge_unavailable') { unavailable(main, e); return; }
    throw e;
  }
  if (!ctx.stillCurrent()) return;
  const withDocs = collections.filter((c) => c.documents > 0);
  if (withDocs.length) {
    append(main, questionSection(withDocs, ctx));
  } else {
    append(main, h('p', { class: 'alerte alerte-info' }, collections.length
      ? 'Vos collections ne contiennent encore aucun document : ouvrez une collection pour y ajouter des documents, puis posez votre question.'
      : 'Aucune collection ne vous est encore accessible : créez une collection et ajoutez-y des documents, puis posez votre question.'));
  }
  append(main, collectionsSection(collections), createForm((c) => {
    announce(`La collection « ${c.name} » a été créée : ajoutez-y des documents.`);
    location.hash = `#/documents/collections/${c.id}`;
  }));
}

// ---- one collection: documents, upload, renaming, deletion -------------------------------

export function checkKnowledgeFile(file) {
  const ext = (file.name.includes('.') ? file.name.split('.').pop() : '').toLowerCase();
  if (!KNOWLEDGE_EXTENSIONS.includes(ext)) {
    return `Le fichier « ${file.name} » n'est pas dans un format accepté. Formats acceptés : ${FORMATS}.`;
  }
  if (file.size === 0) return `Le fichier « ${file.name} » est vide.`;
  return null;
}

export async function collectionView(main, ctx) {
  const id = Number(ctx.params.id);
  const back = h('p', { class: 'fil-ariane' }, h('a', { href: '#/documents' }, '← Documents de la commune'));
  if (!Number.isInteger(id) || id <= 0) {
    append(main, back, h('h1', { text: 'Collection introuvable' }), h('p', { text: 'Cette adresse ne correspond à aucune collection.' }));
    return;
  }
  let c;
  try {
    c = await api('GET', `/v1/collections/${id}`, undefined, { signal: ctx.signal });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.code === 'knowledge_unavailable')) {
      ctx.setTitle('Collection introuvable');
      append(main, back, h('h1', { text: e.status === 404 ? 'Collection introuvable' : 'Documents de la commune' }),
        h('p', { class: 'alerte alerte-info', role: 'status' }, e.status === 404 ? 'Cette collection n\'existe pas ou ne vous est pas accessible.' : e.french));
      return;
    }
    throw e;
  }
  if (!ctx.stillCurrent()) return;
  ctx.setTitle(`Collection ${c.name}`);
  const canWrite = writable(c);
  const zones = messageZones();
  const h1 = h('h1', { text: `Collection « ${c.name} »` });
  const info = h('div');
  const showInfo = () => {
    clear(info);
    append(info, h('dl', { class: 'liste-definitions' },
      h('dt', { text: 'Visible par' }), h('dd', { text: VISIBILITY_LABEL[c.visibility] || c.visibility }),
      h('dt', { text: 'Créée par' }), h('dd', { text: c.owner === userName() ? `vous (${c.owner})` : (c.owner || '—') }),
      h('dt', { text: 'Créée le' }), h('dd', { text: formatDate(c.created_at) }),
      h('dt', { text: 'Description' }), h('dd', { text: c.description || '—' }),
      h('dt', { text: 'Documents' }), h('dd', { text: documentsCount(c.documents) })));
  };
  showInfo();
  append(main, back, h1, zones.status, zones.alert, info);
  if (!canWrite) {
    append(main, h('p', { class: 'alerte alerte-info', text: 'Vous pouvez consulter cette collection, pas la modifier.' }));
  }

  // Live announcements of uploads and indexing (polite, one region for the page).
  const live = h('p', { class: 'visuellement-cache', role: 'status', 'aria-live': 'polite' });
  append(main, live);
  const say = (msg) => { live.textContent = ''; setTimeout(() => { live.textContent = msg; }, 50); };

  // Documents: table, polled while some are being indexed.
  const docs = new Map();
  const rows = new Map();
  const uploads = new Map(); // document id -> upload item
  const tableZone = h('div');
  const docsHeading = h('h2', { text: 'Documents' });
  let timer = 0;
  let stopped = false;
  ctx.signal.addEventListener('abort', () => { stopped = true; clearTimeout(timer); });

  function statusCell(d) {
    return h('span', { class: `etat-document etat-${d.status}`, text: statusText(d) });
  }

  function rowOf(d) {
    const del = canWrite ? h('button', { type: 'button', class: 'bouton bouton-discret bouton-petit' }, 'Supprimer',
      h('span', { class: 'visuellement-cache', text: ` le document « ${d.name} »` })) : '—';
    if (canWrite) del.addEventListener('click', () => removeDocument(d, del));
    return h('tr', { dataset: { document: String(d.id) } },
      h('th', { scope: 'row', text: d.name }),
      h('td', { class: 'cellule-etat' }, statusCell(d)),
      h('td', { text: pagesText(d) }),
      h('td', { text: d.ocr_pages ? formatNumber(d.ocr_pages) : (d.status === 'indexed' ? '0' : '—') }),
      h('td', { text: d.bytes ? formatBytes(d.bytes) : '—' }),
      h('td', { text: documentDate(d.date) }),
      h('td', { text: formatDate(d.created_at) }),
      h('td', {}, del));
  }

  function renderTable() {
    clear(tableZone);
    rows.clear();
    const list = [...docs.values()].sort((a, b) => b.created_at - a.created_at || b.id - a.id);
    docsHeading.textContent = `Documents (${formatNumber(list.length)})`;
    if (!list.length) {
      append(tableZone, h('p', { class: 'vide', text: 'Cette collection ne contient aucun document.' }));
      return;
    }
    const body = h('tbody');
    for (const d of list) {
      const tr = rowOf(d);
      rows.set(d.id, tr);
      append(body, tr);
    }
    append(tableZone, h('div', { class: 'tableau-defilant' }, h('table', { class: 'tableau tableau-documents' },
      h('caption', { text: `Documents de la collection « ${c.name} » (${formatNumber(list.length)}), du plus récent au plus ancien` }),
      h('thead', {}, h('tr', {}, ['Nom', 'État', 'Pages', 'Pages lues par OCR', 'Taille', 'Date du document', 'Ajouté le', 'Action'].map((t) => h('th', { scope: 'col', text: t })))),
      body)));
  }

  function updateDocument(d) {
    const before = docs.get(d.id);
    docs.set(d.id, d);
    const tr = rows.get(d.id);
    if (tr) tr.replaceWith(rows.set(d.id, rowOf(d)).get(d.id));
    else renderTable();
    const up = uploads.get(d.id);
    if (up) up.show(d);
    if (before && before.status !== d.status) {
      if (d.status === 'indexing') say(`« ${d.name} » : indexation en cours.`);
      else if (d.status === 'indexed') say(`« ${d.name} » est indexé${d.pages ? ` (${plural(d.pages, 'page', 'pages')})` : ''}.`);
      else if (d.status === 'failed') say(`« ${d.name} » : échec de l'indexation. ${failureText(d)}`.trim());
    }
  }

  async function poll() {
    timer = 0;
    if (stopped) return;
    const pending = [...docs.values()].filter((d) => !FINAL.has(d.status));
    for (const d of pending) {
      if (stopped) return;
      try {
        const fresh = await api('GET', `/v1/documents/${d.id}`, undefined, { signal: ctx.signal });
        if (!stopped) updateDocument(fresh);
      } catch (e) {
        if (stopped || (e && e.name === 'AbortError')) return;
        if (e instanceof ApiError && e.status === 404) { docs.delete(d.id); renderTable(); continue; }
        // Transient (box busy): keep polling.
      }
    }
    schedule();
  }

  function schedule() {
    if (stopped || timer) return;
    if ([...docs.values()].some((d) => !FINAL.has(d.status))) timer = setTimeout(poll, POLL_MS);
  }

  async function loadDocuments() {
    const r = await api('GET', `/v1/documents?collection=${id}&limit=1000`, undefined, { signal: ctx.signal });
    docs.clear();
    for (const d of r.data || []) docs.set(d.id, d);
    renderTable();
    schedule();
  }

  async function refreshCollection() {
    try {
      c = await api('GET', `/v1/collections/${id}`, undefined, { signal: ctx.signal });
      showInfo();
    } catch { /* shown at the next action */ }
  }

  async function removeDocument(d, button) {
    const ok = await confirmDialog({
      title: 'Supprimer ce document ?',
      message: `Le document « ${d.name} » sera retiré de la collection, avec son texte et son index. Cette action est irréversible.`,
      confirm: 'Supprimer le document',
    });
    if (!ok) return;
    zones.clearAll();
    try {
      await api('DELETE', `/v1/documents/${d.id}`);
      docs.delete(d.id);
      renderTable();
      await refreshCollection();
      zones.info(`Le document « ${d.name} » a été supprimé.`);
      docsHeading.setAttribute('tabindex', '-1');
      docsHeading.focus();
    } catch (e) {
      zones.error(knowledgeMessage(e, 'La suppression du document a échoué.'));
      if (button.isConnected) button.focus();
    }
  }

  // Upload: one or several files, one after the other, each with its progress.
  let uploadSection = null;
  if (canWrite) {
    const upZones = messageZones();
    const files = field({
      label: 'Fichiers à ajouter', name: 'fichiers', type: 'file', required: true,
      hint: `${FORMATS}. Vous pouvez en choisir plusieurs. Les documents sont lus et indexés par la box, puis consultables par les personnes qui voient la collection.`,
      attrs: { accept: KNOWLEDGE_ACCEPT, multiple: true },
    });
    const folder = field({
      label: 'Ou tout un dossier', name: 'dossier', type: 'file',
      hint: 'Le dossier et ses sous-dossiers (une clé USB, des archives) : les fichiers des formats acceptés sont envoyés, les autres ignorés.',
      attrs: { webkitdirectory: true, multiple: true },
    });
    const date = field({
      label: 'Date des documents (facultatif)', name: 'date', type: 'date',
      hint: 'La date de la délibération ou de l\'arrêté, pour limiter une recherche à une période. Sans date, celle du jour.',
    });
    const send = h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Envoyer');
    const list = h('ul', { class: 'envois', 'aria-label': 'Envois et indexation' });
    const headingId = newId('ajout');
    const form = h('form', { class: 'formulaire', novalidate: true, 'aria-labelledby': headingId },
      h('h2', { id: headingId, text: 'Ajouter des documents' }),
      files.wrap, folder.wrap, date.wrap, upZones.alert, h('div', { class: 'actions' }, send));
    let sending = false;
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (sending) return;
      upZones.clearAll();
      // A folder's files of other formats, and its hidden files, are left out, not refused.
      const inFolder = [...(folder.input.files || [])];
      const kept = inFolder.filter((f) => !f.name.startsWith('.') && !checkKnowledgeFile(f));
      const skipped = inFolder.length - kept.length;
      const chosen = [...(files.input.files || []), ...kept];
      if (!chosen.length) {
        files.input.setAttribute('aria-invalid', 'true');
        upZones.error('Choisissez au moins un fichier.');
        files.input.focus();
        return;
      }
      const refusals = chosen.map(checkKnowledgeFile).filter(Boolean);
      if (refusals.length) {
        files.input.setAttribute('aria-invalid', 'true');
        upZones.error(refusals.join(' '));
        files.input.focus();
        return;
      }
      files.input.removeAttribute('aria-invalid');
      sending = true;
      send.disabled = true;
      const intro = chosen.length > 1 ? `Envoi de ${chosen.length} fichiers…` : `Envoi de « ${chosen[0].name} »…`;
      say(skipped ? `${intro} ${plural(skipped, 'fichier du dossier ignoré', 'fichiers du dossier ignorés')} (format non accepté).` : intro);
      const metadata = date.input.value ? JSON.stringify({ date: date.input.value }) : null;
      for (const file of chosen) {
        if (stopped) break;
        await uploadOne(file, list, metadata);
      }
      sending = false;
      send.disabled = false;
      form.reset();
      await refreshCollection();
    });
    uploadSection = [form, list];
  }

  function uploadItem(file, list) {
    const progressId = newId('envoi');
    const label = h('label', { for: progressId, class: 'envoi-nom' }, `« ${file.name} » (${formatBytes(file.size)})`);
    const progress = h('progress', { id: progressId, class: 'barre-avancement', max: '100', value: '0' });
    const text = h('p', { class: 'envoi-etat', text: 'Envoi : 0 %' });
    const li = h('li', { class: 'envoi' }, label, progress, text);
    append(list, li);
    return {
      sent(loaded, total) {
        const pct = total ? Math.floor((loaded / total) * 100) : 0;
        progress.value = pct;
        text.textContent = `Envoi : ${pct} %`;
      },
      show(d) {
        if (FINAL.has(d.status)) progress.value = 100;
        else progress.removeAttribute('value'); // indeterminate while the box reads it
        text.textContent = d.status === 'indexed'
          ? `Indexé${d.pages ? ` (${plural(d.pages, 'page', 'pages')}${d.ocr_pages ? `, dont ${plural(d.ocr_pages, 'lue', 'lues')} par OCR` : ''})` : ''}.`
          : statusText(d);
        li.dataset.etat = d.status;
      },
      fail(msg) {
        progress.value = 0;
        text.textContent = `Échec : ${msg}`;
        li.dataset.etat = 'failed';
      },
    };
  }

  async function uploadOne(file, list, metadata) {
    const item = uploadItem(file, list);
    const form = new FormData();
    form.append('collection', String(id));
    if (metadata) form.append('metadata', metadata);
    form.append('file', file, file.name);
    try {
      const r = await uploadForm('/v1/documents', form, { signal: ctx.signal, onProgress: (a, b) => item.sent(a, b) });
      const d = r.body;
      if (r.status === 200) {
        // The same file was already there: that document.
        item.show(d);
        say(`« ${file.name} » est déjà dans la collection (document « ${d.name} »).`);
        if (!docs.has(d.id)) { docs.set(d.id, d); renderTable(); }
        return;
      }
      uploads.set(d.id, item);
      item.show(d);
      say(`« ${file.name} » envoyé : ${statusText(d).toLowerCase()}.`);
      docs.set(d.id, d);
      renderTable();
      schedule();
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      const msg = knowledgeMessage(e, 'L\'envoi a échoué.');
      item.fail(msg);
      say(`« ${file.name} » : échec de l'envoi. ${msg}`);
    }
  }

  // Renaming and deletion of the collection.
  let manage = null;
  if (canWrite) {
    const mZones = messageZones();
    const name = field({ label: 'Nom de la collection', name: 'nom', required: true, value: c.name, autocomplete: 'off', attrs: { maxlength: '128' } });
    const description = field({ label: 'Description', name: 'description', type: 'textarea', rows: 3, value: c.description || '', hint: 'Laissez vide pour retirer la description.', attrs: { maxlength: '2000' } });
    const visibility = field({ label: 'Qui peut la consulter ?', name: 'visibilite', type: 'select', value: c.visibility, options: visibilityOptions(c.visibility), hint: visibilityHint() });
    const headingId = newId('modifier');
    const form = h('form', { class: 'formulaire', novalidate: true, 'aria-labelledby': headingId },
      h('h2', { id: headingId, text: 'Renommer ou modifier la collection' }),
      name.wrap, description.wrap, visibility.wrap, mZones.alert, mZones.status,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Enregistrer les modifications')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      mZones.clearAll();
      const n = name.input.value.trim();
      if (!n) {
        name.input.setAttribute('aria-invalid', 'true');
        mZones.error('Veuillez donner un nom à la collection.');
        name.input.focus();
        return;
      }
      name.input.removeAttribute('aria-invalid');
      const body = { name: n, description: description.input.value.trim() || null };
      if (visibility.input.value !== c.visibility) body.visibility = visibility.input.value;
      try {
        c = await api('PATCH', `/v1/collections/${id}`, body);
        showInfo();
        h1.textContent = `Collection « ${c.name} »`;
        ctx.setTitle(`Collection ${c.name}`);
        mZones.info('Modifications enregistrées.');
      } catch (e) {
        mZones.error(knowledgeMessage(e, 'La modification a échoué.'));
      }
    });
    const del = h('button', { type: 'button', class: 'bouton bouton-danger' }, 'Supprimer la collection');
    del.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Supprimer cette collection ?',
        message: `La collection « ${c.name} » et ses ${documentsCount(c.documents)} seront supprimés définitivement, avec leur texte et leur index.`,
        confirm: 'Supprimer la collection',
      });
      if (!ok) return;
      zones.clearAll();
      try {
        await api('DELETE', `/v1/collections/${id}`);
        announce(`La collection « ${c.name} » a été supprimée.`);
        location.hash = '#/documents';
      } catch (e) {
        zones.error(knowledgeMessage(e, 'La suppression de la collection a échoué.'));
        del.focus();
      }
    });
    const delId = newId('supprimer');
    manage = [form, h('section', { 'aria-labelledby': delId },
      h('h2', { id: delId, text: 'Supprimer la collection' }),
      h('p', { text: 'Tous ses documents, leur texte et leur index sont effacés de la box.' }),
      h('div', { class: 'actions' }, del))];
  }

  append(main, uploadSection, docsHeading, tableZone, manage);
  await loadDocuments();
}
