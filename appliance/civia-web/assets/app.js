// Civia web application: hash router, session bootstrap, navigation.
import { h, clear, announce, append } from './js/dom.js';
import { api, setCsrf, setUnauthorizedHandler, ApiError } from './js/api.js';
import { session, role, homeRoute, userName, ROLE_LABELS, MODEL_ROLES, ALL_ROLES } from './js/state.js';
import { loginView } from './js/views/login.js';
import { charterView } from './js/views/charter.js';
import { homeView, taskView, TASK_ROUTES } from './js/views/tasks.js';
import { chatView } from './js/views/chat.js';
import { meetingView } from './js/views/meeting.js';
import { historyView } from './js/views/history.js';
import { knowledgeView, collectionView } from './js/views/knowledge.js';
import { myDataView } from './js/views/mydata.js';
import { accessibilityView } from './js/views/accessibility.js';
import { forbiddenView, notFoundView, errorView } from './js/views/errors.js';
import * as admin from './js/views/admin.js';
import { backupView } from './js/views/backup.js';

const STAFF = ['admin', 'dpo', 'integrator'];

// path pattern -> {title, view, roles}; `:x` matches one segment.
const ROUTES = [
  { path: 'taches', title: 'Tâches', view: homeView, roles: MODEL_ROLES, nav: 'taches' },
  { path: 'reunion', title: 'Compte rendu de réunion', view: meetingView, roles: MODEL_ROLES, nav: 'taches' },
  ...TASK_ROUTES.map((t) => ({ path: t.route, title: t.title, view: (m, c) => (t.view || taskView)(t, m, c), roles: MODEL_ROLES, nav: 'taches' })),
  { path: 'discussion', title: 'Discussion libre', view: chatView, roles: MODEL_ROLES, nav: 'discussion' },
  { path: 'discussion/:id', title: 'Discussion', view: chatView, roles: MODEL_ROLES, nav: 'discussion' },
  { path: 'documents', title: 'Documents de la commune', view: knowledgeView, roles: MODEL_ROLES, nav: 'documents' },
  { path: 'documents/collections/:id', title: 'Collection', view: collectionView, roles: MODEL_ROLES, nav: 'documents' },
  { path: 'historique', title: 'Historique', view: historyView, roles: MODEL_ROLES, nav: 'historique' },
  { path: 'mes-donnees', title: 'Mes données', view: myDataView, roles: ALL_ROLES, nav: 'mes-donnees' },
  { path: 'accessibilite', title: 'Déclaration d\'accessibilité', view: accessibilityView, public: true },
  { path: 'admin', title: 'Administration', view: admin.adminHome, roles: STAFF, nav: 'admin' },
  { path: 'admin/utilisateurs', title: 'Utilisateurs', view: admin.usersView, roles: ['admin'], nav: 'admin' },
  { path: 'admin/utilisateurs/:name', title: 'Gérer un utilisateur', view: admin.userView, roles: ['admin'], nav: 'admin' },
  { path: 'admin/cles', title: 'Clés d\'API', view: admin.keysView, roles: ['admin'], nav: 'admin' },
  { path: 'admin/utilisation', title: 'Utilisation', view: admin.usageView, roles: ['admin', 'dpo'], nav: 'admin' },
  { path: 'admin/charte', title: 'Charte d\'utilisation', view: admin.charterAdminView, roles: ['admin', 'dpo'], nav: 'admin' },
  { path: 'admin/modele', title: 'Dossier du modèle', view: admin.dossierView, roles: STAFF, nav: 'admin' },
  { path: 'admin/audit', title: 'Journal d\'audit', view: admin.auditView, roles: ['admin', 'dpo'], nav: 'admin' },
  { path: 'admin/conformite', title: 'Documents de conformité', view: admin.complianceView, roles: ['admin', 'dpo'], nav: 'admin' },
  { path: 'admin/sauvegardes', title: 'Sauvegardes', view: backupView, roles: ['admin'], nav: 'admin' },
  { path: 'admin/systeme', title: 'État du système', view: admin.systemView, roles: ['admin', 'integrator'], nav: 'admin' },
];

const NAV = [
  { id: 'taches', href: '#/taches', label: 'Tâches', roles: MODEL_ROLES },
  { id: 'discussion', href: '#/discussion', label: 'Discussion libre', roles: MODEL_ROLES },
  { id: 'documents', href: '#/documents', label: 'Documents de la commune', roles: MODEL_ROLES },
  { id: 'historique', href: '#/historique', label: 'Historique', roles: MODEL_ROLES },
  { id: 'mes-donnees', href: '#/mes-donnees', label: 'Mes données', roles: ALL_ROLES },
  { id: 'admin', href: '#/admin', label: 'Administration', roles: STAFF },
];

function match(path) {
  const segs = path.split('/').filter(Boolean);
  for (const r of ROUTES) {
    const pat = r.path.split('/');
    if (pat.length !== segs.length) continue;
    const params = {};
    let ok = true;
    pat.forEach((p, i) => {
      if (p.startsWith(':')) {
        try { params[p.slice(1)] = decodeURIComponent(segs[i]); } catch { ok = false; }
      } else if (p !== segs[i]) ok = false;
    });
    if (ok) return { route: r, params };
  }
  return null;
}

let renderSeq = 0;
let current = null; // {controller}
let firstRender = true;
let sessionLoaded = false;
let loginNotice = '';

function main() { return document.getElementById('contenu'); }

