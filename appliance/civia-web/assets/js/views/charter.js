// The usage charter, to accept at first use and at each new version (AI Act art. 4).
import { h, messageZones, formatDate, append } from '../dom.js';
import { api, ApiError } from '../api.js';
import { renderMarkdown } from '../markdown.js';

export function charterView(main, ctx) {
  const c = ctx.charter;
  const zones = messageZones();
  const checkId = 'charte-lue';
  const check = h('input', { type: 'checkbox', id: checkId, name: 'lue', required: true });
  const submit = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, 'Accepter la charte et continuer');
  const form = h('form', { class: 'formulaire', novalidate: true },
    h('div', { class: 'champ champ-case' }, check,
      h('label', { for: checkId, text: 'J\'ai lu la charte d\'utilisation et je m\'engage à la respecter.' })),
    zones.alert, zones.status,
    h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll();
    if (!check.checked) {
      zones.error('Veuillez cocher la case pour confirmer que vous avez lu la charte.');
      check.focus();
      return;
    }
    submit.disabled = true;
    zones.info('Enregistrement de votre acceptation…');
    try {
      await api('POST', '/v1/charter/accept', { version: c.version });
      await ctx.onAccepted();
    } catch (e) {
      submit.disabled = false;
      if (e instanceof ApiError && e.code === 'charter_changed') {
        zones.error('La charte vient d\'être modifiée : la nouvelle version s\'affiche, veuillez la lire.');
        setTimeout(() => ctx.onAccepted(), 1500);
        return;
      }
      zones.error(e instanceof ApiError ? e.french : 'L\'enregistrement a échoué.');
    }
  });

  const text = h('div', { class: 'charte-texte' });
  append(text, renderMarkdown(c.text, { headingBase: 2 }));
  append(main, 
    h('h1', { text: 'Charte d\'utilisation de l\'IA' }),
    h('p', { class: 'introduction' },
      `Avant d'utiliser Civia, veuillez lire et accepter la charte d'utilisation de la mairie (version ${c.version}, publiée le ${formatDate(c.created_at, false)}).`),
    h('section', { class: 'charte', 'aria-label': 'Texte de la charte' }, text),
    form,
  );
}
