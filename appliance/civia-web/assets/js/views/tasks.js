// The agents' tasks: each a short form that builds a careful French prompt, and the result
// panel that shows the draft as it streams.
import { h, field, messageZones, append } from '../dom.js';
import { streamChat, ApiError } from '../api.js';
import { limits } from '../state.js';
import { outputPanel } from '../output.js';
import { documentPicker, budgetChars, answerTokens, splitText } from '../documents.js';
import { meetingSummary } from './meeting.js';
import { extractionView } from './extraction.js';

const BASE_SYSTEM = [
  'Vous êtes l\'assistant de rédaction des agents d\'une mairie française.',
  'Vous écrivez en français administratif correct, clair et concis, et vous vouvoyez toujours le destinataire.',
  'N\'inventez jamais de faits, de noms, de dates, de montants, d\'adresses ni de références juridiques : lorsqu\'une information manque, écrivez un espace réservé entre crochets, par exemple [à compléter].',
  'Ne donnez que le texte demandé, sans introduction ni commentaire sur votre travail.',
].join(' ');

const TONES = {
  formel: 'formel : courtois, soutenu et neutre',
  cordial: 'cordial : chaleureux et bienveillant tout en restant professionnel',
  ferme: 'ferme : poli mais clair et sans ambiguïté, en rappelant les obligations',
};

const line = (label, v) => (v && v.trim() ? `${label} : ${v.trim()}\n` : '');

