// Free chat with the model, kept in the agent's private history (when enabled).
import { h, clear, field, messageZones, formatDate, append } from '../dom.js';
import { api, streamChat, ApiError } from '../api.js';
import { limits, handoff } from '../state.js';
import { renderMarkdown } from '../markdown.js';
import { AI_BADGE, warningNodes } from '../output.js';

const CHAT_SYSTEM = 'Vous êtes l\'assistant des agents d\'une mairie française. Répondez en français clair et correct, en vouvoyant votre interlocuteur. N\'inventez pas de faits, de chiffres ni de références : si vous ne savez pas, dites-le, et utilisez [à compléter] pour les informations manquantes.';

function messageItem(role, content, { streaming = false } = {}) {
  const body = h('div', { class: 'message-texte' });
  if (streaming) body.textContent = content;
  else if (role === 'assistant') append(body, renderMarkdown(content, { headingBase: 3 }));
  else body.textContent = content;
  const who = role === 'assistant'
    ? h('p', { class: 'message-auteur' }, 'Civia ', h('span', { class: 'badge-ia badge-ia-petit', text: AI_BADGE }))
    : h('p', { class: 'message-auteur', text: 'Vous' });
  return { li: h('li', { class: `message message-${role}` }, who, body), body };
}

export async function chatView(main, ctx) {
  const l = limits();
  const id = ctx.params.id || null;
  let messages = [{ role: 'system', content: CHAT_SYSTEM }];
  let conversationId = id;
  let title = 'Discussion libre';

  const hand = handoff.chat;
  handoff.chat = null;
  if (hand && (hand.conversationId || null) === id) {
    messages = hand.messages.filter((m) => m.content);
    if (!messages.some((m) => m.role === 'system')) messages.unshift({ role: 'system', content: CHAT_SYSTEM });
    title = hand.title || title;
  } else if (id) {
    const conv = await api('GET', `/v1/conversations/${encodeURIComponent(id)}`, undefined, { signal: ctx.signal });
    title = conv.title || 'Conversation';
    messages = [{ role: 'system', content: CHAT_SYSTEM },
      ...conv.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content }))];
  }
  ctx.setTitle(id ? `Discussion : ${title}` : 'Discussion libre');

  const list = h('ol', { class: 'messages', 'aria-label': 'Échanges de la discussion' });
  const renderList = () => {
    clear(list);
    for (const m of messages) if (m.role !== 'system') append(list, messageItem(m.role, m.content).li);
  };
  renderList();

  const zones = messageZones();
  const msg = field({ label: 'Votre message', name: 'message', type: 'textarea', rows: 4, required: true, hint: 'Ctrl + Entrée pour envoyer.' });
  const send = h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Envoyer');
  const stop = h('button', { type: 'button', class: 'bouton bouton-arret', hidden: true }, 'Arrêter la réponse');
  const form = h('form', { class: 'formulaire', novalidate: true }, msg.wrap, zones.alert, zones.status,
    h('div', { class: 'actions' }, send, stop));
  let controller = null;
  ctx.signal.addEventListener('abort', () => { if (controller) controller.abort(); });
  stop.addEventListener('click', () => { if (controller) controller.abort(); });
  msg.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (controller) return;
    zones.clearAll();
    const text = msg.input.value.trim();
    if (!text) {
      msg.input.setAttribute('aria-invalid', 'true');
      zones.error('Veuillez écrire un message.');
      msg.input.focus();
      return;
    }
    msg.input.removeAttribute('aria-invalid');
    const sent = [...messages, { role: 'user', content: text }];
    append(list, messageItem('user', text).li);
    const answer = messageItem('assistant', '', { streaming: true });
    answer.body.setAttribute('aria-busy', 'true');
    append(list, answer.li);
    msg.input.value = '';
    controller = new AbortController();
    stop.hidden = false;
    zones.info('Civia rédige sa réponse…');
    let civiaOpt;
    if (l.history_enabled !== false) {
      civiaOpt = conversationId ? { conversation_id: conversationId } : { save: true, title: text.slice(0, 80) };
    }
    try {
      const r = await streamChat({
        model: l.model, messages: sent, maxTokens: Math.min(l.max_tokens || 1024, 1024), temperature: 0.5,
        signal: controller.signal, civia: civiaOpt,
        onDelta: (_d, full) => { answer.body.textContent = full; },
      });
      answer.body.removeAttribute('aria-busy');
      clear(answer.body);
      append(answer.body, renderMarkdown(r.text, { headingBase: 3 }));
      for (const n of warningNodes(r.civia)) append(zones.alert, n);
      messages = [...sent, { role: 'assistant', content: r.text }];
      if (r.conversationId && !conversationId) {
        conversationId = r.conversationId;
        history.replaceState(null, '', `#/discussion/${conversationId}`);
      }
      zones.info(r.aborted ? 'Réponse arrêtée.' : 'Réponse terminée. Vérifiez-la avant de l\'utiliser.');
    } catch (e) {
      answer.li.remove();
      messages = sent;
      zones.info('');
      zones.error(e instanceof ApiError ? e.french : 'La réponse a échoué.');
    } finally {
      controller = null;
      stop.hidden = true;
      if (!main.contains(document.activeElement) || document.activeElement === stop) msg.input.focus();
    }
  });

  const retention = l.history_enabled === false
    ? 'L\'historique est désactivé sur cette box : cette discussion ne sera pas conservée.'
    : `Cette discussion est conservée ${l.history_retention_days || 30} jours dans votre historique, visible de vous seul.`;
  append(main, 
    h('h1', { text: id ? title : 'Discussion libre' }),
    h('p', { class: 'introduction' }, retention, ' ', h('a', { href: '#/historique' }, 'Voir l\'historique'),
      id ? [' · ', h('a', { href: '#/discussion' }, 'Nouvelle discussion')] : null),
    h('p', { class: 'badge-ia', text: `Les réponses de Civia sont des brouillons générés par IA : ${AI_BADGE.toLowerCase()}.` }),
    list,
    form,
  );
}

export { formatDate };
