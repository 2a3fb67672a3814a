// "Compte rendu de réunion" from a recording: the box transcribes it (whisper, on the box,
// `POST /v1/audio/transcriptions`, streamed), then the local model drafts structured minutes
// from the transcript (`POST /v1/meetings/minutes`, streamed section by section). One stop
// button for both steps; the transcript and the minutes side by side, each a draft to check,
// with copy and the box's DOCX/ODT/text exports.
import { h, clear, append, field, newId, messageZones } from '../dom.js';
import { streamEvents, ApiError } from '../api.js';
import { limits } from '../state.js';
import { renderMarkdown } from '../markdown.js';
import { aiBadge, aiMarking, draftActions, warningNodes } from '../output.js';
import { formatBytes } from '../documents.js';

export const AUDIO_ACCEPT = '.wav,.mp3,.ogg,.opus,.flac,.m4a,.aac';
const AUDIO_EXTENSIONS = ['wav', 'mp3', 'ogg', 'opus', 'flac', 'm4a', 'aac'];
const FORMATS = 'WAV, MP3, OGG, Opus, FLAC, M4A ou AAC';
const LANGUAGES = [
  ['fr', 'Français'], ['auto', 'Détection automatique'], ['en', 'Anglais'], ['de', 'Allemand'],
  ['es', 'Espagnol'], ['it', 'Italien'], ['pt', 'Portugais'], ['ar', 'Arabe'],
];
// The minutes' sections, in their order; the box sends each title, these are fallbacks.
const SECTIONS = [
  ['subject', 'Objet'], ['participants', 'Participants'], ['decisions', 'Décisions'],
  ['actions', 'Actions'], ['next_steps', 'Prochaines étapes'],
];
// The live status text changes at most this often (screen readers read every change).
const STATUS_EVERY_MS = 2000;

/** Whether the box transcribes recordings (a speech model is configured). */
/**
 * A section of the minutes from its data (the box's JSON, shaped by the section's schema):
 * lists, and a table for the actions; null when there is no data (then its Markdown is shown).
 */
function sectionNodes(key, data, title) {
  if (!data || typeof data !== 'object') return null;
  const str = (v) => (typeof v === 'string' ? v.trim() : '');
  const list = (items) => (items.length ? h('ul', {}, items.map((t) => h('li', { text: t }))) : null);
  const none = () => h('p', { text: 'Non précisé' });
  const arr = (v) => (Array.isArray(v) ? v : []);
  switch (key) {
    case 'subject':
      return str(data.objet) ? h('p', { text: str(data.objet) }) : none();
    case 'participants':
      return list(arr(data.participants).filter((p) => str(p && p.nom))
        .map((p) => (str(p.fonction) ? `${str(p.nom)}, ${str(p.fonction)}` : str(p.nom)))) || none();
    case 'decisions':
      return list(arr(data.decisions).map(str).filter(Boolean)) || none();
    case 'actions': {
      const rows = arr(data.actions).filter((a) => str(a && a.action));
      if (!rows.length) return none();
      return h('div', { class: 'tableau-defilant' }, h('table', { class: 'tableau' },
        h('caption', { text: title }),
        h('thead', {}, h('tr', {}, ['Action', 'Responsable', 'Échéance'].map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, rows.map((a) => h('tr', {},
          h('td', { text: str(a.action) }), h('td', { text: str(a.responsable) || '—' }), h('td', { text: str(a.echeance) || '—' }))))));
    }
    case 'next_steps': {
      const steps = list(arr(data.etapes).map(str).filter(Boolean));
      const next = str(data.prochaine_reunion) ? h('p', { text: `Prochaine réunion : ${str(data.prochaine_reunion)}` }) : null;
      if (!steps && !next) return none();
      const frag = document.createDocumentFragment();
      if (steps) frag.append(steps);
      if (next) frag.append(next);
      return frag;
    }
    default:
      return null;
  }
}

export function speechEnabled() {
  return !!limits().speech_model;
}

/** The summary of the task card. */
export function meetingSummary() {
  return speechEnabled()
    ? 'À partir de l\'enregistrement d\'une réunion : transcription sur la box, puis brouillon de compte rendu structuré.'
    : 'À partir de l\'enregistrement d\'une réunion. La transcription n\'est pas activée sur cette box.';
}

/** "45 s", "2 min 30", "10 min", "1 h 05", "4 h". */
export function frenchDuration(secs) {
  const s = Math.max(0, Math.round(Number(secs) || 0));
  const hr = Math.floor(s / 3600);
  const min = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (hr) return min ? `${hr} h ${String(min).padStart(2, '0')}` : `${hr} h`;
  if (min) return sec ? `${min} min ${String(sec).padStart(2, '0')}` : `${min} min`;
  return `${sec} s`;
}

/** "01:05" or "1:02:05": a segment's start time. */
function clock(secs) {
  const s = Math.max(0, Math.floor(Number(secs) || 0));
  const hr = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hr ? `${hr}:${mm}:${ss}` : `${mm}:${ss}`;
}

function maxAudioBytes() {
  return limits().max_audio_bytes || 512 * 1024 * 1024;
}

/** A refusal found before sending the recording (format, size), in French, or null. */
export function checkAudio(file) {
  const ext = (file.name.includes('.') ? file.name.split('.').pop() : '').toLowerCase();
  if (!AUDIO_EXTENSIONS.includes(ext)) {
    return `Le fichier « ${file.name} » n'est pas un enregistrement dans un format accepté. Formats acceptés : ${FORMATS}.`;
  }
  const max = maxAudioBytes();
  if (file.size > max) {
    return `Le fichier « ${file.name} » est trop volumineux (${formatBytes(file.size)}) : un enregistrement peut faire ${formatBytes(max)} au plus.`;
  }
  if (file.size === 0) return `Le fichier « ${file.name} » est vide.`;
  return null;
}

/** "2025-03-12" -> "12 mars 2025" (the value of a date field, read as a calendar date). */
function frenchDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
  if (!m) return (iso || '').trim();
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toLocaleDateString('fr-FR', { dateStyle: 'long', timeZone: 'UTC' });
}

