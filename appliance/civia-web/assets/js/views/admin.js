// The administration console: each role sees its own parts (admin, dpo, integrator); the API
// checks every call anyway.
import { h, clear, field, messageZones, formatDate, formatNumber, copyText, downloadBlob, append } from '../dom.js';
import { api, fetchFile, ApiError } from '../api.js';
import { role, limits, ROLE_LABELS } from '../state.js';
import { confirmDialog } from '../dialog.js';
import { renderMarkdown } from '../markdown.js';

const SECTIONS = [
  { href: '#/admin/utilisateurs', title: 'Utilisateurs et quotas', text: 'Créer les comptes des agents, changer un rôle, réinitialiser un mot de passe, régler les quotas.', roles: ['admin'] },
  { href: '#/admin/cles', title: 'Clés d\'API', text: 'Les clés des logiciels de la mairie qui utilisent le modèle.', roles: ['admin'] },
  { href: '#/admin/utilisation', title: 'Utilisation', text: 'Volumes par jour et par modèle ou par service (jamais par agent).', roles: ['admin', 'dpo'] },
  { href: '#/admin/charte', title: 'Charte d\'utilisation', text: 'Le texte de la charte et le registre des acceptations.', roles: ['admin', 'dpo'] },
  { href: '#/admin/modele', title: 'Dossier du modèle', text: 'La fiche du modèle d\'IA servi, vérifiée sur ses poids.', roles: ['admin', 'dpo', 'integrator'] },
  { href: '#/admin/audit', title: 'Journal d\'audit', text: 'Vérifier l\'intégrité du journal et l\'exporter.', roles: ['admin', 'dpo'] },
  { href: '#/admin/conformite', title: 'Documents de conformité', text: 'Registre RGPD, analyse d\'impact (AIPD), liste de contrôle du règlement sur l\'IA.', roles: ['admin', 'dpo'] },
  { href: '#/admin/sauvegardes', title: 'Sauvegardes', text: 'La clé de sauvegarde, les sauvegardes chiffrées de la box (chaque nuit ou téléchargées) et leur état.', roles: ['admin'] },
  { href: '#/admin/systeme', title: 'État du système', text: 'Modèle chargé, version, mises à jour, certificat de la box.', roles: ['admin', 'integrator'] },
];

const ROLE_OPTIONS = [['agent', 'Agent'], ['admin', 'Administrateur'], ['dpo', 'Délégué à la protection des données (DPO)'], ['integrator', 'Prestataire intégrateur']];

/** The link back to the administration home (shared with views/backup.js). */
export function back() {
  return h('p', { class: 'fil-ariane' }, h('a', { href: '#/admin' }, '← Administration'));
}

/** A table with a caption, column headers and the first cell of each row as its header. */
export function table(caption, headers, rows) {
  return h('div', { class: 'tableau-defilant' }, h('table', { class: 'tableau' },
    h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0
      ? h('th', { scope: 'row' }, c) : h('td', {}, c))))))));
}

/** A definition list from [term, value] pairs (null pairs skipped). */
export function dl(pairs) {
  return h('dl', { class: 'liste-definitions' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

const yesNo = (b) => (b ? 'oui' : 'non');
const errText = (e, fallback) => (e instanceof ApiError ? e.french : fallback);

/** A secret shown once: the value, a copy button and a warning. */
function shownOnce(label, value) {
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  return h('div', { class: 'alerte alerte-secret', role: 'alert' },
    h('p', {}, h('strong', { text: `${label} — affiché une seule fois. ` }), 'Copiez-le maintenant et transmettez-le de façon sûre : la box n\'en garde qu\'une empreinte et ne pourra plus l\'afficher.'),
    h('p', {}, h('code', { class: 'secret', text: value })),
    h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
      status.textContent = (await copyText(value)) ? 'Copié dans le presse-papiers.' : 'La copie a échoué : sélectionnez le texte et copiez-le.';
    } } }, `Copier ${label.toLowerCase()}`),
    status);
}

export function adminHome(main) {
  const r = role();
  append(main, 
    h('h1', { text: 'Administration de la box' }),
    h('p', { class: 'introduction', text: `Vous êtes connecté en tant que ${ROLE_LABELS[r] || r}. Voici les rubriques ouvertes à votre rôle.` }),
    h('ul', { class: 'grille-taches' }, SECTIONS.filter((s) => s.roles.includes(r)).map((s) => h('li', { class: 'carte-tache' },
      h('h2', {}, h('a', { href: s.href }, s.title)), h('p', { text: s.text })))),
  );
}

// ---- users -------------------------------------------------------------------------------

