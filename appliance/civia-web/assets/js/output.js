// The result panel of a task: the draft as it streams, the stop button, the
// "Brouillon IA — à vérifier" marking, warnings, and the copy / export / chat actions.
import { h, clear, newId, copyText, downloadBlob, formatDate, append } from './dom.js';
import { fetchFile, ApiError } from './api.js';
import { renderMarkdown, plainText } from './markdown.js';
import { handoff } from './state.js';

export const AI_BADGE = 'Brouillon IA — à vérifier';

/** The warnings of a `civia` object, as alert paragraphs. */
export function warningNodes(civia) {
  const out = [];
  for (const w of (civia && civia.warnings) || []) {
    const title = w.code === 'personal_data' ? 'Données personnelles détectées : '
      : w.code === 'system_prompt_leak' ? 'Réponse interrompue : '
        : w.code === 'history_not_saved' ? 'Historique : ' : 'Avertissement : ';
    out.push(h('p', { class: `alerte ${w.code === 'personal_data' ? 'alerte-donnees' : 'alerte-avertissement'}`, dataset: { code: w.code } },
      h('strong', { text: title }), w.message || ''));
  }
  return out;
}

/**
 * outputPanel({exportTitle: () => string, tableCaption})
 * Returns {el, begin(), progress(msg), delta(full), finish(result, messages), fail(err), running}.
 */
export function outputPanel({ exportTitle, tableCaption = 'Valeurs extraites' }) {
  const headingId = newId('resultat');
  const heading = h('h2', { id: headingId, tabindex: '-1', text: 'Résultat' });
  const badge = h('p', { class: 'badge-ia' }, h('span', { class: 'badge-ia-icone', 'aria-hidden': 'true', text: '⚠' }), ` ${AI_BADGE}`);
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

  async function exportAs(format) {
    const labels = { docx: 'DOCX (Word)', odt: 'ODT (LibreOffice)', txt: 'texte' };
    actionStatus.textContent = `Préparation du fichier ${labels[format]}…`;
    try {
      const title = (exportTitle() || 'Brouillon Civia').slice(0, 200);
      const { blob, filename } = await fetchFile('POST', `/v1/exports/${format}`, { title, text: plainText(raw), notice: true }, `brouillon-civia.${format}`);
      downloadBlob(blob, filename);
      actionStatus.textContent = `Le fichier « ${filename} » a été téléchargé.`;
    } catch (e) {
      actionStatus.textContent = '';
      clear(alerts);
      append(alerts, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }),
        e instanceof ApiError ? e.french : 'Le téléchargement a échoué.'));
    }
  }

  function buildActions() {
    clear(actions);
    append(actions, 
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
        const ok = await copyText(plainText(raw));
        actionStatus.textContent = ok ? 'Le texte a été copié dans le presse-papiers.' : 'La copie a échoué : sélectionnez le texte et copiez-le avec Ctrl+C.';
      } } }, 'Copier le texte'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => exportAs('docx') } }, 'Télécharger en DOCX (Word)'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => exportAs('odt') } }, 'Télécharger en ODT (LibreOffice)'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => exportAs('txt') } }, 'Télécharger en texte'),
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
    if (civia && civia.model) {
      meta.textContent = `Texte généré par intelligence artificielle (modèle ${civia.model}) le ${formatDate(Date.now() / 1000)}.`;
    }
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
