// "Mes données": what the box holds about the user, its export and the erasure of the history.
import { h, messageZones, downloadBlob, append, field } from '../dom.js';
import { api, fetchFile, ApiError } from '../api.js';
import { limits, userName, canUseModel } from '../state.js';
import { confirmDialog } from '../dialog.js';

export function myDataView(main) {
  const l = limits();
  const zones = messageZones();
  const exportBtn = h('button', { type: 'button', class: 'bouton bouton-principal' }, 'Télécharger mes données (JSON)');
  exportBtn.addEventListener('click', async () => {
    zones.clearAll();
    zones.info('Préparation de l\'export…');
    try {
      const { blob, filename } = await fetchFile('GET', '/v1/me/export', undefined, `civia-donnees-${userName()}.json`);
      downloadBlob(blob, filename);
      zones.info(`Vos données ont été téléchargées (« ${filename} »).`);
    } catch (e) {
      zones.info('');
      zones.error(e instanceof ApiError ? e.french : 'L\'export a échoué.');
    }
  });
  const eraseBtn = h('button', { type: 'button', class: 'bouton bouton-danger' }, 'Effacer tout mon historique');
  eraseBtn.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Effacer tout votre historique ?',
      message: 'Toutes vos conversations conservées seront effacées définitivement. Cette action est irréversible.',
      confirm: 'Tout effacer',
    });
    if (!ok) return;
    zones.clearAll();
    try {
      const r = await api('DELETE', '/v1/conversations');
      zones.info(`Votre historique a été effacé (${r.deleted} conversation(s)).`);
    } catch (e) {
      zones.error(e instanceof ApiError ? e.french : 'L\'effacement a échoué.');
    }
  });
  // A password of one's own: the administrator gave the first one (and knows it); only
  // sessions opened with a password the agent chose reach the history.
  const current = field({ label: 'Mot de passe actuel', name: 'current-password', type: 'password', required: true, autocomplete: 'current-password' });
  const chosen = field({ label: 'Nouveau mot de passe (12 caractères au moins)', name: 'new-password', type: 'password', required: true, autocomplete: 'new-password' });
  const pwZones = messageZones();
  const pwForm = h('form', { class: 'formulaire', novalidate: true }, current.wrap, chosen.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Choisir ce mot de passe')),
    pwZones.status, pwZones.alert);
  pwForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    pwZones.clearAll();
    if (!current.input.value || !chosen.input.value) {
      pwZones.error('Saisissez votre mot de passe actuel et le nouveau.');
      return;
    }
    try {
      await api('POST', '/auth/password', { current_password: current.input.value, new_password: chosen.input.value });
      current.input.value = '';
      chosen.input.value = '';
      pwZones.info('Votre mot de passe a été changé : vous seul le connaissez, et votre historique vous est accessible.');
    } catch (e) {
      pwZones.error(e instanceof ApiError ? e.french : 'Le changement de mot de passe a échoué.');
    }
  });
  append(main, 
    h('h1', { text: 'Mes données' }),
    h('p', { class: 'introduction', text: 'Civia fonctionne entièrement sur la box de la mairie : aucune donnée n\'est envoyée à l\'extérieur.' }),
    h('h2', { text: 'Ce que la box conserve sur vous' }),
    h('ul', {},
      h('li', { text: 'votre compte : identifiant, rôle, service, date de création ;' }),
      h('li', { text: l.history_enabled === false
        ? 'aucune conversation : l\'historique est désactivé sur cette box ;'
        : `vos conversations, visibles de vous seul, effacées automatiquement après ${l.history_retention_days || 30} jours ;` }),
      h('li', { text: 'vos acceptations de la charte d\'utilisation ;' }),
      h('li', { text: 'un journal d\'audit pseudonyme (date, volume, modèle utilisé), sans le texte de vos demandes, conservé pour la conformité au règlement européen sur l\'IA.' })),
    h('p', { text: 'Les documents que vous envoyez pour une tâche (synthèse, extraction, compte rendu) servent seulement à en lire le texte : ils ne sont pas conservés. Ceux que vous ajoutez à une collection des « Documents de la commune » sont conservés sur la box, avec leur texte, jusqu\'à ce qu\'ils soient supprimés de la collection.' }),
    h('h2', { text: 'Exporter vos données' }),
    h('p', { text: 'Téléchargez tout ce que la box conserve sur vous, conversations comprises, dans un fichier JSON (droit d\'accès et à la portabilité, articles 15 et 20 du RGPD).' }),
    h('div', { class: 'actions' }, exportBtn),
    canUseModel() || l.history_enabled ? [
      h('h2', { text: 'Effacer votre historique' }),
      h('p', { text: 'Vous pouvez effacer à tout moment l\'ensemble de vos conversations (droit à l\'effacement, article 17 du RGPD). Le journal d\'audit pseudonyme est conservé pour la durée légale.' }),
      h('div', { class: 'actions' }, eraseBtn),
    ] : null,
    zones.status, zones.alert,
    h('h2', { text: 'Votre mot de passe' }),
    h('p', { text: 'Choisissez un mot de passe que vous seul connaissez : l\'administrateur ne connaît que celui qu\'il vous a remis. Votre historique n\'est accessible qu\'avec un mot de passe choisi par vous ; si l\'administrateur réinitialise votre mot de passe, votre historique est effacé.' }),
    pwForm,
    h('p', { class: 'aide', text: 'Pour toute autre demande sur vos données, adressez-vous au délégué à la protection des données (DPO) de la commune.' }),
  );
}