export async function usersView(main, ctx) {
  const zones = messageZones();
  const listZone = h('div');
  const secretZone = h('div');
  append(main, back(), h('h1', { text: 'Utilisateurs' }), zones.status, zones.alert, secretZone, listZone);

  async function load() {
    const list = await api('GET', '/admin/users', undefined, { signal: ctx.signal });
    const users = list.users || [];
    clear(listZone);
    append(listZone, table(`Comptes de la box (${users.length})`, ['Identifiant', 'Rôle', 'Service', 'Créé le', 'État', 'Action'],
      users.map((u) => [u.name, ROLE_LABELS[u.role] || u.role, u.service || '—', formatDate(u.created_at, false),
        u.disabled ? 'désactivé' : 'actif',
        h('a', { href: `#/admin/utilisateurs/${encodeURIComponent(u.name)}` }, 'Gérer', h('span', { class: 'visuellement-cache', text: ` le compte ${u.name}` }))])));
  }

  const name = field({ label: 'Identifiant', name: 'name', required: true, hint: 'Lettres sans accent, chiffres, point, tiret ou tiret bas (ex. : marie.durand).', autocomplete: 'off' });
  const roleF = field({ label: 'Rôle', name: 'role', type: 'select', value: 'agent', options: ROLE_OPTIONS });
  const service = field({ label: 'Service', name: 'service', hint: 'Facultatif (ex. : État civil). Sert aux statistiques d\'utilisation par service.' });
  const pass = field({ label: 'Mot de passe', name: 'password', type: 'password', autocomplete: 'new-password', hint: 'Facultatif : laissez vide pour que la box en génère un (affiché une seule fois). Sinon, au moins 12 caractères.' });
  const form = h('form', { class: 'formulaire', novalidate: true },
    h('h2', { text: 'Créer un compte' }), name.wrap, roleF.wrap, service.wrap, pass.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Créer le compte')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll(); clear(secretZone);
    const n = name.input.value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(n)) {
      name.input.setAttribute('aria-invalid', 'true');
      zones.error('Identifiant invalide : utilisez des lettres sans accent, des chiffres, « . », « - » ou « _ » (64 caractères au plus).');
      name.input.focus();
      return;
    }
    name.input.removeAttribute('aria-invalid');
    const body = { name: n, role: roleF.input.value };
    if (service.input.value.trim()) body.service = service.input.value.trim();
    if (pass.input.value) body.password = pass.input.value;
    try {
      const r = await api('POST', '/admin/users', body);
      zones.info(`Le compte « ${r.user.name} » a été créé.`);
      if (r.password) append(secretZone, shownOnce('Le mot de passe', r.password));
      form.reset();
      await load();
    } catch (e) {
      zones.error(errText(e, 'La création a échoué.'));
    }
  });
  append(main, form);
  await load();
}

