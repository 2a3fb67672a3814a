// The result panel of a task: the draft as it streams, the stop button, the
// "Brouillon IA — à vérifier" marking, warnings, and the copy / export / chat actions.
import { h, clear, newId, copyText, downloadBlob, formatDate, append } from './dom.js';
import { fetchFile, ApiError } from './api.js';
import { renderMarkdown, plainText } from './markdown.js';
import { handoff } from './state.js';
import { warningFrench } from './messages.js';

export const AI_BADGE = 'Brouillon IA — à vérifier';

/**
 * The warnings of a `civia` object, as alert paragraphs: worded in French from their code
 * (and `kinds` for personal data) by messages.js; their English `message` is not shown.
 */
export function warningNodes(civia) {
  const out = [];
  for (const w of (civia && civia.warnings) || []) {
    // The sentence names what happened: the title only draws the eye (no repetition).
    const title = w.code === 'personal_data' ? 'Attention : '
      : w.code === 'system_prompt_leak' ? 'Réponse interrompue : '
        : w.code === 'history_not_saved' ? 'Historique : ' : 'Avertissement : ';
    out.push(h('p', { class: `alerte ${w.code === 'personal_data' ? 'alerte-donnees' : 'alerte-avertissement'}`, dataset: { code: w.code } },
      h('strong', { text: title }), warningFrench(w)));
  }
  return out;
}

/** The "Brouillon IA — à vérifier" badge shown on every AI output. */
export function aiBadge() {
  return h('p', { class: 'badge-ia' }, h('span', { class: 'badge-ia-icone', 'aria-hidden': 'true', text: '⚠' }), ` ${AI_BADGE}`);
}

/** The AI marking line under an output ("Texte généré par intelligence artificielle…"). */
export function aiMarking(civia, what = 'Texte généré') {
  if (!civia || !civia.model) return '';
  return `${what} par intelligence artificielle (modèle ${civia.model}) le ${formatDate(Date.now() / 1000)}.`;
}

const EXPORT_LABELS = { docx: 'DOCX (Word)', odt: 'ODT (LibreOffice)', txt: 'texte' };

/**
 * Downloads `markdown` as a DOCX, ODT or text file made by the box (`POST /v1/exports/…`),
 * which carries the AI marking. Resolves the file name; throws ApiError on a refusal.
 */
export async function exportDraft(format, title, markdown) {
  const t = (title || 'Brouillon Civia').slice(0, 200);
  const { blob, filename } = await fetchFile('POST', `/v1/exports/${format}`, { title: t, text: plainText(markdown), notice: true }, `brouillon-civia.${format}`);
  downloadBlob(blob, filename);
  return filename;
}

/**
 * The copy and download buttons of a draft. opts: {text: () => markdown, title: () => string,
 * status: the element (role=status) that tells what happened, onError(frenchMessage),
 * subject: what the buttons name, e.g. 'le compte rendu' (default: 'le texte', and the
 * download buttons say only the format)}. Returns the buttons.
 */
export function draftActions({ text, title, status, onError, subject }) {
  const copyLabel = `Copier ${subject || 'le texte'}`;
  const dlLabel = (f) => `Télécharger ${subject ? `${subject} ` : ''}en ${EXPORT_LABELS[f]}`;
  const exportAs = async (format) => {
    status.textContent = `Préparation du fichier ${EXPORT_LABELS[format]}…`;
    try {
      const filename = await exportDraft(format, title(), text());
      status.textContent = `Le fichier « ${filename} » a été téléchargé.`;
    } catch (e) {
      status.textContent = '';
      onError(e instanceof ApiError ? e.french : 'Le téléchargement a échoué.');
    }
  };
  return [
    h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
      const ok = await copyText(plainText(text()));
      status.textContent = ok ? 'Le texte a été copié dans le presse-papiers.' : 'La copie a échoué : sélectionnez le texte et copiez-le avec Ctrl+C.';
    } } }, copyLabel),
    ...['docx', 'odt', 'txt'].map((f) => h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => exportAs(f) } }, dlLabel(f))),
  ];
}

/**
 * outputPanel({exportTitle: () => string, tableCaption})
 * Returns {el, begin(), progress(msg), delta(full), finish(result, messages), fail(err), running}.
 */