function reminder() {
  const id = newId('rappel');
  return h('section', { class: 'alerte alerte-info rappel', 'aria-labelledby': id },
    h('h2', { id, text: 'Avant d\'envoyer un enregistrement' }),
    h('ul', {},
      h('li', { text: 'Les participants doivent avoir été informés que la réunion est enregistrée et que l\'enregistrement sera transcrit par l\'outil d\'intelligence artificielle de la mairie (RGPD, article 13).' }),
      h('li', { text: 'L\'enregistrement est traité uniquement sur la box de la mairie et en est effacé dès qu\'il est transcrit. La box ne conserve ni la transcription ni le compte rendu : téléchargez-les avant de quitter la page.' }),
      h('li', { text: 'Civia transcrit seulement les paroles : il n\'analyse ni les émotions ni le profil des personnes qui parlent (règlement européen sur l\'IA, article 5).' })));
}

function disabledView(main) {
  append(main,
    h('div', { class: 'alerte alerte-info' },
      h('p', {}, h('strong', { text: 'La transcription des enregistrements n\'est pas activée sur cette box.' })),
      h('p', { text: 'Pour qu\'elle le soit, l\'administrateur de la box doit installer un modèle de transcription (section [speech] de la configuration).' })),
    h('p', {}, 'En attendant, vous pouvez rédiger un compte rendu à partir de vos notes écrites : ',
      h('a', { href: '#/compte-rendu' }, 'Compte rendu à partir de notes'), '.'),
  );
}

/** One output column: heading, AI badge, text area, marking line, actions. */
function outputColumn(title, placeholder) {
  const headingId = newId('colonne');
  const heading = h('h2', { id: headingId, tabindex: '-1', text: title });
  const status = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const alerts = h('div', { class: 'zone-alerte', role: 'alert' });
  const text = h('div', { class: 'sortie', 'aria-labelledby': headingId });
  const meta = h('p', { class: 'meta' });
  const actions = h('div', { class: 'actions actions-resultat', hidden: true });
  const actionStatus = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const el = h('section', { class: 'reunion-colonne', 'aria-labelledby': headingId },
    heading, aiBadge(), status, alerts, text, meta, actions, actionStatus);
  const col = {
    el, heading, status, alerts, text, meta, actions, actionStatus,
    reset() {
      clear(text); clear(alerts); clear(actions);
      status.textContent = ''; meta.textContent = ''; actionStatus.textContent = '';
      append(text, h('p', { class: 'vide', text: placeholder }));
      actions.hidden = true;
      text.removeAttribute('aria-busy');
    },
    error(msg) {
      clear(alerts);
      append(alerts, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg));
    },
  };
  col.reset();
  return col;
}