export async function userView(main, ctx) {
  const name = ctx.params.name;
  const zones = messageZones();
  const secretZone = h('div');
  const u = await api('GET', `/admin/users/${encodeURIComponent(name)}`, undefined, { signal: ctx.signal });
  const q = await api('GET', `/admin/users/${encodeURIComponent(name)}/quota`, undefined, { signal: ctx.signal });
  ctx.setTitle(`Compte ${u.name}`);
  const info = h('div');
  const showInfo = (user) => {
    clear(info);
    append(info, dl([['Identifiant', user.name], ['Rôle', ROLE_LABELS[user.role] || user.role], ['Service', user.service || '—'],
      ['Créé le', formatDate(user.created_at)], ['État', user.disabled ? 'désactivé' : 'actif']]));
  };
  showInfo(u);

  const patch = async (body, done) => {
    zones.clearAll(); clear(secretZone);
    try {
      const r = await api('PATCH', `/admin/users/${encodeURIComponent(name)}`, body);
      showInfo(r.user);
      Object.assign(u, r.user);
      zones.info(done);
      if (r.password) append(secretZone, shownOnce('Le nouveau mot de passe', r.password));
      toggle.textContent = u.disabled ? 'Réactiver le compte' : 'Désactiver le compte';
    } catch (e) { zones.error(errText(e, 'La modification a échoué.')); }
  };

  const roleF = field({ label: 'Rôle', name: 'role', type: 'select', value: u.role, options: ROLE_OPTIONS });
  const service = field({ label: 'Service', name: 'service', value: u.service || '', hint: 'Laissez vide pour retirer le service.' });
  const form = h('form', { class: 'formulaire', novalidate: true }, h('h2', { text: 'Rôle et service' }), roleF.wrap, service.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Enregistrer')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    patch({ role: roleF.input.value, service: service.input.value.trim() || null }, 'Modifications enregistrées.');
  });

  const toggle = h('button', { type: 'button', class: 'bouton bouton-secondaire' }, u.disabled ? 'Réactiver le compte' : 'Désactiver le compte');
  toggle.addEventListener('click', () => patch({ disabled: !u.disabled }, u.disabled ? 'Compte réactivé.' : 'Compte désactivé : ses sessions sont fermées.'));
  const reset = h('button', { type: 'button', class: 'bouton bouton-secondaire' }, 'Générer un nouveau mot de passe');
  reset.addEventListener('click', async () => {
    if (await confirmDialog({ title: 'Générer un nouveau mot de passe ?', message: `L'ancien mot de passe de « ${name} » ne fonctionnera plus.`, confirm: 'Générer', danger: false })) {
      patch({ reset_password: true }, 'Nouveau mot de passe généré.');
    }
  });
  const del = h('button', { type: 'button', class: 'bouton bouton-danger' }, 'Supprimer le compte');
  del.addEventListener('click', async () => {
    if (!await confirmDialog({ title: 'Supprimer ce compte ?', message: `Le compte « ${name} », ses clés et ses sessions seront supprimés. Les statistiques restent, anonymes.`, confirm: 'Supprimer' })) return;
    try {
      await api('DELETE', `/admin/users/${encodeURIComponent(name)}`);
      location.hash = '#/admin/utilisateurs';
    } catch (e) { zones.error(errText(e, 'La suppression a échoué.')); }
  });

  const rpm = field({ label: 'Requêtes par minute', name: 'rpm', type: 'number', value: q.override.requests_per_minute ?? '', attrs: { min: '0', inputmode: 'numeric' }, hint: `Vide : valeur du rôle (actuellement ${q.effective.requests_per_minute}). 0 : illimité.` });
  const tpd = field({ label: 'Jetons par jour', name: 'tpd', type: 'number', value: q.override.tokens_per_day ?? '', attrs: { min: '0', inputmode: 'numeric' }, hint: `Vide : valeur du rôle (actuellement ${formatNumber(q.effective.tokens_per_day)}). 0 : illimité.` });
  const quotaInfo = h('p', { text: `Consommation du jour : ${formatNumber(q.tokens_today)} jetons.` });
  const qform = h('form', { class: 'formulaire', novalidate: true }, h('h2', { text: 'Quotas' }), quotaInfo, rpm.wrap, tpd.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Enregistrer les quotas')));
  qform.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll();
    const num = (s) => (s.trim() === '' ? null : Number(s));
    const body = { requests_per_minute: num(rpm.input.value), tokens_per_day: num(tpd.input.value) };
    if (Object.values(body).some((v) => v !== null && (!Number.isInteger(v) || v < 0))) {
      zones.error('Les quotas sont des nombres entiers positifs ou nuls.');
      return;
    }
    try {
      const r = await api('PUT', `/admin/users/${encodeURIComponent(name)}/quota`, body);
      zones.info(`Quotas enregistrés : ${r.effective.requests_per_minute || 'illimité'} requêtes par minute, ${r.effective.tokens_per_day ? formatNumber(r.effective.tokens_per_day) : 'illimité'} jetons par jour.`);
    } catch (e) { zones.error(errText(e, 'L\'enregistrement a échoué.')); }
  });

  append(main, 
    h('p', { class: 'fil-ariane' }, h('a', { href: '#/admin/utilisateurs' }, '← Utilisateurs')),
    h('h1', { text: `Compte « ${u.name} »` }),
    zones.status, zones.alert, secretZone, info, form,
    h('h2', { text: 'Accès' }), h('div', { class: 'actions' }, toggle, reset, del),
    qform,
  );
}

// ---- keys --------------------------------------------------------------------------------

