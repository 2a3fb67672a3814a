// "Mes données": what the box holds about the user, its export and the erasure of the history.
import { h, messageZones, downloadBlob, append } from '../dom.js';
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
    h('p', { text: 'Les documents que vous envoyez servent seulement à en lire le texte : ils ne sont pas conservés.' }),
    h('h2', { text: 'Exporter vos données' }),
    h('p', { text: 'Téléchargez tout ce que la box conserve sur vous, conversations comprises, dans un fichier JSON (droit d\'accès et à la portabilité, articles 15 et 20 du RGPD).' }),
    h('div', { class: 'actions' }, exportBtn),
    canUseModel() || l.history_enabled ? [
      h('h2', { text: 'Effacer votre historique' }),
      h('p', { text: 'Vous pouvez effacer à tout moment l\'ensemble de vos conversations (droit à l\'effacement, article 17 du RGPD). Le journal d\'audit pseudonyme est conservé pour la durée légale.' }),
      h('div', { class: 'actions' }, eraseBtn),
    ] : null,
    zones.status, zones.alert,
    h('p', { class: 'aide', text: 'Pour toute autre demande sur vos données, adressez-vous au délégué à la protection des données (DPO) de la commune.' }),
  );
}