export function meetingView(main, ctx) {
  const l = limits();
  append(main,
    h('p', { class: 'fil-ariane' }, h('a', { href: '#/taches' }, '← Toutes les tâches')),
    h('h1', { text: 'Compte rendu de réunion' }),
    h('p', { class: 'introduction', text: 'Envoyez l\'enregistrement d\'une réunion : la box le transcrit, puis rédige un brouillon de compte rendu (objet, participants, décisions, actions à mener, prochaines étapes) que vous relisez et corrigez.' }),
  );
  if (!speechEnabled()) { disabledView(main); return; }

  // The form.
  const maxSecs = l.max_audio_seconds;
  const file = field({
    label: 'Enregistrement de la réunion', name: 'enregistrement', type: 'file', required: true,
    hint: `${FORMATS}, ${formatBytes(maxAudioBytes())} au plus${maxSecs ? `, ${frenchDuration(maxSecs)} d'enregistrement au plus` : ''}.`,
    attrs: { accept: AUDIO_ACCEPT },
  });
  const fileZones = messageZones();
  append(file.wrap, fileZones.status, fileZones.alert);
  const title = field({ label: 'Titre de la réunion', name: 'titre', hint: 'Facultatif. Ex. : Conseil municipal, commission des travaux.', autocomplete: 'off' });
  const date = field({ label: 'Date de la réunion', name: 'date', type: 'date', hint: 'Facultatif.' });
  const language = field({ label: 'Langue parlée', name: 'langue', type: 'select', value: 'fr', options: LANGUAGES, hint: 'La détection automatique convient aux réunions en plusieurs langues, mais elle est moins sûre.' });
  const submit = h('button', { type: 'submit', class: 'bouton bouton-principal bouton-large' }, 'Transcrire et rédiger le compte rendu');
  const form = h('form', { class: 'formulaire formulaire-tache', novalidate: true },
    h('p', { class: 'aide', text: 'Les champs marqués « (obligatoire) » doivent être remplis.' }),
    file.wrap, title.wrap, date.wrap, language.wrap,
    h('div', { class: 'actions' }, submit));

  // Progress of the running step, the stop button and the errors of the steps.
  const progressId = newId('avancement');
  const progressLabel = h('label', { for: progressId, class: 'etiquette', text: 'Avancement de la transcription' });
  const progress = h('progress', { id: progressId, class: 'barre-avancement', max: '100' });
  const progressText = h('p', { class: 'statut', role: 'status', 'aria-live': 'polite' });
  const stop = h('button', { type: 'button', class: 'bouton bouton-arret' }, 'Arrêter la transcription');
  const progressBox = h('div', { class: 'progression', hidden: true }, progressLabel, progress, progressText, stop);
  const runAlert = h('div', { class: 'zone-alerte', role: 'alert' });

  const tcol = outputColumn('Transcription', 'La transcription s\'affichera ici au fur et à mesure.');
  const mcol = outputColumn('Compte rendu', 'Le compte rendu sera rédigé à partir de la transcription.');
  const retry = h('button', { type: 'button', class: 'bouton bouton-secondaire', hidden: true }, 'Rédiger le compte rendu à partir de cette transcription');
  mcol.el.insertBefore(retry, mcol.meta);
  const results = h('div', { class: 'reunion-resultats', hidden: true }, tcol.el, mcol.el);

  append(main, reminder(), form, progressBox, runAlert, results);

  // State of the current run.
  let controller = null;
  let running = false;
  let meeting = { title: '', date: '' };
  let transcript = { text: '', segments: [], civia: null };
  let minutes = { text: '', sections: new Map(), civia: null };
  let lastPara = null;

  ctx.signal.addEventListener('abort', () => { if (controller) controller.abort(); });
  stop.addEventListener('click', () => { if (controller) controller.abort(); });

  // Throttled live status (the progress bar itself follows every event).
  let pending = null;
  let timer = 0;
  let lastAt = 0;
  const flush = () => {
    timer = 0;
    if (pending !== null) { progressText.textContent = pending; pending = null; lastAt = Date.now(); }
  };
  const say = (msg, now = false) => {
    pending = msg;
    const wait = now ? 0 : Math.max(0, lastAt + STATUS_EVERY_MS - Date.now());
    if (timer) { clearTimeout(timer); timer = 0; }
    if (wait === 0) flush(); else timer = setTimeout(flush, wait);
  };
  const setProgress = (value, max) => {
    if (value === null || !max) { progress.removeAttribute('value'); return; }
    progress.max = max;
    progress.value = Math.min(value, max);
  };

  const exportName = (kind) => {
    const t = meeting.title || 'réunion';
    return `${kind} — ${t}${meeting.date ? ` du ${meeting.date}` : ''}`;
  };
  const transcriptText = () => transcript.text || transcript.segments.map((s) => s.text.trim()).filter(Boolean).join('\n');
  const minutesText = () => minutes.text || orderedSections().map(([, s]) => `## ${s.title}\n\n${s.text.trim()}`).join('\n\n');
  // The box's minutes start with their own "# Compte rendu de réunion — …" line: it becomes
  // the document's title rather than a second one under it.
  const minutesTitle = () => {
    const m = /^#\s+(.+)\n/.exec(minutesText());
    return m ? m[1].trim() : exportName('Compte rendu');
  };
  const minutesBody = () => minutesText().replace(/^#\s+.+\n+/, '');

  function orderedSections() {
    const known = SECTIONS.map(([k]) => k).filter((k) => minutes.sections.has(k)).map((k) => [k, minutes.sections.get(k)]);
    const others = [...minutes.sections.entries()].filter(([k]) => !SECTIONS.some(([s]) => s === k));
    return [...known, ...others];
  }

  function showActions(col, subject, text, title) {
    clear(col.actions);
    append(col.actions, draftActions({
      text, title, status: col.actionStatus, subject,
      onError: (msg) => col.error(msg),
    }));
    col.actions.hidden = false;
  }

  // Transcript display: one paragraph per segment, with its start time.
  function addSegment(seg) {
    if (transcript.segments.length === 0) clear(tcol.text);
    transcript.segments.push(seg);
    lastPara = h('p', { class: 'segment' },
      h('span', { class: 'horodatage', text: clock(seg.start) }), ' ', (seg.text || '').trim());
    append(tcol.text, lastPara);
  }
  function addDelta(delta) {
    if (!lastPara) addSegment({ start: 0, end: 0, text: '' });
    append(lastPara, delta);
    transcript.segments[transcript.segments.length - 1].text += delta;
  }
  function renderAllSegments(segs) {
    clear(tcol.text);
    transcript.segments = [];
    lastPara = null;
    for (const s of segs) addSegment(s);
  }

  function renderMinutes() {
    clear(mcol.text);
    const sections = orderedSections();
    if (!sections.length && minutes.text) {
      append(mcol.text, renderMarkdown(minutes.text, { headingBase: 3, tableCaption: 'Tableau du compte rendu' }));
      return;
    }
    for (const [key, s] of sections) {
      append(mcol.text, h('h3', { text: s.title }),
        sectionNodes(key, s.data, s.title) || renderMarkdown(s.text || '', { headingBase: 4, tableCaption: s.title }));
    }
  }

  function focusIfLost(target) {
    const a = document.activeElement;
    if (!a || a === document.body || a === stop || a === retry) target.focus();
  }

  function finishRun() {
    running = false;
    controller = null;
    progressBox.hidden = true;
    if (timer) { clearTimeout(timer); timer = 0; }
    pending = null;
  }

  function showError(err, fallback) {
    clear(runAlert);
    // Worded from the code and details (a field named for `invalid_value`, see messages.js).
    const msg = err instanceof ApiError ? err.french : fallback;
    append(runAlert, h('p', { class: 'alerte alerte-erreur' }, h('strong', { text: 'Erreur : ' }), msg));
  }

  // Step 1: the transcription.
  async function transcribe(f, lang) {
    progressLabel.textContent = 'Avancement de la transcription';
    stop.textContent = 'Arrêter la transcription';
    setProgress(null);
    say(`Envoi de l'enregistrement (${formatBytes(f.size)})…`, true);
    tcol.text.setAttribute('aria-busy', 'true');
    tcol.status.textContent = 'Transcription en cours…';
    const body = new FormData();
    body.append('file', f, f.name);
    body.append('model', limits().speech_model);
    body.append('language', lang);
    body.append('response_format', 'json');
    body.append('stream', 'true');
    let sawDone = false;
    let first = true;
    let r;
    try {
      r = await streamEvents('/v1/audio/transcriptions', body, {
        signal: controller.signal,
        onEvent: (ev) => {
          const c = ev.civia || {};
          if (ev.type === 'transcript.text.delta') {
            if (c.segment) addSegment(c.segment);
            else if (ev.delta) addDelta(ev.delta);
            const p = c.progress;
            if (p) {
              const total = p.duration_seconds;
              setProgress(p.processed_seconds || 0, total || 0);
              say(total
                ? `Transcription : ${frenchDuration(p.processed_seconds)} sur ${frenchDuration(total)}`
                : `Transcription : ${frenchDuration(p.processed_seconds)} traitées`, first);
            } else {
              say('Transcription en cours…', first);
            }
            first = false;
          } else if (ev.type === 'transcript.text.done') {
            sawDone = true;
            transcript.text = typeof ev.text === 'string' ? ev.text : transcriptText();
            transcript.civia = c;
            if (Array.isArray(c.segments) && c.segments.length) renderAllSegments(c.segments);
            if (c.duration_seconds) setProgress(c.duration_seconds, c.duration_seconds);
          }
        },
      });
    } finally {
      tcol.text.removeAttribute('aria-busy');
    }
    if (!transcript.segments.length && !transcript.text) clear(tcol.text);
    for (const n of warningNodes(transcript.civia)) append(tcol.alerts, n);
    if (r.aborted) {
      tcol.status.textContent = 'Transcription arrêtée. Le texte déjà transcrit reste affiché.';
      return 'stopped';
    }
    if (!sawDone) throw new ApiError(500, { error: { code: 'stream_interrupted', message: '' } }, null);
    const c = transcript.civia || {};
    const dur = c.duration_seconds ? ` (${frenchDuration(c.duration_seconds)} d'enregistrement)` : '';
    tcol.status.textContent = `Transcription terminée${dur}.${c.audio_deleted === true ? ' L\'enregistrement a été effacé de la box.' : ''} Relisez et vérifiez le texte.`;
    tcol.meta.textContent = aiMarking(c.model ? c : { ...c, model: limits().speech_model }, 'Transcription faite');
    return 'done';
  }

  // Step 2: the minutes.
  async function draftMinutes() {
    progressLabel.textContent = 'Avancement de la rédaction';
    stop.textContent = 'Arrêter la rédaction';
    minutes = { text: '', sections: new Map(), civia: null };
    clear(mcol.text); clear(mcol.alerts); clear(mcol.actions);
    mcol.actions.hidden = true; mcol.meta.textContent = ''; mcol.actionStatus.textContent = '';
    mcol.text.setAttribute('aria-busy', 'true');
    mcol.status.textContent = 'Rédaction en cours…';
    // The box reports its steps by stage: notes on each part of the transcript, condensing
    // of the notes when they are too long (pass after pass), then one step per section;
    // `done` counts the steps finished in that stage.
    const STAGES = ['notes', 'condense', 'sections'];
    const steps = { notes: [0, 0], condense: [0, 0], sections: [0, SECTIONS.length] };
    let condensed = 0; // steps of the earlier condensing passes
    const showSteps = () => {
      const total = condensed + STAGES.reduce((n, k) => n + steps[k][1], 0);
      const done = Math.min(total, condensed + STAGES.reduce((n, k) => n + steps[k][0], 0));
      setProgress(done, total);
      say(`Rédaction : étape ${Math.min(total, done + 1)} sur ${total}`);
    };
    const onStep = (ev) => {
      const stage = STAGES.includes(ev.stage) ? ev.stage : 'sections';
      const done = Math.max(0, Number(ev.done) || 0);
      const total = Math.max(done, Number(ev.total) || 0);
      if (stage === 'condense' && done === 0) { condensed += steps.condense[1]; steps.condense = [0, 0]; }
      // A later stage means the earlier ones are over.
      for (const k of STAGES.slice(0, STAGES.indexOf(stage))) steps[k][0] = steps[k][1];
      steps[stage] = [done, total || steps[stage][1]];
      showSteps();
    };
    setProgress(null);
    say('Rédaction du compte rendu…', true);
    const body = { transcript: transcriptText(), stream: true };
    if (meeting.title) body.title = meeting.title;
    if (meeting.date) body.date = meeting.date;
    let sawDone = false;
    let r;
    try {
      r = await streamEvents('/v1/meetings/minutes', body, {
        signal: controller.signal,
        onEvent: (ev) => {
          if (ev.type === 'minutes.progress') {
            onStep(ev);
          } else if (ev.type === 'minutes.section') {
            const fallback = (SECTIONS.find(([k]) => k === ev.key) || [])[1];
            minutes.sections.set(ev.key || `section-${minutes.sections.size}`, { title: ev.title || fallback || 'Section', text: ev.text || '', data: ev.data ?? null });
            if (minutes.sections.size > steps.sections[0]) { steps.sections[0] = minutes.sections.size; showSteps(); }
            renderMinutes();
          } else if (ev.type === 'minutes.done') {
            sawDone = true;
            minutes.text = typeof ev.minutes === 'string' ? ev.minutes : '';
            minutes.civia = ev.civia || null;
            renderMinutes();
          }
        },
      });
    } finally {
      mcol.text.removeAttribute('aria-busy');
    }
    for (const n of warningNodes(minutes.civia)) append(mcol.alerts, n);
    if (r.aborted) {
      mcol.status.textContent = 'Rédaction arrêtée. Les sections déjà rédigées restent affichées.';
      if (minutes.sections.size) showActions(mcol, 'le compte rendu', minutesBody, minutesTitle);
      return 'stopped';
    }
    if (!sawDone) throw new ApiError(500, { error: { code: 'stream_interrupted', message: '' } }, null);
    mcol.status.textContent = 'Rédaction terminée. Relisez et vérifiez le compte rendu avant de l\'utiliser.';
    mcol.meta.textContent = aiMarking(minutes.civia);
    if (minutesText().trim()) showActions(mcol, 'le compte rendu', minutesBody, minutesTitle);
    return 'done';
  }

  async function runMinutes() {
    running = true;
    retry.hidden = true;
    clear(runAlert);
    controller = new AbortController();
    progressBox.hidden = false;
    stop.focus();
    try {
      const how = await draftMinutes();
      finishRun();
      if (how === 'stopped') retry.hidden = false;
      focusIfLost(mcol.heading);
    } catch (e) {
      finishRun();
      if (e && e.name === 'AbortError') return;
      if (!(e instanceof ApiError)) console.error('Civia:', e);
      mcol.status.textContent = '';
      if (!minutes.sections.size && !minutes.text) mcol.reset();
      showError(e, 'La rédaction du compte rendu a échoué. Veuillez réessayer.');
      retry.hidden = false;
      focusIfLost(mcol.heading);
    }
  }

  retry.addEventListener('click', () => { if (!running && transcriptText().trim()) runMinutes(); });

  file.input.addEventListener('change', () => {
    fileZones.clearAll();
    file.input.removeAttribute('aria-invalid');
    const f = file.input.files && file.input.files[0];
    if (!f) return;
    const refusal = checkAudio(f);
    if (refusal) {
      fileZones.error(refusal);
      file.input.setAttribute('aria-invalid', 'true');
    } else {
      fileZones.info(`Enregistrement choisi : « ${f.name} » (${formatBytes(f.size)}).`);
    }
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (running) return;
    // A refusal goes next to the file field (written again, so that it is announced again).
    const f = file.input.files && file.input.files[0];
    const refusal = f ? checkAudio(f) : 'Veuillez choisir l\'enregistrement de la réunion.';
    if (refusal) {
      fileZones.clearAll();
      setTimeout(() => fileZones.error(refusal), 50);
      file.input.setAttribute('aria-invalid', 'true');
      file.input.focus();
      return;
    }
    meeting = { title: title.input.value.trim().slice(0, 200), date: frenchDate(date.input.value) };
    transcript = { text: '', segments: [], civia: null };
    minutes = { text: '', sections: new Map(), civia: null };
    lastPara = null;
    tcol.reset(); mcol.reset();
    retry.hidden = true;
    clear(runAlert);
    results.hidden = false;
    progressBox.hidden = false;
    running = true;
    controller = new AbortController();
    stop.focus();
    let how;
    try {
      how = await transcribe(f, language.input.value || 'fr');
    } catch (e) {
      finishRun();
      if (e && e.name === 'AbortError') return;
      if (!(e instanceof ApiError)) console.error('Civia:', e);
      tcol.status.textContent = '';
      if (transcript.segments.length) {
        // Cut short: what was transcribed stays usable.
        showActions(tcol, 'la transcription', transcriptText, () => exportName('Transcription'));
        retry.hidden = false;
      } else tcol.reset();
      showError(e, 'La transcription a échoué. Veuillez réessayer.');
      const a = document.activeElement;
      if (!a || a === document.body || a === stop) file.input.focus();
      return;
    }
    finishRun();
    const hasText = !!transcriptText().trim();
    if (hasText) showActions(tcol, 'la transcription', transcriptText, () => exportName('Transcription'));
    if (how === 'stopped') {
      if (hasText) retry.hidden = false;
      focusIfLost(tcol.heading);
      return;
    }
    if (!hasText) {
      mcol.status.textContent = 'Aucune parole n\'a été reconnue dans l\'enregistrement : il n\'y a pas de compte rendu à rédiger.';
      focusIfLost(tcol.heading);
      return;
    }
    await runMinutes();
  });
}