export async function keysView(main, ctx) {
  const zones = messageZones();
  const listZone = h('div');
  const secretZone = h('div');
  const users = await api('GET', '/admin/users', undefined, { signal: ctx.signal });
  append(main, back(), h('h1', { text: 'Clés d\'API' }),
    h('p', { class: 'introduction', text: 'Les logiciels de la mairie (traitement de texte, outils métier) utilisent le modèle avec une clé d\'API personnelle, rattachée à un compte.' }),
    zones.status, zones.alert, secretZone, listZone);

  async function load() {
    const list = await api('GET', '/admin/keys', undefined, { signal: ctx.signal });
    const keys = list.keys || [];
    clear(listZone);
    if (!keys.length) { append(listZone, h('p', { class: 'vide', text: 'Aucune clé d\'API.' })); return; }
    append(listZone, table(`Clés d'API (${keys.length})`, ['Nom', 'Compte', 'Début de la clé', 'Créée le', 'Expire le', 'Dernier usage', 'État', 'Action'],
      keys.map((k) => {
        let action = '—';
        if (!k.revoked) {
          action = h('button', { type: 'button', class: 'bouton bouton-discret bouton-petit' }, 'Révoquer', h('span', { class: 'visuellement-cache', text: ` la clé ${k.name}` }));
          action.addEventListener('click', async () => {
            if (!await confirmDialog({ title: 'Révoquer cette clé ?', message: `Les logiciels qui utilisent la clé « ${k.name} » (${k.prefix}…) n'auront plus accès au modèle.`, confirm: 'Révoquer' })) return;
            try { await api('DELETE', `/admin/keys/${k.id}`); zones.info('Clé révoquée.'); await load(); } catch (e) { zones.error(errText(e, 'La révocation a échoué.')); }
          });
        }
        return [k.name, k.user, h('code', { text: `${k.prefix}…` }), formatDate(k.created_at, false),
          k.expires_at ? formatDate(k.expires_at, false) : 'jamais', k.last_used_at ? formatDate(k.last_used_at) : 'jamais',
          k.revoked ? 'révoquée' : 'active', action];
      })));
  }

  const userF = field({ label: 'Compte', name: 'user', type: 'select', options: (users.users || []).map((u) => [u.name, `${u.name} (${ROLE_LABELS[u.role] || u.role})`]) });
  const nameF = field({ label: 'Nom de la clé', name: 'keyname', placeholder: 'Ex. : Logiciel de courrier', hint: 'Facultatif : pour la reconnaître.' });
  const daysF = field({ label: 'Durée de validité (jours)', name: 'days', type: 'number', value: '365', attrs: { min: '1', max: '3649' }, hint: 'Vide : sans expiration (déconseillé).' });
  const form = h('form', { class: 'formulaire', novalidate: true }, h('h2', { text: 'Créer une clé' }), userF.wrap, nameF.wrap, daysF.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Créer la clé')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll(); clear(secretZone);
    const body = { user: userF.input.value };
    if (nameF.input.value.trim()) body.name = nameF.input.value.trim();
    if (daysF.input.value.trim()) body.expires_in_days = Number(daysF.input.value);
    try {
      const r = await api('POST', '/admin/keys', body);
      append(secretZone, shownOnce('La clé', r.key));
      zones.info(`Clé « ${r.info.name} » créée pour ${r.info.user}.`);
      await load();
    } catch (e) { zones.error(errText(e, 'La création a échoué.')); }
  });
  append(main, form);
  await load();
}

// ---- usage -------------------------------------------------------------------------------

export async function usageView(main, ctx) {
  const zones = messageZones();
  const result = h('div');
  const days = field({ label: 'Période', name: 'days', type: 'select', value: '30', options: [['7', '7 derniers jours'], ['30', '30 derniers jours'], ['90', '90 derniers jours'], ['365', '12 derniers mois']] });
  const by = field({ label: 'Regrouper par', name: 'by', type: 'select', value: 'service', options: [['service', 'Service'], ['model', 'Modèle']] });
  const form = h('form', { class: 'formulaire formulaire-ligne', novalidate: true }, days.wrap, by.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Afficher')));
  async function load() {
    zones.clearAll();
    const r = await api('GET', `/admin/usage?days=${encodeURIComponent(days.input.value)}&by=${encodeURIComponent(by.input.value)}`, undefined, { signal: ctx.signal });
    clear(result);
    const groupLabel = r.by === 'model' ? 'Modèle' : 'Service';
    const totals = {};
    for (const row of r.rows) {
      const g = row.group || '(sans service)';
      totals[g] = totals[g] || { requests: 0, prompt: 0, completion: 0 };
      totals[g].requests += row.requests; totals[g].prompt += row.prompt_tokens; totals[g].completion += row.completion_tokens;
    }
    if (!r.rows.length) { append(result, h('p', { class: 'vide', text: 'Aucune utilisation sur cette période.' })); return; }
    append(result, 
      table(`Totaux par ${groupLabel.toLowerCase()} sur la période`, [groupLabel, 'Requêtes', 'Jetons envoyés', 'Jetons générés'],
        Object.entries(totals).map(([g, t]) => [g, formatNumber(t.requests), formatNumber(t.prompt), formatNumber(t.completion)])),
      table('Détail par jour', ['Jour', groupLabel, 'Requêtes', 'Jetons envoyés', 'Jetons générés'],
        r.rows.map((row) => [new Date(`${row.day}T12:00:00Z`).toLocaleDateString('fr-FR', { dateStyle: 'long' }), row.group || '(sans service)',
          formatNumber(row.requests), formatNumber(row.prompt_tokens), formatNumber(row.completion_tokens)])),
    );
    zones.info('Statistiques mises à jour.');
  }
  form.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await load(); } catch (e) { zones.error(errText(e, 'Le chargement a échoué.')); } });
  append(main, back(), h('h1', { text: 'Utilisation de la box' }),
    h('p', { class: 'introduction', text: 'Volumes agrégés par jour et par service ou par modèle. Par principe, aucun classement ni suivi par agent n\'est proposé.' }),
    form, zones.status, zones.alert, result);
  await load();
}

