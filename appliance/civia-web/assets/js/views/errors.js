// Pages for refusals and failures: always an h1 and a way back, in French.
import { h, append } from '../dom.js';
import { role, homeRoute, ROLE_LABELS } from '../state.js';

export function forbiddenView(main) {
  const r = role();
  append(main, 
    h('h1', { text: 'Accès refusé' }),
    h('p', { class: 'alerte alerte-erreur', role: 'alert' },
      h('strong', { text: 'Erreur 403 : ' }),
      `votre compte${r ? ` (rôle : ${ROLE_LABELS[r] || r})` : ''} ne donne pas accès à cette page.`),
    h('p', { text: 'Si vous pensez en avoir besoin pour votre travail, adressez-vous à l\'administrateur de la box Civia de la mairie.' }),
    h('p', {}, h('a', { href: homeRoute(), class: 'bouton bouton-secondaire' }, 'Retour à l\'accueil')),
  );
}

export function notFoundView(main) {
  append(main, 
    h('h1', { text: 'Page introuvable' }),
    h('p', { text: 'L\'adresse demandée ne correspond à aucune page de Civia.' }),
    h('p', {}, h('a', { href: homeRoute(), class: 'bouton bouton-secondaire' }, 'Retour à l\'accueil')),
  );
}

export function errorView(main, err) {
  const msg = err && err.french ? err.french : 'Une erreur inattendue est survenue.';
  append(main, 
    h('h1', { text: 'Une erreur est survenue' }),
    h('p', { class: 'alerte alerte-erreur', role: 'alert' }, h('strong', { text: 'Erreur : ' }), msg),
    h('p', {}, h('a', { href: homeRoute(), class: 'bouton bouton-secondaire' }, 'Retour à l\'accueil')),
  );
}