function renderChrome() {
  const nav = document.getElementById('navigation');
  const account = document.getElementById('compte');
  clear(nav); clear(account);
  if (!session.me || session.charterPending) {
    nav.hidden = true; account.hidden = true;
    return;
  }
  const r = role();
  append(nav, h('ul', { class: 'menu' }, NAV.filter((n) => n.roles.includes(r))
    .map((n) => h('li', {}, h('a', { href: n.href, dataset: { nav: n.id } }, n.label)))));
  nav.hidden = false;
  append(account, 
    h('p', { class: 'compte-nom' }, h('span', { class: 'visuellement-cache', text: 'Connecté : ' }),
      userName() || 'compte', h('span', { class: 'compte-role', text: ` (${ROLE_LABELS[r] || r})` })),
    h('button', { type: 'button', class: 'bouton bouton-discret', on: { click: logout } }, 'Se déconnecter'),
  );
  account.hidden = false;
}

function markNav(navId) {
  for (const a of document.querySelectorAll('#navigation a')) {
    if (a.dataset.nav === navId) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function logout() {
  try { await api('POST', '/auth/logout'); } catch { /* the session ends anyway */ }
  session.me = null;
  session.charterPending = null;
  setCsrf(null);
  loginNotice = 'Vous êtes déconnecté.';
  renderChrome();
  go('#/taches');
}

/** Loads /auth/me and the charter. Returns false when signed out. */
export async function loadSession() {
  try {
    const me = await api('GET', '/auth/me', undefined, { login: true });
    session.me = me;
    setCsrf(me.csrf_token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { session.me = null; return false; }
    throw e;
  }
  await refreshCharter();
  return true;
}

export async function refreshCharter() {
  const c = await api('GET', '/v1/charter');
  session.charterPending = c.required && !c.accepted_at ? c : null;
}

function setTitle(title) {
  document.title = `${title} — Civia`;
}

function focusHeading(el) {
  const h1 = el.querySelector('h1');
  if (!h1) return;
  h1.setAttribute('tabindex', '-1');
  h1.focus();
}

export async function render() {
  const seq = ++renderSeq;
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const path = location.hash.replace(/^#\/?/, '');
  const m = main();
  const stillCurrent = () => seq === renderSeq;
  const ctx = {
    signal: controller.signal,
    stillCurrent,
    setTitle,
    rerender: () => render(),
  };
  const show = async (title, fn) => {
    clear(m);
    m.removeAttribute('aria-busy');
    setTitle(title);
    try {
      await fn(m, ctx);
    } catch (e) {
      if (!stillCurrent()) return;
      if (e && e.name === 'AbortError') return;
      clear(m);
      if (!(e instanceof ApiError)) console.error('Civia:', e);
      if (e instanceof ApiError && e.status === 403 && e.code !== 'csrf_failed' && e.code !== 'charter_not_accepted') {
        setTitle('Accès refusé'); forbiddenView(m);
      } else if (e instanceof ApiError && e.status === 401) {
        return; // the unauthorized handler shows the login page
      } else {
        setTitle('Erreur'); errorView(m, e);
      }
    }
    if (!stillCurrent()) return;
    if (!firstRender) focusHeading(m);
    firstRender = false;
  };

  try {
    if (!sessionLoaded) {
      sessionLoaded = true;
      await loadSession();
    }
  } catch (e) {
    renderChrome();
    await show('Erreur', (el) => errorView(el, e));
    return;
  }
  if (!stillCurrent()) return;
  renderChrome();
  const found = match(path);

  if (found && found.route.public) {
    markNav(null);
    await show(found.route.title, (el, c) => found.route.view(el, { ...c, params: found.params }));
    return;
  }
  if (session.me && !session.charterPending) {
    // A new charter version may have been published since: ask on every navigation.
    try { await refreshCharter(); } catch { /* shown by the view's own calls */ }
    if (!stillCurrent()) return;
    if (session.charterPending) renderChrome();
  }
  if (!session.me) {
    const notice = loginNotice;
    loginNotice = '';
    await show('Connexion', (el, c) => loginView(el, { ...c, notice, onLogin: afterLogin }));
    return;
  }
  if (session.charterPending) {
    await show('Charte d\'utilisation', (el, c) => charterView(el, { ...c, charter: session.charterPending, onAccepted: afterCharter }));
    return;
  }
  if (!path) { location.replace(homeRoute()); return; }
  if (!found) {
    markNav(null);
    await show('Page introuvable', notFoundView);
    return;
  }
  markNav(found.route.nav || null);
  if (found.route.roles && !found.route.roles.includes(role())) {
    await show('Accès refusé', forbiddenView);
    return;
  }
  await show(typeof found.route.title === 'function' ? found.route.title(found.params) : found.route.title,
    (el, c) => found.route.view(el, { ...c, params: found.params }));
}

async function afterLogin() {
  await loadSession();
  renderChrome();
  const path = location.hash.replace(/^#\/?/, '');
  announce('Vous êtes connecté.');
  if (!path || !match(path)) go(homeRoute());
  else render();
}

/** Navigates to `hash`, or renders again when it is already the current one. */
function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function afterCharter() {
  await refreshCharter();
  renderChrome();
  announce('Charte acceptée.');
  const path = location.hash.replace(/^#\/?/, '');
  if (!path || !match(path) || (match(path).route.roles && !match(path).route.roles.includes(role()))) {
    go(homeRoute());
  } else render();
}

setUnauthorizedHandler(() => {
  if (!session.me) return;
  session.me = null;
  session.charterPending = null;
  setCsrf(null);
  loginNotice = 'Votre session a expiré : veuillez vous reconnecter.';
  render();
});

function start() {
  // The skip link must not change the route: move the focus instead.
  const skip = document.getElementById('lien-evitement');
  skip.addEventListener('click', (ev) => {
    ev.preventDefault();
    const m = main();
    m.focus();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash === '#contenu') return;
    render();
  });
  render();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