// ---- charter -----------------------------------------------------------------------------

export async function charterAdminView(main, ctx) {
  const zones = messageZones();
  const c = await api('GET', '/admin/charter', undefined, { signal: ctx.signal });
  append(main, back(), h('h1', { text: 'Charte d\'utilisation' }), zones.status, zones.alert);
  append(main, h('p', { text: `Version en vigueur : ${c.version}, publiée le ${formatDate(c.created_at)}.` }));
  if (role() === 'admin') {
    const text = field({ label: 'Texte de la charte', name: 'text', type: 'textarea', rows: 16, value: c.text, required: true, hint: 'Publier une nouvelle version demande à chaque utilisateur de l\'accepter de nouveau à sa prochaine action.' });
    const form = h('form', { class: 'formulaire', novalidate: true }, h('h2', { text: 'Modifier la charte' }), text.wrap,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Publier une nouvelle version')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      zones.clearAll();
      if (!text.input.value.trim()) { zones.error('Le texte de la charte ne peut pas être vide.'); text.input.focus(); return; }
      if (!await confirmDialog({ title: 'Publier une nouvelle version ?', message: 'Tous les utilisateurs, vous compris, devront accepter la nouvelle charte avant de continuer.', confirm: 'Publier', danger: false })) return;
      try {
        const r = await api('PUT', '/admin/charter', { text: text.input.value });
        zones.info(`Version ${r.version} publiée.`);
        setTimeout(() => ctx.rerender(), 800);
      } catch (e) { zones.error(errText(e, 'La publication a échoué.')); }
    });
    append(main, form);
  } else {
    const t = h('div', { class: 'charte-texte' });
    append(t, renderMarkdown(c.text, { headingBase: 3 }));
    append(main, h('h2', { text: 'Texte en vigueur' }), t);
  }
  const reg = await api('GET', '/admin/charter/register', undefined, { signal: ctx.signal });
  const csv = h('button', { type: 'button', class: 'bouton bouton-secondaire' }, 'Télécharger le registre (CSV)');
  csv.addEventListener('click', async () => {
    try { const f = await fetchFile('GET', '/admin/charter/register?format=csv', undefined, 'registre-charte.csv'); downloadBlob(f.blob, f.filename); zones.info('Registre téléchargé.'); } catch (e) { zones.error(errText(e, 'Le téléchargement a échoué.')); }
  });
  append(main, h('h2', { text: 'Registre des acceptations' }),
    h('p', { text: `${reg.accepted_current} utilisateur(s) actif(s) sur ${reg.active_users} ont accepté la version ${reg.current_version}.` }),
    reg.data.length ? table('Acceptations de la charte', ['Utilisateur', 'Rôle', 'Service', 'Version', 'Acceptée le', 'Canal'],
      reg.data.map((e) => [e.user, ROLE_LABELS[e.role] || e.role, e.service || '—', String(e.version), formatDate(e.accepted_at),
        { web: 'application web', api: 'API', cli: 'console locale', trial: 'essai' }[e.channel] || e.channel]))
      : h('p', { class: 'vide', text: 'Aucune acceptation enregistrée.' }),
    h('div', { class: 'actions' }, csv));
}

// ---- model dossier -----------------------------------------------------------------------

function valueNode(v) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.length ? h('ul', {}, v.map((x) => h('li', {}, valueNode(x)))) : '—';
  if (typeof v === 'object') return dl(Object.entries(v).map(([k, x]) => [k, valueNode(x)]));
  if (typeof v === 'boolean') return yesNo(v);
  return String(v);
}