/** Task definitions. `build(values, material, condensed)` returns {system, user}. */
export const TASKS = [
  {
    id: 'courrier', route: 'courrier', title: 'Rédiger un courrier',
    summary: 'Une lettre à un administré, une entreprise ou une administration, à partir de quelques points.',
    action: 'Rédiger le courrier', maxTokens: 700,
    fields: [
      { name: 'destinataire', label: 'Destinataire', required: true, placeholder: 'Ex. : M. Jean Martin, 12 rue des Lilas', hint: 'Nom, qualité ou organisme du destinataire.' },
      { name: 'objet', label: 'Objet du courrier', required: true, placeholder: 'Ex. : Demande de raccordement au réseau d\'eau' },
      { name: 'points', label: 'Points à aborder', type: 'textarea', required: true, rows: 5, hint: 'Un point par ligne, en quelques mots : l\'IA les met en forme.' },
      { name: 'ton', label: 'Ton', type: 'select', value: 'formel', options: [['formel', 'Formel'], ['cordial', 'Cordial'], ['ferme', 'Ferme']] },
      { name: 'signataire', label: 'Signataire', placeholder: 'Ex. : Le Maire', hint: 'Facultatif.' },
    ],
    exportTitle: (v) => `Courrier — ${v.objet || ''}`.trim(),
    build: (v) => ({
      system: `${BASE_SYSTEM} Vous rédigez des courriers officiels de la mairie.`,
      user: `Rédigez un courrier de la mairie.\n${line('Destinataire', v.destinataire)}${line('Objet', v.objet)}Ton : ${TONES[v.ton] || TONES.formel}\n${line('Signataire', v.signataire || '[Nom et qualité du signataire]')}Points à aborder :\n${v.points.trim()}\n\nCommencez par la ligne « Objet : … », puis la formule d'appel (par exemple « Madame, Monsieur, »), un corps en paragraphes courts qui traite chaque point, une formule de politesse administrative et la signature. N'ajoutez aucun élément qui ne figure pas ci-dessus.`,
    }),
  },
  {
    id: 'compte-rendu', route: 'compte-rendu', title: 'Compte rendu à partir de notes',
    summary: 'Transformer des notes écrites ou une transcription en compte rendu structuré.',
    action: 'Rédiger le compte rendu', maxTokens: 900, document: 'optional', documentInto: 'notes',
    fields: [
      { name: 'reunion', label: 'Réunion', placeholder: 'Ex. : Conseil d\'école du 12 mars', hint: 'Facultatif : intitulé, date et lieu.' },
      { name: 'participants', label: 'Participants', placeholder: 'Ex. : M. le Maire, Mme Durand (adjointe)…', hint: 'Facultatif.' },
      { name: 'notes', label: 'Notes ou transcription', type: 'textarea', required: true, rows: 10, hint: 'Collez vos notes, ou choisissez un document ci-dessous : son texte s\'affichera ici.' },
    ],
    exportTitle: (v) => `Compte rendu — ${v.reunion || 'réunion'}`,
    material: (v) => v.notes,
    condense: (part, i, n) => `Voici la partie ${i} sur ${n} des notes d'une réunion. Relevez de façon concise les sujets abordés, les décisions prises et les actions à mener (avec leur responsable et leur échéance si elles sont indiquées). N'inventez rien.\n\n${part}`,
    build: (v, material, condensed) => ({
      system: `${BASE_SYSTEM} Vous rédigez des comptes rendus de réunion fidèles et structurés.`,
      user: `Rédigez le compte rendu de la réunion suivante.\n${line('Réunion', v.reunion)}${line('Participants', v.participants)}\nStructure attendue : un titre, la date et les participants (ou [à compléter]), puis une section par sujet abordé, puis « Décisions » et « Actions à mener » (qui, quoi, quand). Restez fidèle aux notes, sans rien ajouter.\n\n${condensed ? 'Éléments relevés dans les notes :' : 'Notes :'}\n${material}`,
    }),
  },
  {
    id: 'reponse', route: 'reponse', title: 'Réponse à un administré',
    summary: 'Répondre à une demande reçue par courriel ou par courrier.',
    action: 'Rédiger la réponse', maxTokens: 600,
    fields: [
      { name: 'demande', label: 'Demande reçue', type: 'textarea', required: true, rows: 6, hint: 'Collez le message de l\'administré.' },
      { name: 'elements', label: 'Éléments de réponse', type: 'textarea', required: true, rows: 5, hint: 'Ce que la mairie répond, en quelques mots.' },
      { name: 'canal', label: 'Forme de la réponse', type: 'select', value: 'courriel', options: [['courriel', 'Courriel'], ['courrier', 'Courrier postal']] },
    ],
    exportTitle: () => 'Réponse à un administré',
    build: (v) => ({
      system: `${BASE_SYSTEM} Vous rédigez les réponses de la mairie aux demandes des administrés, avec bienveillance et précision.`,
      user: `Rédigez la réponse de la mairie (${v.canal === 'courrier' ? 'courrier postal' : 'courriel'}) à la demande ci-dessous, en vous appuyant uniquement sur les éléments de réponse fournis.\n\nDemande reçue :\n${v.demande.trim()}\n\nÉléments de réponse :\n${v.elements.trim()}\n\nCommencez par une formule d'appel, répondez point par point de façon claire, indiquez si besoin les démarches à suivre, et terminez par une formule de politesse et la signature [Nom, fonction, mairie de …].`,
    }),
  },
  {
    id: 'publication', route: 'publication', title: 'Publication',
    summary: 'Un texte pour le site de la commune, les réseaux sociaux ou le panneau d\'affichage.',
    action: 'Rédiger la publication', maxTokens: 500,
    fields: [
      { name: 'support', label: 'Support', type: 'select', value: 'site', options: [['site', 'Site internet de la commune'], ['reseaux', 'Réseaux sociaux'], ['panneau', 'Panneau d\'affichage']] },
      { name: 'sujet', label: 'Sujet', required: true, placeholder: 'Ex. : Fermeture de la mairie le 15 août' },
      { name: 'infos', label: 'Informations clés', type: 'textarea', required: true, rows: 5, hint: 'Dates, horaires, lieux, contacts… Seules ces informations seront utilisées.' },
    ],
    exportTitle: (v) => `Publication — ${v.sujet || ''}`.trim(),
    build: (v) => {
      const rules = {
        site: 'pour le site internet de la commune : un titre, une phrase d\'accroche, puis le texte en paragraphes courts avec les informations pratiques',
        reseaux: 'pour les réseaux sociaux de la commune : 500 caractères au plus, un ton accessible, deux mots-dièse au plus, sans émoticônes excessives',
        panneau: 'pour le panneau d\'affichage de la mairie : un titre très lisible, puis les informations essentielles en phrases courtes (quoi, quand, où, contact)',
      };
      return {
        system: `${BASE_SYSTEM} Vous rédigez les communications de la commune à destination du public.`,
        user: `Rédigez une publication ${rules[v.support] || rules.site}.\nSujet : ${v.sujet.trim()}\nInformations clés :\n${v.infos.trim()}\n\nN'utilisez que ces informations ; pour toute information manquante utile au public, écrivez [à compléter].`,
      };
    },
  },
  {
    id: 'synthese', route: 'synthese', title: 'Synthèse d\'un document',
    summary: 'Résumer un document (PDF, Word, LibreOffice ou texte), même long.',
    action: 'Résumer le document', maxTokens: 600, document: 'required',
    fields: [
      { name: 'focus', label: 'Points d\'attention', placeholder: 'Ex. : les coûts pour la commune', hint: 'Facultatif : ce qui vous intéresse en priorité.' },
      { name: 'longueur', label: 'Longueur de la synthèse', type: 'select', value: 'courte', options: [['courte', 'Courte (une dizaine de lignes)'], ['detaillee', 'Détaillée (une page environ)']] },
    ],
    exportTitle: (v, doc) => `Synthèse — ${doc || 'document'}`,
    material: (v, doc) => doc,
    condense: (part, i, n) => `Voici la partie ${i} sur ${n} d'un document. Résumez-la en quelques phrases fidèles, en gardant les chiffres, dates et décisions importants. N'inventez rien.\n\n${part}`,
    build: (v, material, condensed) => ({
      system: `${BASE_SYSTEM} Vous rédigez des synthèses fidèles de documents pour les élus et les agents.`,
      user: `Rédigez une synthèse ${v.longueur === 'detaillee' ? 'détaillée (une page environ)' : 'courte (une dizaine de lignes)'} du document ci-dessous : son objet, les points essentiels, puis les chiffres, dates et décisions à retenir.${v.focus && v.focus.trim() ? ` Mettez l'accent sur : ${v.focus.trim()}.` : ''}\n\n${condensed ? 'Résumés successifs des parties du document :' : 'Document :'}\n${material}`,
    }),
  },
  {
    // Its own page (views/extraction.js): the values and their types make the answer's schema.
    id: 'extraction', route: 'extraction', title: 'Extraction de données',
    summary: 'Relever dans un document technique les valeurs demandées, sous forme de tableau à télécharger (ODS, CSV).',
    action: 'Extraire les valeurs', view: extractionView,
  },
];

