// « Extraction de données »: the agent lists the values to find in a document and the type of
// each; the box answers one JSON object held to the schema built from that list
// (`response_format: json_schema`, enforced by a grammar: it always parses), shown as a table
// and downloaded as ODS or CSV (`POST /v1/exports/tables/{ods|csv}`, with the AI marking).
import { h, clear, append, newId, messageZones, downloadBlob, copyText, formatNumber } from '../dom.js';
import { streamChat, fetchFile, ApiError } from '../api.js';
import { limits } from '../state.js';
import { documentPicker, budgetChars, answerTokens, splitText } from '../documents.js';
import { aiBadge, aiMarking, warningNodes } from '../output.js';

export const TYPES = [['texte', 'Texte'], ['nombre', 'Nombre'], ['date', 'Date'], ['oui-non', 'Oui / non']];
const MAX_VALUES = 30;
const COLUMNS = ['Valeur demandée', 'Valeur trouvée', 'Unité', 'Passage source'];
const CAPTION = 'Valeurs extraites du document';

const SYSTEM = [
  'Vous relevez des données précises dans des documents techniques pour les agents d\'une mairie française.',
  'Vous ne recopiez que ce que le document dit : quand une valeur n\'y figure pas, sa valeur est null.',
  'N\'inventez jamais de valeur, d\'unité ni de passage.',
].join(' ');

/** The JSON schema of one value of type `type` (null when the document does not give it). */
export function valueSchema(type) {
  switch (type) {
    case 'nombre': return { type: ['number', 'null'] };
    case 'date': return { type: ['string', 'null'], format: 'date' };
    case 'oui-non': return { type: ['boolean', 'null'] };
    default: return { type: ['string', 'null'], maxLength: 200 };
  }
}

/**
 * The answer's schema: `valeur_1`, `valeur_2`… in the order asked, each the passage that
 * gives it (first: the model quotes before it concludes), the value and its unit.
 */