export async function dossierView(main, ctx) {
  const model = limits().model;
  append(main, back(), h('h1', { text: 'Dossier du modèle' }));
  let d;
  try {
    d = await api('GET', `/v1/models/${encodeURIComponent(model)}/dossier`, undefined, { signal: ctx.signal });
  } catch (e) {
    if (e instanceof ApiError && e.status !== 403 && e.status !== 401) {
      append(main, h('p', { class: 'alerte alerte-erreur', role: 'alert' }, h('strong', { text: 'Erreur : ' }), e.french));
      return;
    }
    throw e;
  }
  const m = d.measured;
  append(main, 
    h('p', { class: 'introduction', text: 'Informations du règlement européen sur l\'IA (annexe XII) fournies par l\'intégrateur, vérifiées par la box sur les poids du modèle chargé.' }),
    h('p', { class: 'alerte alerte-succes' }, h('strong', { text: 'Vérifié : ' }), 'l\'empreinte SHA-256 du dossier correspond aux poids chargés.'),
    h('h2', { text: 'Mesures de la box' }),
    dl([['Modèle', d.model], ['Empreinte SHA-256', h('code', { class: 'secret', text: m.sha256 })], ['Taille', `${formatNumber(Math.round(m.size_bytes / 1e6))} Mo`],
      ['Architecture', m.architecture], ['Paramètres', formatNumber(m.parameters)], ['Contexte d\'entraînement', `${formatNumber(m.context_length_train)} jetons`],
      ['Contexte utilisé', `${formatNumber(m.context_length)} jetons`]]),
    h('h2', { text: 'Dossier de l\'intégrateur' }),
    valueNode(d.dossier),
  );
}

// ---- audit -------------------------------------------------------------------------------

export function auditView(main) {
  const zones = messageZones();
  const result = h('div');
  const verify = h('button', { type: 'button', class: 'bouton bouton-principal' }, 'Vérifier l\'intégrité du journal');
  verify.addEventListener('click', async () => {
    zones.clearAll(); clear(result);
    zones.info('Vérification en cours…');
    try {
      const r = await api('GET', '/admin/audit/verify');
      zones.info('Vérification terminée.');
      const kinds = { edited: 'modifiée', deleted: 'supprimée', reordered: 'déplacée', truncated: 'tronquée', badsignature: 'signature invalide', missingsignature: 'signature absente' };
      append(result, 
        h('p', { class: `alerte ${r.ok ? 'alerte-succes' : 'alerte-erreur'}` }, h('strong', { text: r.ok ? 'Journal intègre : ' : 'Anomalie détectée : ' }),
          r.ok ? 'la chaîne de hachage et les signatures sont valides.' : (r.message || 'la chaîne du journal est rompue.')),
        dl([['Segments', String(r.segments ?? '—')], ['Entrées', r.entries !== undefined ? formatNumber(r.entries) : '—'],
          ['Numéros', r.first_seq !== null && r.first_seq !== undefined ? `${r.first_seq} à ${r.last_seq}` : '—'],
          ['Point de contrôle', r.checkpoint === undefined ? '—' : yesNo(r.checkpoint)],
          r.first_bad ? ['Première anomalie', `segment ${r.first_bad.segment}, ligne ${r.first_bad.line ?? '?'} (${kinds[r.first_bad.kind] || r.first_bad.kind})`] : null]),
        (r.warnings || []).length ? h('ul', {}, r.warnings.map((w) => h('li', { text: w }))) : null,
      );
    } catch (e) { zones.info(''); zones.error(errText(e, 'La vérification a échoué.')); }
  });
  const today = new Date();
  const iso = (d) => d.toISOString().slice(0, 10);
  const from = field({ label: 'Du', name: 'from', type: 'date', value: iso(new Date(today.getTime() - 30 * 86400e3)), required: true });
  const to = field({ label: 'Au (inclus)', name: 'to', type: 'date', value: iso(today), required: true });
  const fmt = field({ label: 'Format', name: 'format', type: 'select', value: 'csv', options: [['csv', 'CSV (tableur)'], ['jsonl', 'JSON lines']] });
  const form = h('form', { class: 'formulaire formulaire-ligne', novalidate: true }, from.wrap, to.wrap, fmt.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Exporter le journal')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    zones.clearAll();
    if (!from.input.value || !to.input.value || from.input.value > to.input.value) { zones.error('Indiquez une période valide (la date de début avant la date de fin).'); return; }
    const f = `${from.input.value}T00:00:00Z`;
    const t = new Date(new Date(`${to.input.value}T00:00:00Z`).getTime() + 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
    try {
      const file = await fetchFile('GET', `/admin/audit/export?from=${encodeURIComponent(f)}&to=${encodeURIComponent(t)}&format=${fmt.input.value}`, undefined, `audit.${fmt.input.value}`);
      downloadBlob(file.blob, file.filename);
      zones.info(`Export téléchargé (« ${file.filename} »).`);
    } catch (e) { zones.error(errText(e, 'L\'export a échoué.')); }
  });
  append(main, back(), h('h1', { text: 'Journal d\'audit' }),
    h('p', { class: 'introduction', text: 'Le journal enregistre chaque demande (date, compte pseudonymisé, modèle, volumes, empreintes) sans le texte des demandes ni des réponses. Il est chaîné par hachage : toute modification est détectable.' }),
    h('h2', { text: 'Intégrité' }), h('div', { class: 'actions' }, verify), zones.status, zones.alert, result,
    h('h2', { text: 'Export' }), form);
}