export function outputPanel({ exportTitle, tableCaption = 'Valeurs extraites' }) {
  const headingId = newId('resultat');
  const heading = h('h2', { id: headingId, tabindex: '-1', text: 'Résultat' });
  const badge = aiBadge();
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const alerts = h('div', { class: 'zone-alerte', role: 'alert' });
  const text = h('div', { class: 'sortie', 'aria-labelledby': headingId });
  const meta = h('p', { class: 'meta' });
  const stop = h('button', { type: 'button', class: 'bouton bouton-arret', hidden: true }, 'Arrêter la rédaction');
  const actions = h('div', { class: 'actions actions-resultat', hidden: true });
  const actionStatus = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const el = h('section', { class: 'resultat', 'aria-labelledby': headingId, hidden: true },
    heading, badge, status, alerts, stop, text, meta, actions, actionStatus);

  let controller = null;
  let raw = '';
  let civia = null;
  let messages = null;
  let conversationId = null;
  let frame = 0;

  const panel = { el, running: false };

  stop.addEventListener('click', () => { if (controller) controller.abort(); });

  function renderFinal() {
    clear(text);
    text.classList.remove('sortie-flux');
    append(text, renderMarkdown(raw, { headingBase: 3, tableCaption }));
  }

  function buildActions() {
    clear(actions);
    append(actions,
      draftActions({
        text: () => raw,
        title: exportTitle,
        status: actionStatus,
        onError: (msg) => {
          clear(alerts);
          append(alerts, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg));
        },
      }),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => {
        handoff.chat = {
          messages: [...(messages || []), { role: 'assistant', content: raw }],
          conversationId,
          title: exportTitle(),
        };
        location.hash = conversationId ? `#/discussion/${conversationId}` : '#/discussion';
      } } }, 'Continuer dans la discussion'),
    );
  }

  panel.begin = () => {
    if (controller) controller.abort();
    controller = new AbortController();
    raw = ''; civia = null; messages = null; conversationId = null;
    clear(text); clear(alerts); meta.textContent = ''; actionStatus.textContent = '';
    text.classList.add('sortie-flux');
    actions.hidden = true;
    el.hidden = false;
    stop.hidden = false;
    text.setAttribute('aria-busy', 'true');
    status.textContent = 'Rédaction en cours…';
    panel.running = true;
    stop.focus();
    return controller;
  };

  panel.progress = (msg) => { status.textContent = msg; };

  panel.delta = (full) => {
    raw = full;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      text.textContent = raw;
    });
  };

  panel.warn = (node) => { append(alerts, node); };

  /** result: from streamChat; msgs: the request's messages (for the chat). */
  panel.finish = (result, msgs) => {
    panel.running = false;
    if (frame) { cancelAnimationFrame(frame); frame = 0; }
    raw = result.text;
    civia = result.civia;
    messages = msgs;
    conversationId = result.conversationId;
    stop.hidden = true;
    text.removeAttribute('aria-busy');
    renderFinal();
    for (const n of warningNodes(civia)) append(alerts, n);
    if (result.aborted) status.textContent = 'Rédaction arrêtée. Le texte déjà rédigé reste affiché.';
    else if (result.finishReason === 'content_filter') status.textContent = 'La réponse a été interrompue par le filtre de sécurité de la box.';
    else if (result.finishReason === 'length') status.textContent = 'Rédaction terminée (longueur maximale atteinte : le texte peut être incomplet). Relisez et vérifiez le brouillon.';
    else status.textContent = 'Rédaction terminée. Relisez et vérifiez le brouillon avant de l\'utiliser.';
    meta.textContent = aiMarking(civia);
    if (raw.trim()) { buildActions(); actions.hidden = false; }
    const active = document.activeElement;
    if (!active || active === document.body || active === stop || el.contains(active)) heading.focus();
  };

  panel.fail = (err) => {
    panel.running = false;
    stop.hidden = true;
    text.removeAttribute('aria-busy');
    if (raw) renderFinal();
    status.textContent = '';
    clear(alerts);
    append(alerts, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }),
      err instanceof ApiError ? err.french : 'La rédaction a échoué. Veuillez réessayer.'));
    const active = document.activeElement;
    if (!active || active === document.body || active === stop) heading.focus();
  };

  panel.abort = () => { if (controller) controller.abort(); };
  panel.text = () => raw;
  return panel;
}