export function extractionSchema(values) {
  const properties = {};
  values.forEach((v, i) => {
    properties[`valeur_${i + 1}`] = {
      type: 'object',
      properties: {
        source: { type: ['string', 'null'], maxLength: 160 },
        valeur: valueSchema(v.type),
        unite: { type: ['string', 'null'], maxLength: 20 },
      },
      required: ['source', 'valeur', 'unite'],
      additionalProperties: false,
    };
  });
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

function prompt(values, material, condensed) {
  const list = values.map((v, i) => `- valeur_${i + 1} : ${v.name} (${TYPES.find(([t]) => t === v.type)[1].toLowerCase()})`).join('\n');
  return `Relevez dans le document ci-dessous les valeurs suivantes :\n${list}\n\nPour chacune, donnez « source » (le court passage du document qui la donne, recopié mot pour mot, ou null), « valeur » (null si le document ne la donne pas ; les nombres sans espace ni unité, avec un point décimal ; les dates au format AAAA-MM-JJ) et « unite » (l'unité indiquée, ou null).\n\n${condensed ? 'Passages relevés dans le document :' : 'Document :'}\n${material}`;
}

/** A value as the table shows it. */
function shown(type, v) {
  if (v === null || v === undefined || v === '') return 'non trouvée';
  if (type === 'nombre' && typeof v === 'number') return formatNumber(v);
  if (type === 'oui-non' && typeof v === 'boolean') return v ? 'Oui' : 'Non';
  if (type === 'date' && /^\d{4}-\d{2}-\d{2}$/.test(v)) return `${v.slice(8, 10)}/${v.slice(5, 7)}/${v.slice(0, 4)}`;
  return String(v);
}

/** The rows of the answer: [asked, value (typed), unit, source] for each asked value. */
export function rowsOf(values, answer) {
  return values.map((v, i) => {
    const item = (answer && answer[`valeur_${i + 1}`]) || {};
    return [v.name, item.valeur ?? null, item.unite ?? null, item.source ?? null];
  });
}

function valuesEditor() {
  const list = h('ol', { class: 'liste-valeurs' });
  const hintId = newId('valeurs-aide');
  const addButton = h('button', { type: 'button', class: 'bouton bouton-secondaire' }, 'Ajouter une valeur');
  const fieldset = h('fieldset', { class: 'champ valeurs-demandees', 'aria-describedby': hintId },
    h('legend', { class: 'etiquette' }, 'Valeurs demandées', h('span', { class: 'obligatoire', text: ' (obligatoire)' })),
    h('p', { class: 'aide', id: hintId, text: 'Une ligne par valeur à relever, avec son type. Ex. : « puissance installée » (Nombre), « date de mise en service » (Date).' }),
    list, addButton);

  function renumber() {
    [...list.children].forEach((li, i) => {
      const n = i + 1;
      li.querySelector('.etiquette-nom').textContent = `Valeur ${n}`;
      li.querySelector('.etiquette-type').textContent = `Type de la valeur ${n}`;
      const remove = li.querySelector('.retirer');
      remove.textContent = `Retirer la valeur ${n}`;
      remove.hidden = list.children.length === 1;
    });
    addButton.disabled = list.children.length >= MAX_VALUES;
  }

  function addRow(name = '', type = 'texte') {
    const nameId = newId('valeur');
    const typeId = newId('type');
    const input = h('input', { id: nameId, type: 'text', class: 'nom-valeur', value: name, maxlength: 120, autocomplete: 'off' });
    const select = h('select', { id: typeId, class: 'type-valeur' }, TYPES.map(([v, l]) => h('option', { value: v, selected: v === type }, l)));
    const li = h('li', { class: 'ligne-valeur' },
      h('span', { class: 'champ-ligne' }, h('label', { for: nameId, class: 'etiquette-nom' }), input),
      h('span', { class: 'champ-ligne' }, h('label', { for: typeId, class: 'etiquette-type' }), select),
      h('button', { type: 'button', class: 'bouton bouton-secondaire retirer', on: { click: () => {
        const next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        renumber();
        if (next) next.querySelector('input').focus();
      } } }));
    list.append(li);
    renumber();
    return input;
  }

  addButton.addEventListener('click', () => { addRow().focus(); });
  for (let i = 0; i < 3; i += 1) addRow();
  return {
    el: fieldset,
    firstInput: () => list.querySelector('input'),
    values: () => [...list.children]
      .map((li) => ({ name: li.querySelector('input').value.trim(), type: li.querySelector('select').value }))
      .filter((v) => v.name),
  };
}

export function extractionView(task, main, ctx) {
  const zones = messageZones();
  const editor = valuesEditor();
  const picker = documentPicker({ label: 'Document', required: true });
  const submit = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, task.action);
  const form = h('form', { class: 'formulaire formulaire-tache', novalidate: true },
    h('p', { class: 'aide', text: 'Les champs marqués « (obligatoire) » doivent être remplis.' }),
    picker.wrap, editor.el, zones.alert, zones.status, h('div', { class: 'actions' }, submit));

  const headingId = newId('resultat');
  const heading = h('h2', { id: headingId, tabindex: '-1', text: 'Résultat' });
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const alerts = h('div', { class: 'zone-alerte', role: 'alert' });
  const stop = h('button', { type: 'button', class: 'bouton bouton-arret', hidden: true }, 'Arrêter l\'extraction');
  const output = h('div', { class: 'sortie' });
  const meta = h('p', { class: 'meta' });
  const actions = h('div', { class: 'actions actions-resultat', hidden: true });
  const actionStatus = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const panel = h('section', { class: 'resultat', 'aria-labelledby': headingId, hidden: true },
    heading, aiBadge(), status, alerts, stop, output, meta, actions, actionStatus);
  let controller = null;
  let busy = false;
  stop.addEventListener('click', () => { if (controller) controller.abort(); });
  ctx.signal.addEventListener('abort', () => { if (controller) controller.abort(); });

  const fail = (msg) => {
    clear(alerts);
    append(alerts, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg));
  };

  function render(values, rows) {
    clear(output);
    const table = h('table', { class: 'tableau' },
      h('caption', { text: CAPTION }),
      h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows.map((r, i) => h('tr', { class: r[1] === null ? 'non-trouvee' : '' },
        h('th', { scope: 'row', text: r[0] }),
        h('td', { text: shown(values[i].type, r[1]) }),
        h('td', { text: r[2] ?? '' }),
        h('td', { text: r[3] ?? '' })))));
    append(output, h('div', { class: 'tableau-defilant' }, table));
  }

  function buildActions(title, rows) {
    clear(actions);
    const table = { columns: COLUMNS, rows };
    const download = async (format, label) => {
      actionStatus.textContent = `Préparation du fichier ${label}…`;
      try {
        const { blob, filename } = await fetchFile('POST', `/v1/exports/tables/${format}`, { title, table }, `donnees-civia.${format}`);
        downloadBlob(blob, filename);
        actionStatus.textContent = `Le fichier « ${filename} » a été téléchargé.`;
      } catch (e) {
        actionStatus.textContent = '';
        fail(e instanceof ApiError ? e.french : 'Le téléchargement a échoué.');
      }
    };
    append(actions,
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: async () => {
        // As the CSV writes them: decimal comma, VRAI/FAUX, JJ/MM/AAAA, formulas inert.
        const cell = (c) => {
          if (c === null) return '';
          if (typeof c === 'number') return String(c).replace('.', ',');
          if (typeof c === 'boolean') return c ? 'VRAI' : 'FAUX';
          if (/^\d{4}-\d{2}-\d{2}$/.test(c)) return `${c.slice(8, 10)}/${c.slice(5, 7)}/${c.slice(0, 4)}`;
          const t = String(c).replace(/\s+/g, ' ');
          return /^[=+\-@]/.test(t) ? `'${t}` : t;
        };
        const tsv = [COLUMNS, ...rows].map((r) => r.map(cell).join('\t')).join('\n');
        const ok = await copyText(tsv);
        actionStatus.textContent = ok ? 'Le tableau a été copié : collez-le dans un tableur.' : 'La copie a échoué : sélectionnez le tableau et copiez-le avec Ctrl+C.';
      } } }, 'Copier le tableau'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => download('ods', 'ODS') } }, 'Télécharger le tableau en ODS (LibreOffice)'),
      h('button', { type: 'button', class: 'bouton bouton-secondaire', on: { click: () => download('csv', 'CSV') } }, 'Télécharger le tableau en CSV'));
    actions.hidden = false;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    try {
      zones.clearAll();
      const values = editor.values();
      const doc = await picker.ready();
      const missing = [];
      let firstBad = null;
      picker.input.removeAttribute('aria-invalid');
      editor.firstInput().removeAttribute('aria-invalid');
      if (!doc || !doc.text) { missing.push('Document'); firstBad = picker.input; }
      if (!values.length) { missing.push('Valeurs demandées'); firstBad = firstBad || editor.firstInput(); }
      if (missing.length) {
        firstBad.setAttribute('aria-invalid', 'true');
        if (!values.length) editor.firstInput().setAttribute('aria-invalid', 'true');
        zones.error(`Veuillez remplir : ${missing.join(', ')}.`);
        firstBad.focus();
        return;
      }
      await run(values, doc.text, picker.name());
    } finally {
      busy = false;
    }
  });

  async function run(values, docText, docName) {
    const l = limits();
    controller = new AbortController();
    const { signal } = controller;
    clear(output); clear(alerts); meta.textContent = ''; actionStatus.textContent = '';
    actions.hidden = true;
    panel.hidden = false;
    stop.hidden = false;
    output.setAttribute('aria-busy', 'true');
    stop.focus();
    // Room for each value's passage, value and unit.
    const maxTokens = answerTokens(120 + 110 * values.length);
    const title = `Données extraites — ${docName || 'document'}`.slice(0, 120);
    try {
      let material = docText;
      let condensed = false;
      const budget = budgetChars(maxTokens, SYSTEM.length + prompt(values, '', false).length);
      if (material.length > budget) {
        const partTokens = answerTokens(350);
        const parts = splitText(material, budgetChars(partTokens, 600));
        const names = values.map((v) => v.name).join('\n');
        const partials = [];
        for (let i = 0; i < parts.length; i += 1) {
          status.textContent = `Document long : lecture de la partie ${i + 1} sur ${parts.length}…`;
          const r = await streamChat({
            model: l.model, maxTokens: partTokens, temperature: 0.2, signal,
            messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content:
              `Voici la partie ${i + 1} sur ${parts.length} d'un document technique. Recopiez uniquement les passages qui donnent les valeurs suivantes (avec leur unité), sans rien inventer :\n${names}\n\n${parts[i]}` }],
          });
          if (r.aborted) { status.textContent = 'Extraction arrêtée.'; return; }
          partials.push(`Partie ${i + 1} :\n${r.text.trim()}`);
        }
        material = partials.join('\n\n').slice(0, budget);
        condensed = true;
      }
      status.textContent = 'Extraction en cours…';
      const result = await streamChat({
        model: l.model, maxTokens, temperature: 0, signal,
        messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: prompt(values, material, condensed) }],
        extra: { response_format: { type: 'json_schema', json_schema: { name: 'extraction', strict: true, schema: extractionSchema(values) } } },
        civia: l.history_enabled === false ? undefined : { save: true, title },
      });
      for (const n of warningNodes(result.civia)) append(alerts, n);
      if (result.aborted) { status.textContent = 'Extraction arrêtée.'; return; }
      let answer = null;
      try { answer = JSON.parse(result.text); } catch { answer = null; }
      if (!answer || typeof answer !== 'object') {
        status.textContent = '';
        fail(result.finishReason === 'length'
          ? 'La réponse a été coupée avant la fin : demandez moins de valeurs à la fois, puis réessayez.'
          : 'La réponse ne peut pas être lue. Veuillez réessayer.');
        return;
      }
      const rows = rowsOf(values, answer);
      render(values, rows);
      const found = rows.filter((r) => r[1] !== null).length;
      status.textContent = `Extraction terminée : ${found} valeur${found > 1 ? 's' : ''} trouvée${found > 1 ? 's' : ''} sur ${rows.length}. Vérifiez chaque valeur dans le document avant de l'utiliser.`;
      meta.textContent = aiMarking(result.civia, 'Tableau généré');
      buildActions(title, rows);
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      status.textContent = '';
      fail(e instanceof ApiError ? e.french : 'L\'extraction a échoué. Veuillez réessayer.');
    } finally {
      controller = null;
      stop.hidden = true;
      output.removeAttribute('aria-busy');
      const active = document.activeElement;
      if (!active || active === document.body || active === stop || panel.contains(active)) heading.focus();
    }
  }

  append(main,
    h('p', { class: 'fil-ariane' }, h('a', { href: '#/taches' }, '← Toutes les tâches')),
    h('h1', { text: task.title }),
    h('p', { class: 'introduction', text: task.summary }),
    form,
    panel,
  );
}