// ---- compliance --------------------------------------------------------------------------

const KINDS = [
  ['register', 'Registre des traitements (RGPD, article 30)'],
  ['dpia', 'Analyse d\'impact (AIPD)'],
  ['checklist', 'Liste de contrôle du déployeur (règlement sur l\'IA)'],
];

function complianceItem(it) {
  const measureStatus = { enabled: 'en place', disabled: 'à compléter', unknown: 'non vérifiée' };
  const checkState = { done: 'fait', todo: 'à faire', unknown: 'à vérifier' };
  switch (it.type) {
    case 'paragraph': return h('p', { text: it.text });
    case 'bullet': return h('ul', {}, h('li', { text: it.text }));
    case 'field': return dl([[it.label, it.value]]);
    case 'measure': return h('ul', {}, h('li', {}, h('strong', { text: `${it.label} ` }), `(${measureStatus[it.status] || it.status}) : ${it.detail}`));
    case 'check': return h('div', { class: `controle controle-${it.state}` },
      h('h4', {}, `${it.title} — `, h('span', { class: 'etat', text: checkState[it.state] || it.state })),
      h('p', { class: 'aide', text: it.article }), h('p', { text: it.evidence }));
    case 'risk': {
      const ms = (arr) => (arr.length ? h('ul', {}, arr.map((m) => h('li', {}, h('strong', { text: `${m.label} ` }), `(${measureStatus[m.status] || m.status}) : ${m.detail}`))) : h('p', { text: 'Aucune.' }));
      return h('div', { class: 'risque' }, h('h4', { text: it.title }), h('p', { text: it.description }),
        h('p', { text: 'Mesures en place d\'après la configuration :' }), ms(it.measures || []),
        (it.gaps || []).length ? [h('p', { text: 'Mesures à compléter ou non vérifiées :' }), ms(it.gaps)] : null,
        (it.organisational || []).length ? [h('p', { text: 'Mesures organisationnelles à prévoir :' }), h('ul', {}, it.organisational.map((o) => h('li', { text: o })))] : null,
        h('p', {}, h('strong', { text: 'Risque résiduel : ' }), it.residual_risk || '[à compléter]'));
    }
    default: return h('p', { text: JSON.stringify(it) });
  }
}

export async function complianceView(main, ctx) {
  const zones = messageZones();
  const docZone = h('div');
  const select = field({ label: 'Document', name: 'kind', type: 'select', value: 'register', options: KINDS });
  const form = h('form', { class: 'formulaire formulaire-ligne', novalidate: true }, select.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'bouton bouton-principal' }, 'Afficher'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
        try {
          const f = await fetchFile('GET', `/admin/compliance/${select.input.value}?format=md`, undefined, `${select.input.value}.md`);
          downloadBlob(f.blob, f.filename.endsWith('.md') ? f.filename : `civia-${select.input.value}.md`);
          zones.info('Document téléchargé au format Markdown.');
        } catch (e) { zones.error(errText(e, 'Le téléchargement a échoué.')); }
      } } }, 'Télécharger (Markdown)')));
  async function load() {
    zones.clearAll();
    const d = await api('GET', `/admin/compliance/${select.input.value}?format=json`, undefined, { signal: ctx.signal });
    clear(docZone);
    append(docZone, h('h2', { text: d.title }),
      h('p', { class: 'alerte alerte-info', text: d.notice }),
      dl([['Commune', d.commune], ['Généré le', d.generated_at], ['Version de la box', d.box_version]]),
      d.sections.map((s) => h('section', { class: 'section-conformite', 'aria-label': s.heading }, h('h3', { text: s.heading }), s.items.map(complianceItem))));
  }
  form.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await load(); } catch (e) { zones.error(errText(e, 'Le chargement a échoué.')); } });
  append(main, back(), h('h1', { text: 'Documents de conformité' }),
    h('p', { class: 'introduction', text: 'Ces documents sont générés à partir de la configuration réelle de la box. Relisez-les et complétez-les avec le DPO de la commune.' }),
    form, zones.status, zones.alert, docZone);
  await load();
}

