// The accessibility statement (RGAA 4.1), stated honestly.
import { h, append } from '../dom.js';

export function accessibilityView(main) {
  const li = (t) => h('li', { text: t });
  append(main, 
    h('h1', { text: 'Déclaration d\'accessibilité' }),
    h('p', { text: 'La commune s\'engage à rendre ses services numériques accessibles, conformément à l\'article 47 de la loi n° 2005-102 du 11 février 2005. Cette déclaration s\'applique à l\'application Civia (assistant d\'intelligence artificielle de la mairie, hébergé sur une box installée dans ses locaux).' }),
    h('h2', { text: 'État de conformité' }),
    h('p', {}, 'L\'application Civia est ', h('strong', { text: 'non conforme' }),
      ' avec le référentiel général d\'amélioration de l\'accessibilité (RGAA), version 4.1 : elle n\'a pas encore fait l\'objet d\'un audit de conformité complet, et en l\'absence d\'audit le RGAA impose cette mention.'),
    h('p', { text: 'Elle a été conçue pour le niveau AA : structure sémantique, libellés sur tous les champs, navigation complète au clavier, focus visible, contrastes suffisants, messages d\'état restitués aux lecteurs d\'écran, titre de page à chaque vue.' }),
    h('h2', { text: 'Vérifications effectuées' }),
    h('ul', {},
      li('à chaque version, un test automatisé avec axe-core sur chaque page de l\'application (aucune erreur grave ou critique tolérée) ;'),
      li('un parcours complet au clavier seul de la rédaction d\'un courrier ;'),
      li('navigateurs : Firefox ESR et Chromium / Microsoft Edge récents.')),
    h('h2', { text: 'Contenus non accessibles ou limites connues' }),
    h('ul', {},
      li('les textes produits par l\'intelligence artificielle peuvent contenir des tableaux ou des listes mal formés : ils sont affichés de façon structurée lorsque c\'est possible, sinon en texte brut ;'),
      li('les documents déposés (PDF, DOCX, ODT) ne sont pas vérifiés : seul leur texte est lu ;'),
      li('la compatibilité avec les lecteurs d\'écran (NVDA, JAWS, Orca) n\'a pas encore été testée par des utilisateurs.')),
    h('h2', { text: 'Établissement de cette déclaration' }),
    h('p', { text: 'Cette déclaration a été établie lors de la mise en service de la box. Technologies utilisées : HTML, CSS, JavaScript.' }),
    h('h2', { text: 'Retour d\'information et contact' }),
    h('p', { text: 'Si vous n\'arrivez pas à accéder à un contenu ou à un service de Civia, contactez le référent accessibilité ou le service informatique de votre mairie pour être orienté vers une alternative accessible ou obtenir le contenu sous une autre forme.' }),
    h('h2', { text: 'Voies de recours' }),
    h('p', { text: 'Si vous avez signalé à la mairie un défaut d\'accessibilité qui vous empêche d\'accéder à un contenu ou à un service, et que vous n\'avez pas obtenu de réponse satisfaisante, vous pouvez saisir le Défenseur des droits :' }),
    h('ul', {},
      li('par un formulaire en ligne sur le site du Défenseur des droits (formulaire.defenseurdesdroits.fr) ;'),
      li('en contactant le délégué du Défenseur des droits dans votre région ;'),
      li('par courrier, gratuitement, sans mettre de timbre : Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX 07.')),
  );
}