export const TASK_ROUTES = TASKS;

export function homeView(main) {
  const l = limits();
  // The minutes from a recording come right after the letter, before the minutes from notes.
  const cards = [...TASKS];
  cards.splice(1, 0, { id: 'reunion', route: 'reunion', title: 'Compte rendu de réunion', summary: meetingSummary() });
  append(main, 
    h('h1', { text: 'Que souhaitez-vous faire ?' }),
    h('p', { class: 'introduction', text: 'Choisissez une tâche : remplissez quelques champs, Civia rédige un brouillon que vous relisez, corrigez et vérifiez avant de l\'utiliser.' }),
    h('ul', { class: 'grille-taches' }, cards.map((t) => h('li', { class: 'carte-tache', dataset: { tache: t.id } },
      h('h2', {}, h('a', { href: `#/${t.route}` }, t.title)),
      h('p', { text: t.summary })))),
    h('h2', { text: 'Autres outils' }),
    h('ul', { class: 'grille-taches' },
      h('li', { class: 'carte-tache' }, h('h3', {}, h('a', { href: '#/discussion' }, 'Discussion libre')),
        h('p', { text: 'Poser une question ou travailler un texte avec l\'assistant.' })),
      h('li', { class: 'carte-tache' }, h('h3', {}, h('a', { href: '#/documents' }, 'Documents de la commune')),
        h('p', { text: 'Rechercher dans les délibérations, arrêtés et règlements de la commune, avec les sources citées.' })),
      h('li', { class: 'carte-tache' }, h('h3', {}, h('a', { href: '#/historique' }, 'Historique')),
        h('p', { text: l.history_enabled === false ? 'L\'historique est désactivé sur cette box.'
          : `Vos conversations, visibles de vous seul, conservées ${l.history_retention_days || 30} jours.` }))),
  );
}

function readValues(form, task) {
  const v = {};
  for (const f of task.fields) v[f.name] = form.elements[f.name] ? form.elements[f.name].value : '';
  return v;
}

