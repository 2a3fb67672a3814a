// The login page.
import { h, field, messageZones, append } from '../dom.js';
import { api, setCsrf, ApiError, frenchDelay } from '../api.js';

export function loginView(main, ctx) {
  const zones = messageZones();
  const user = field({ label: 'Identifiant', name: 'username', required: true, autocomplete: 'username', attrs: { autocapitalize: 'none', spellcheck: 'false' } });
  const pass = field({ label: 'Mot de passe', name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
  const submit = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, 'Se connecter');
  const form = h('form', { class: 'formulaire carte-connexion', novalidate: true },
    user.wrap, pass.wrap, zones.alert, zones.status, h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll();
    const username = user.input.value.trim();
    const password = pass.input.value;
    if (!username || !password) {
      zones.error('Veuillez saisir votre identifiant et votre mot de passe.');
      (username ? pass.input : user.input).focus();
      return;
    }
    submit.disabled = true;
    zones.info('Connexion en cours…');
    try {
      const s = await api('POST', '/auth/login', { username, password }, { login: true });
      setCsrf(s.csrf_token);
      zones.info('Connexion réussie.');
      await ctx.onLogin();
    } catch (e) {
      submit.disabled = false;
      zones.info('');
      if (e instanceof ApiError && e.status === 429) {
        const wait = e.retryAfter ? ` Vous pourrez réessayer dans ${frenchDelay(e.retryAfter)}.` : ' Réessayez plus tard.';
        zones.error((e.code === 'address_blocked'
          ? 'Trop de tentatives de connexion depuis ce poste : les connexions sont temporairement bloquées.'
          : 'Trop de tentatives de connexion : ce compte est temporairement bloqué.') + wait);
      } else {
        zones.error(e instanceof ApiError ? e.french : 'La connexion a échoué.');
      }
      pass.input.value = '';
      pass.input.focus();
    }
  });

  append(main, 
    h('h1', { text: 'Connexion à Civia' }),
    ctx.notice ? h('p', { class: 'alerte alerte-info', role: 'status', text: ctx.notice }) : null,
    h('p', { class: 'introduction', text: 'Connectez-vous avec l\'identifiant et le mot de passe que vous a remis l\'administrateur de la mairie.' }),
    form,
    h('p', { class: 'aide', text: 'Mot de passe oublié ? Adressez-vous à l\'administrateur de la box : il peut vous en générer un nouveau.' }),
  );
  if (ctx.notice || !document.activeElement || document.activeElement === document.body) user.input.focus();
}
