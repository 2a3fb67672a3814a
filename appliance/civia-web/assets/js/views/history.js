// The agent's own conversations (private), with their retention, and erasure.
import { h, clear, formatDate, messageZones, append } from '../dom.js';
import { api, ApiError } from '../api.js';
import { confirmDialog } from '../dialog.js';

export async function historyView(main, ctx) {
  const zones = messageZones();
  append(main, h('h1', { text: 'Historique de vos conversations' }));
  const body = h('div');
  append(main, zones.status, zones.alert, body);

  async function load() {
    const list = await api('GET', '/v1/conversations', undefined, { signal: ctx.signal });
    clear(body);
    if (!list.enabled) {
      append(body, h('p', { class: 'alerte alerte-info', text: 'L\'historique des conversations est désactivé sur cette box : vos échanges ne sont pas conservés.' }));
      return;
    }
    append(body, h('p', { class: 'introduction', text: `Vos conversations ne sont visibles que par vous (pas même par l'administrateur). Chaque message est conservé ${list.retention_days} jours, puis effacé automatiquement.` }));
    if (!list.data.length) {
      append(body, h('p', { class: 'vide', text: 'Aucune conversation conservée pour le moment.' }),
        h('p', {}, h('a', { href: '#/taches', class: 'bouton bouton-secondaire' }, 'Choisir une tâche')));
      return;
    }
    const rows = list.data.map((c) => {
      const del = h('button', { type: 'button', class: 'bouton bouton-discret bouton-petit' }, 'Supprimer',
        h('span', { class: 'visuellement-cache', text: ` la conversation « ${c.title} »` }));
      del.addEventListener('click', async () => {
        const ok = await confirmDialog({
          title: 'Supprimer cette conversation ?',
          message: `La conversation « ${c.title} » sera effacée définitivement.`,
          confirm: 'Supprimer',
        });
        if (!ok) return;
        try {
          await api('DELETE', `/v1/conversations/${encodeURIComponent(c.id)}`);
          await load();
          zones.info('La conversation a été supprimée.');
          main.querySelector('h1').focus();
        } catch (e) {
          zones.error(e instanceof ApiError ? e.french : 'La suppression a échoué.');
        }
      });
      return h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: `#/discussion/${encodeURIComponent(c.id)}` }, c.title || 'Sans titre')),
        h('td', { text: formatDate(c.updated_at) }),
        h('td', { text: String(c.messages) }),
        h('td', { text: formatDate(c.expires_at, false) }),
        h('td', {}, del));
    });
    const eraseAll = h('button', { type: 'button', class: 'bouton bouton-danger' }, 'Effacer tout mon historique');
    eraseAll.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Effacer tout votre historique ?',
        message: `Vos ${list.data.length} conversation(s) seront effacées définitivement. Cette action est irréversible.`,
        confirm: 'Tout effacer',
      });
      if (!ok) return;
      try {
        const r = await api('DELETE', '/v1/conversations');
        await load();
        zones.info(`${r.deleted} conversation(s) effacée(s).`);
        main.querySelector('h1').focus();
      } catch (e) {
        zones.error(e instanceof ApiError ? e.french : 'L\'effacement a échoué.');
      }
    });
    append(body, 
      h('div', { class: 'tableau-defilant' }, h('table', { class: 'tableau' },
        h('caption', { text: `Vos conversations (${list.data.length}), de la plus récente à la plus ancienne` }),
        h('thead', {}, h('tr', {},
          ['Titre', 'Dernier message', 'Messages', 'Effacée le', 'Action'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))),
      h('div', { class: 'actions' }, eraseAll),
    );
  }
  await load();
}