// ---- system ------------------------------------------------------------------------------

function duration(secs) {
  const d = Math.floor(secs / 86400); const hr = Math.floor((secs % 86400) / 3600); const m = Math.floor((secs % 3600) / 60);
  return [d ? `${d} j` : '', hr ? `${hr} h` : '', `${m} min`].filter(Boolean).join(' ');
}

export async function systemView(main, ctx) {
  append(main, back(), h('h1', { text: 'État du système' }));
  const s = await api('GET', '/admin/status', undefined, { signal: ctx.signal });
  const phases = { ready: 'prêt', loading: 'chargement', starting: 'démarrage', restarting: 'redémarrage', failed: 'en échec' };
  append(main, 
    h('h2', { text: 'Service' }),
    dl([['Version de Civia', s.version], ['Démarré le', formatDate(s.started_at)], ['Fonctionne depuis', duration(s.uptime_secs)],
      ['Comptes', String(s.users)], ['Appairage en attente', yesNo(s.pairing_pending)]]),
    h('h2', { text: 'Modèle' }),
    dl([['Modèle', s.model.id], ['Chargé', yesNo(s.model.loaded)], ['Empreinte SHA-256', s.model.sha256 ? h('code', { class: 'secret', text: s.model.sha256 }) : '—'],
      ['Moteur', phases[s.worker.phase] || s.worker.phase], ['Redémarrages du moteur', String(s.worker.restarts)],
      s.worker.last_error ? ['Dernière erreur', s.worker.last_error] : null]),
  );
  if (s.host) {
    const gib = (b) => (b == null ? 'inconnu' : `${(b / 1024 ** 3).toLocaleString('fr-FR', { maximumFractionDigits: 1 })} Gio`);
    const enc = { true: 'oui (volume chiffré dm-crypt)', false: 'non : les données de la box ne sont pas sur un volume chiffré', null: 'inconnu' };
    append(main,
      h('h2', { text: 'Matériel' }),
      dl([['Processeurs', String(s.host.cpus)],
        ['Mémoire', `${gib(s.host.memory_available_bytes)} disponibles sur ${gib(s.host.memory_total_bytes)}`],
        ['Disque des données', `${gib(s.host.disk_free_bytes)} libres sur ${gib(s.host.disk_total_bytes)}`],
        ['Chiffrement du disque', enc[String(s.host.state_encrypted)] || 'inconnu'],
        ['Puce TPM', s.host.tpm_present ? 'présente' : 'absente'],
        ['Carte graphique (GPU)', s.host.nvidia_gpu ? 'NVIDIA détectée' : 'aucune détectée : le modèle tourne sur les processeurs'],
        ['Couches du modèle sur le GPU', String(s.model.gpu_layers)]]));
  }
  const upd = h('div');
  append(main, h('h2', { text: 'Mises à jour' }), upd);
  try {
    const u = await api('GET', '/admin/updates', undefined, { signal: ctx.signal });
    const sys = u.system;
    append(upd, dl([
      ['Mises à jour du système', sys.enabled ? 'activées' : `désactivées${sys.reason ? ` (${sys.reason})` : ''}`],
      ['Version installée', sys.running_version || '—'], ['Emplacement démarré', sys.booted_slot ? sys.booted_slot.toUpperCase() : '—'],
      ['Version minimale acceptée', sys.floor || '—'],
      ['En attente', sys.pending ? `version ${sys.pending.version} (emplacement ${sys.pending.slot.toUpperCase()})` : 'aucune'],
      ['Dernier résultat', sys.last_outcome ? `${sys.last_outcome.version} : ${sys.last_outcome.result} — ${sys.last_outcome.message}` : '—'],
      ['Version du modèle', u.model.current || '—'], ['Version précédente du modèle', u.model.previous || '—'],
    ]));
  } catch (e) {
    append(upd, h('p', { class: 'alerte alerte-erreur', role: 'alert' }, h('strong', { text: 'Erreur : ' }), errText(e, 'État des mises à jour indisponible.')));
  }
  append(main, h('h2', { text: 'Certificat de la box' }),
    h('p', { text: 'Installez ce certificat d\'autorité dans les navigateurs et logiciels de la mairie pour qu\'ils fassent confiance à la box (connexion HTTPS sans avertissement).' }),
    h('p', {}, h('a', { href: '/ca.crt', download: 'civia-ca.crt', class: 'bouton bouton-secondaire' }, 'Télécharger le certificat de la box (civia-ca.crt)')));
}