export function taskView(task, main, ctx) {
  const zones = messageZones();
  const inputs = {};
  const fields = task.fields.map((f) => {
    const made = field(f);
    inputs[f.name] = made.input;
    return made.wrap;
  });
  let picker = null;
  let docName = '';
  if (task.document) {
    picker = documentPicker({
      label: task.document === 'required' ? 'Document' : 'Document (facultatif)',
      required: task.document === 'required',
      onText: (text, name) => {
        docName = name;
        if (task.documentInto) inputs[task.documentInto].value = text;
      },
    });
  }
  const submit = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, task.action);
  const form = h('form', { class: 'formulaire formulaire-tache', novalidate: true },
    h('p', { class: 'aide', text: 'Les champs marqués « (obligatoire) » doivent être remplis.' }),
    fields, picker ? picker.wrap : null, zones.alert, zones.status,
    h('div', { class: 'actions' }, submit));
  let values = {};
  const panel = outputPanel({
    exportTitle: () => task.exportTitle(values, docName),
    tableCaption: task.tableCaption || 'Tableau',
  });
  ctx.signal.addEventListener('abort', () => panel.abort());

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (panel.running) return;
    zones.clearAll();
    values = readValues(form, task);
    // Validation: required fields, in the form's order.
    let firstBad = null;
    const missing = [];
    for (const f of task.fields) {
      const input = inputs[f.name];
      input.removeAttribute('aria-invalid');
      if (f.required && !values[f.name].trim()) {
        input.setAttribute('aria-invalid', 'true');
        missing.push(f.label);
        firstBad = firstBad || input;
      }
    }
    let docText = '';
    if (picker) {
      const doc = await picker.ready();
      docText = doc ? doc.text : '';
      if (task.document === 'required' && !docText) {
        missing.push('Document');
        firstBad = firstBad || picker.input;
      }
    }
    if (missing.length) {
      zones.error(`Veuillez remplir : ${missing.join(', ')}.`);
      firstBad.focus();
      return;
    }
    await run(values, docText);
  });

  async function run(v, docText) {
    const l = limits();
    const controller = panel.begin();
    const maxTokens = answerTokens(task.maxTokens);
    try {
      let material = task.material ? task.material(v, docText) : '';
      let condensed = false;
      if (task.material) {
        const probe = task.build(v, '', false);
        const overhead = probe.system.length + probe.user.length;
        const budget = budgetChars(maxTokens, overhead);
        if (material.length > budget) {
          const partTokens = answerTokens(350);
          const parts = splitText(material, budgetChars(partTokens, 600));
          const partials = [];
          for (let i = 0; i < parts.length; i += 1) {
            panel.progress(`Document long : lecture de la partie ${i + 1} sur ${parts.length}…`);
            const r = await streamChat({
              model: l.model, maxTokens: partTokens, temperature: 0.2, signal: controller.signal,
              messages: [
                { role: 'system', content: BASE_SYSTEM },
                { role: 'user', content: task.condense(parts[i], i + 1, parts.length, v) },
              ],
            });
            if (r.aborted) { panel.finish({ ...r, text: partials.join('\n\n') }, null); return; }
            partials.push(`Partie ${i + 1} :\n${r.text.trim()}`);
          }
          material = partials.join('\n\n');
          // Still too long (many parts): keep what fits.
          if (material.length > budget) material = material.slice(0, budget);
          condensed = true;
          panel.progress(`Rédaction de la version finale à partir des ${parts.length} parties…`);
        }
      }
      const { system, user } = task.build(v, material, condensed);
      const messages = [{ role: 'system', content: system }, { role: 'user', content: user }];
      if (!condensed) panel.progress('Rédaction en cours…');
      const title = (task.exportTitle(v, docName) || task.title).slice(0, 120);
      const result = await streamChat({
        model: l.model, messages, maxTokens, temperature: 0.3, signal: controller.signal,
        civia: l.history_enabled === false ? undefined : { save: true, title },
        onDelta: (_d, full) => panel.delta(full),
      });
      panel.finish(result, messages);
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      panel.fail(e instanceof ApiError ? e : null);
    }
  }

  append(main, 
    h('p', { class: 'fil-ariane' }, h('a', { href: '#/taches' }, '← Toutes les tâches')),
    h('h1', { text: task.title }),
    h('p', { class: 'introduction', text: task.summary }),
    form,
    panel.el,
  );
}
