// "Compte rendu de réunion" from a recording, in a real browser against a live civiad with
// the whisper base model ([speech]) and SmolLM2: a French WAV spoken by espeak-ng is
// transcribed with progress, the minutes come in five sections, the DOCX export carries the
// AI marking, the recording is gone from the box; a corrupt file and a too-big file get
// French refusals; a stream cut by an error, the stop button and a box without
// transcription (served by the test) are handled; axe finds nothing on every state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCiviad } from './lib/civiad.mjs';
import { readZip } from './lib/zip.mjs';
import {
  launch, newPage, screenshot, checkAxe, expectTitleAndH1, goto, login, acceptCharterIfShown,
  tabUntil, assertFocusVisible, saveJson, MODEL_TIMEOUT,
} from './lib/browser.mjs';

const PASS = 'correct-horse-battery-9';
// Small on purpose, so that the too-big file stays small too.
const MAX_AUDIO = 4 * 1024 * 1024;
const SPEECH_READY_MS = 180_000;
// About 23 s of French: people, a decision, an action, the next meeting.
const SPOKEN = 'Compte rendu de la réunion du conseil municipal du douze mars. '
  + 'Étaient présents monsieur Jean Dupont, maire, madame Claire Martin, adjointe aux finances, et monsieur Paul Bernard. '
  + 'Premier point : la rénovation de l\'école. Après discussion, le conseil décide à l\'unanimité de rénover la toiture de l\'école. '
  + 'Action : madame Martin préparera le budget des travaux avant la fin du mois d\'avril. '
  + 'La prochaine réunion aura lieu le neuf avril.';
// Whisper base on synthetic speech is rough: at least two of these must come through.
const WORDS = ['conseil', 'municipal', 'reunion', 'dupont', 'martin', 'ecole', 'budget', 'travaux', 'toiture',
  'renovation', 'avril', 'bernard', 'maire', 'discussion', 'prochaine', 'finances', 'monsieur', 'action'];

const axeResults = [];
let server;
let browser;
let page;
let tmp;
let wav;

const fold = (s) => s.normalize('NFD').replace(/\p{Diacritic}/gu, '').toLowerCase();

/** Waits until the speech model is listed by /v1/models (the worker has loaded it). */
async function waitForSpeech() {
  const deadline = Date.now() + SPEECH_READY_MS;
  let last = '';
  while (Date.now() < deadline) {
    const me = await server.api('GET', '/v1/models');
    if (me.status === 200) {
      const ids = ((await me.json()).data || []).map((m) => m.id);
      last = ids.join(', ');
      if (ids.some((id) => /whisper/i.test(id))) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`the speech model never appeared in /v1/models (last: ${last}):\n${server.logTail(30)}`);
}

before(async () => {
  try { execFileSync('espeak-ng', ['--version']); } catch {
    throw new Error('espeak-ng is missing: run appliance/scripts/web-test-deps.sh');
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'civia-web-reunion-'));
  wav = path.join(tmp, 'conseil-municipal.wav');
  execFileSync('espeak-ng', ['-v', 'fr', '-w', wav, SPOKEN]);
  server = await startCiviad({ speech: { max_upload_bytes: MAX_AUDIO, window_secs: 30 } });
  await waitForSpeech();
  await server.createUser('agent.reunion', 'agent', PASS);
  browser = await launch();
  page = await newPage(browser, server);
  // Login, then the charter (each test can run alone).
  await login(page, 'agent.reunion', PASS);
  await acceptCharterIfShown(page);
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
});

after(async () => {
  saveJson('axe-reunion.json', axeResults);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Records every text the live progress line shows, and the progress bar's values. */
async function watchProgress() {
  await page.evaluate(() => {
    window.__civiaProgress = [];
    window.__civiaBar = [];
    window.__civiaTranscriptBusy = false;
    const obs = new MutationObserver(() => {
      const s = document.querySelector('.progression .statut');
      if (s && s.textContent && !window.__civiaProgress.includes(s.textContent)) window.__civiaProgress.push(s.textContent);
      const bar = document.querySelector('.progression progress');
      if (bar && bar.hasAttribute('value')) window.__civiaBar.push(bar.value / bar.max);
      const out = document.querySelector('.reunion-colonne .sortie');
      if (out && out.getAttribute('aria-busy') === 'true' && out.querySelector('.segment')) window.__civiaTranscriptBusy = true;
    });
    obs.observe(document.getElementById('contenu'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

function columns() {
  const cols = page.locator('section.reunion-colonne');
  return { transcript: cols.nth(0), minutes: cols.nth(1) };
}

async function pageState() {
  return page.evaluate(() => ({
    progress: document.querySelector('.progression .statut')?.textContent,
    statuses: [...document.querySelectorAll('.reunion-colonne .statut')].map((s) => s.textContent),
    alerts: [...document.querySelectorAll('main [role="alert"]')].map((a) => a.textContent).filter(Boolean),
  })).catch(() => '?');
}

async function waitForMinutes() {
  try {
    await columns().minutes.locator('.statut', { hasText: /Rédaction (terminée|arrêtée)/ }).waitFor({ timeout: MODEL_TIMEOUT * 2 });
  } catch (e) {
    throw new Error(`the minutes did not finish: ${e.message}\n--- page: ${JSON.stringify(await pageState())} ${JSON.stringify(page.problems)}\n--- civiad:\n${server.logTail(30)}`);
  }
}

function spoolFiles() {
  const dir = path.join(server.dir, 'state', 'spool', 'speech');
  try { return fs.readdirSync(dir); } catch { return []; }
}

test('an agent turns a recording into a transcript and minutes, downloads them', { timeout: 1_200_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  const limits = await page.evaluate(async () => (await (await fetch('/auth/me')).json()).limits);
  assert.equal(typeof limits.speech_model, 'string', `limits: ${JSON.stringify(limits)}`);
  assert.equal(limits.max_audio_bytes, MAX_AUDIO, `limits: ${JSON.stringify(limits)}`);
  assert.equal(typeof limits.max_audio_seconds, 'number', `limits: ${JSON.stringify(limits)}`);

  // The card, then the view: its h1 takes the focus.
  const card = page.locator('.carte-tache', { has: page.getByRole('link', { name: 'Compte rendu de réunion', exact: true }) });
  assert.match(await card.textContent(), /transcription sur la box/);
  await card.getByRole('link').click();
  await expectTitleAndH1(page, 'Compte rendu de réunion', 'Compte rendu de réunion');
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1');

  // The reminder comes before the form: participants informed (RGPD art. 13), recording
  // deleted once transcribed, no emotion or speaker profiling (AI Act art. 5).
  const reminder = page.getByRole('region', { name: 'Avant d\'envoyer un enregistrement' });
  assert.ok(await reminder.isVisible());
  const text = await reminder.textContent();
  assert.match(text, /participants doivent avoir été informés/);
  assert.match(text, /RGPD, article 13/);
  assert.match(text, /effacé dès qu'il est transcrit/);
  assert.match(text, /ni les émotions ni le profil/);
  assert.match(text, /article 5/);
  assert.ok(await page.evaluate(() => {
    const r = document.querySelector('.rappel');
    return !!(r.compareDocumentPosition(document.querySelector('main form')) & Node.DOCUMENT_POSITION_FOLLOWING);
  }), 'the reminder is before the upload');
  assert.equal(await page.getByLabel('Langue parlée').inputValue(), 'fr');
  assert.equal(await page.getByLabel(/^Enregistrement de la réunion/).getAttribute('accept'), '.wav,.mp3,.ogg,.opus,.flac,.m4a,.aac');
  await screenshot(page, '13-reunion');
  await checkAxe(page, 'reunion-vide', axeResults);

  // Upload: progress, then the transcript as it comes, then the minutes section by section.
  await page.getByLabel(/^Enregistrement de la réunion/).setInputFiles(wav);
  await page.getByText(/Enregistrement choisi : « conseil-municipal\.wav »/).waitFor();
  await page.getByLabel('Titre de la réunion').fill('Conseil municipal');
  await page.getByLabel('Date de la réunion').fill('2025-03-12');
  await watchProgress();
  const started = Date.now();
  await page.getByRole('button', { name: 'Transcrire et rédiger le compte rendu' }).click();
  // The stop button has the focus while the box works.
  await page.waitForFunction(() => /Arrêter la (transcription|rédaction)/.test(document.activeElement?.textContent || ''));
  const { transcript, minutes } = columns();
  await transcript.locator('.statut', { hasText: /Transcription terminée/ }).waitFor({ timeout: MODEL_TIMEOUT });
  const transcribedIn = (Date.now() - started) / 1000;
  await waitForMinutes();
  const total = (Date.now() - started) / 1000;
  console.log(`# transcription ${transcribedIn.toFixed(1)} s, transcription + minutes ${total.toFixed(1)} s`);

  const progress = await page.evaluate(() => window.__civiaProgress);
  const bar = await page.evaluate(() => window.__civiaBar);
  assert.ok(progress.some((p) => /^Transcription : .+ (sur .+|traitées)$/.test(p)), `transcription progress shown: ${JSON.stringify(progress)}`);
  assert.ok(progress.some((p) => /^Rédaction : étape \d+ sur \d+$/.test(p)), `minutes progress shown: ${JSON.stringify(progress)}`);
  assert.ok(bar.length > 0 && bar.every((v) => v >= 0 && v <= 1), `progress bar values: ${JSON.stringify(bar)}`);

  // The transcript: recognisable French, one paragraph per segment with its time.
  const said = await transcript.locator('.sortie').textContent();
  const found = WORDS.filter((w) => fold(said).includes(w));
  assert.ok(found.length >= 2, `the transcript has some of the spoken words (found ${JSON.stringify(found)}): ${said}`);
  assert.ok(await transcript.locator('.sortie .segment .horodatage').count() >= 1);
  assert.match(await transcript.locator('.statut').first().textContent(), /L'enregistrement a été effacé de la box\./);
  assert.ok(await page.evaluate(() => window.__civiaTranscriptBusy), 'the transcript showed while it was being made');
  // The recording is not left on the box.
  assert.deepEqual(spoolFiles(), [], 'the spool directory is empty');

  // The minutes: five sections, each under its heading.
  const headings = (await minutes.locator('.sortie h3').allTextContents()).map((t) => t.trim());
  assert.equal(headings.length, 5, `five sections: ${JSON.stringify(headings)}`);
  assert.equal(headings[0], 'Objet');
  assert.ok(headings.includes('Participants'), JSON.stringify(headings));
  assert.ok(headings.some((t) => /^Décisions/.test(t)), JSON.stringify(headings));
  assert.ok(headings.some((t) => /^Actions/.test(t)), JSON.stringify(headings));
  // Sections are shown from the box's data (lists, the actions table), never as JSON text.
  const minutesShown = await minutes.locator('.sortie').textContent();
  assert.ok(!minutesShown.includes('{"') && !minutesShown.includes('":'), minutesShown);
  const actionTable = minutes.locator('.sortie table');
  if (await actionTable.count()) {
    assert.deepEqual(await actionTable.first().locator('th[scope="col"]').allTextContents(), ['Action', 'Responsable', 'Échéance']);
  }
  // Both are marked as AI drafts to check, side by side on a wide screen.
  assert.equal(await page.locator('.reunion-colonne .badge-ia', { hasText: 'Brouillon IA — à vérifier' }).count(), 2);
  const boxes = await page.evaluate(() => [...document.querySelectorAll('.reunion-colonne')].map((c) => c.getBoundingClientRect().toJSON()));
  assert.ok(boxes[1].left > boxes[0].right - 1, `side by side: ${JSON.stringify(boxes)}`);
  assert.match(await minutes.locator('.meta').textContent(), /Texte généré par intelligence artificielle \(modèle /);
  await screenshot(page, '14-reunion-resultat');
  await checkAxe(page, 'reunion-resultat', axeResults);

  // Copy, then the DOCX of the minutes: the text, the visible notice and the AI metadata.
  await minutes.getByRole('button', { name: 'Copier le compte rendu' }).click();
  await minutes.getByText('Le texte a été copié dans le presse-papiers.').waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(clip, /Objet/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    minutes.getByRole('button', { name: 'Télécharger le compte rendu en DOCX (Word)' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.docx$/);
  const files = readZip(fs.readFileSync(await download.path()));
  const body = files.get('word/document.xml').toString('utf8');
  assert.match(body, /Brouillon IA — à vérifier/);
  assert.match(body, /Objet/);
  assert.match(body, /Conseil municipal/, 'the meeting title is in the document');
  assert.match(files.get('docProps/custom.xml').toString('utf8'), /name="civia_ai_generated"[^>]*>\s*<vt:bool>true<\/vt:bool>/);
  await minutes.getByText(/a été téléchargé/).waitFor();
  // The transcript downloads too (as text).
  const [txt] = await Promise.all([
    page.waitForEvent('download'),
    transcript.getByRole('button', { name: 'Télécharger la transcription en texte' }).click(),
  ]);
  const saved = fold(fs.readFileSync(await txt.path(), 'utf8'));
  assert.ok(found.every((w) => saved.includes(w)), 'the transcript file holds the transcript');

  // Stacked on a narrow screen, still without axe violations.
  await page.setViewportSize({ width: 480, height: 900 });
  const narrow = await page.evaluate(() => [...document.querySelectorAll('.reunion-colonne')].map((c) => c.getBoundingClientRect().toJSON()));
  assert.ok(narrow[1].top >= narrow[0].bottom - 1, `stacked: ${JSON.stringify(narrow)}`);
  await checkAxe(page, 'reunion-resultat-etroit', axeResults);
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(page.problems, []);
});

test('a corrupt file and a too-big file get French refusals; the page stays usable; stop works', { timeout: 900_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/reunion', 'Compte rendu de réunion');
  const input = page.getByLabel(/^Enregistrement de la réunion/);
  const sent = [];
  const onRequest = (r) => { if (r.url().includes('/v1/audio/transcriptions')) sent.push(r.url()); };
  page.on('request', onRequest);

  // Too big: refused in the page, nothing sent.
  await input.setInputFiles({ name: 'tres-long.wav', mimeType: 'audio/wav', buffer: Buffer.alloc(MAX_AUDIO + 1024 * 1024) });
  await page.locator('.champ [role="alert"]', { hasText: '« tres-long.wav » est trop volumineux (5 Mo) : un enregistrement peut faire 4 Mo au plus.' }).waitFor();
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  await page.getByRole('button', { name: 'Transcrire et rédiger le compte rendu' }).click();
  await page.waitForFunction(() => document.activeElement.name === 'enregistrement');
  await page.locator('.champ [role="alert"]', { hasText: 'trop volumineux' }).waitFor();
  assert.deepEqual(sent, [], 'a too-big file is not sent');
  await checkAxe(page, 'reunion-trop-gros', axeResults);

  // Corrupt: random bytes named .mp3, refused by the box in French.
  await input.setInputFiles({ name: 'x.mp3', mimeType: 'audio/mpeg', buffer: crypto.randomBytes(64 * 1024) });
  assert.equal(await input.getAttribute('aria-invalid'), null);
  const answer = page.waitForResponse((r) => r.url().includes('/v1/audio/transcriptions'), { timeout: MODEL_TIMEOUT });
  await page.getByRole('button', { name: 'Transcrire et rédiger le compte rendu' }).click();
  const resp = await answer;
  const alert = page.locator('main > [role="alert"] .alerte-erreur');
  await alert.waitFor({ timeout: MODEL_TIMEOUT });
  const msg = await alert.textContent();
  assert.match(msg, /^Erreur : /);
  assert.match(msg, /[àâçéèêëîïôûùüÿœ]/, `a French message: ${msg}`);
  assert.doesNotMatch(msg, /\b(the|could not|failed|error|invalid)\b/i, `not English: ${msg}`);
  if (resp.status() !== 200) {
    const err = await resp.json();
    assert.ok(['audio_corrupt', 'audio_unsupported'].includes(err.error.code), JSON.stringify(err));
  }
  assert.deepEqual(spoolFiles(), [], 'a refused recording is not left on the box');
  await screenshot(page, '15-reunion-fichier-abime');
  await checkAxe(page, 'reunion-erreur', axeResults);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);

  // Still usable: the good recording goes through; stop during the minutes.
  await input.setInputFiles(wav);
  await page.getByRole('button', { name: 'Transcrire et rédiger le compte rendu' }).click();
  assert.equal(await alert.count(), 0, 'the old error is gone');
  await columns().transcript.locator('.statut', { hasText: /Transcription terminée/ }).waitFor({ timeout: MODEL_TIMEOUT });
  const stop = page.getByRole('button', { name: 'Arrêter la rédaction' });
  await stop.waitFor();
  await stop.click();
  const after = columns().minutes.locator('.statut', { hasText: /Rédaction (arrêtée|terminée)/ });
  await after.waitFor({ timeout: 60_000 });
  // (Unless the model was quicker than the click.) The minutes can be drafted again.
  if (/arrêtée/.test(await after.textContent())) {
    await page.getByRole('button', { name: 'Rédiger le compte rendu à partir de cette transcription' }).waitFor();
    assert.equal(await page.locator('.progression').isVisible(), false);
  }
  page.off('request', onRequest);
  assert.deepEqual(page.problems, []);
});

/** An SSE body from JSON events. */
const sse = (...events) => `${events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('')}`;

test('served by the test: a stream cut by an error, hostile text, the retry; a box without transcription', { timeout: 300_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/reunion', 'Compte rendu de réunion');
  const hostile = '<img src=x onerror="window.__pwned=1"> <b>gras</b>';
  await page.route('**/v1/audio/transcriptions', (route) => route.fulfill({
    status: 200, headers: { 'content-type': 'text/event-stream' },
    body: sse(
      { type: 'transcript.text.delta', delta: '', civia: { progress: { processed_seconds: 0, duration_seconds: 600 } } },
      { type: 'transcript.text.delta', delta: `Bonjour à tous. ${hostile}`, civia: { progress: { processed_seconds: 150, duration_seconds: 600 }, segment: { start: 1, end: 4.2, text: ` Bonjour à tous. ${hostile}` } } },
      { error: { message: 'the transcription worker restarted', type: 'server_error', code: 'speech_unavailable' } },
    ),
  }));
  let minutesBody = null;
  await page.route('**/v1/meetings/minutes', (route) => {
    minutesBody = JSON.parse(route.request().postData());
    return route.fulfill({
      status: 200, headers: { 'content-type': 'text/event-stream' },
      body: sse(
        { type: 'minutes.progress', stage: 'notes', done: 1, total: 1 },
        { type: 'minutes.section', key: 'subject', title: 'Objet', text: `Essai ${hostile}` },
        { type: 'minutes.section', key: 'decisions', title: 'Décisions', text: '- **Aucune** décision' },
        { type: 'minutes.done', minutes: `## Objet\n\nEssai ${hostile}\n\n## Décisions\n\n- **Aucune** décision`, civia: { ai_generated: true, model: 'test', warnings: [{ code: 'personal_data', kinds: ['phone'], message: 'personal data in the request (phone)' }] } },
        '[DONE]',
      ),
    });
  });
  await page.getByLabel(/^Enregistrement de la réunion/).setInputFiles({ name: 'essai.ogg', mimeType: 'audio/ogg', buffer: Buffer.from('OggS-essai') });
  await page.getByLabel('Langue parlée').selectOption('auto');
  const request = page.waitForRequest('**/v1/audio/transcriptions');
  await page.getByRole('button', { name: 'Transcrire et rédiger le compte rendu' }).click();
  // The request: multipart with the CSRF token and the contract's fields.
  const req = await request;
  assert.ok(req.headers()['x-csrf-token'], 'X-CSRF-Token sent');
  assert.match(req.headers()['content-type'], /^multipart\/form-data; boundary=/);
  const form = req.postDataBuffer().toString('latin1');
  for (const [name, value] of [['model', null], ['language', 'auto'], ['response_format', 'json'], ['stream', 'true']]) {
    assert.match(form, new RegExp(`name="${name}"\\r\\n\\r\\n${value || '[^\\r]+'}\\r\\n`), `field ${name}`);
  }
  assert.match(form, /name="file"; filename="essai\.ogg"/);

  const { transcript, minutes } = columns();
  await page.locator('main > [role="alert"]', { hasText: 'La transcription n\'est pas disponible pour le moment.' }).waitFor();
  // What came before the error stays, as text.
  assert.match(await transcript.locator('.sortie').textContent(), /Bonjour à tous\. <img src=x onerror=/);
  assert.equal(await transcript.locator('.sortie img, .sortie b').count(), 0);
  await checkAxe(page, 'reunion-coupure', axeResults);

  // The minutes can still be drafted from what was transcribed.
  await page.getByRole('button', { name: 'Rédiger le compte rendu à partir de cette transcription' }).click();
  await minutes.locator('.statut', { hasText: 'Rédaction terminée' }).waitFor();
  assert.match(minutesBody.transcript, /Bonjour à tous/);
  assert.equal(minutesBody.stream, true);
  assert.deepEqual(await minutes.locator('.sortie h3').allTextContents(), ['Objet', 'Décisions']);
  assert.equal(await minutes.locator('.sortie img, .sortie b').count(), 0);
  assert.equal(await minutes.locator('.sortie strong').textContent(), 'Aucune');
  await minutes.locator('[role="alert"] .alerte-donnees', { hasText: 'Données personnelles détectées dans la demande (numéro de téléphone)' }).waitFor();
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await checkAxe(page, 'reunion-reprise', axeResults);
  await page.unroute('**/v1/audio/transcriptions');
  await page.unroute('**/v1/meetings/minutes');

  // Keyboard: from the h1, Tab reaches the fields in order, then the button.
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/reunion', 'Compte rendu de réunion');
  await tabUntil(page, () => document.activeElement.name === 'enregistrement');
  await assertFocusVisible(page);
  await tabUntil(page, () => document.activeElement.name === 'titre', { max: 3 });
  // Chromium's date field has a stop per part (day, month, year).
  await tabUntil(page, () => document.activeElement.name === 'date', { max: 3 });
  await tabUntil(page, () => document.activeElement.name === 'langue', { max: 6 });
  await tabUntil(page, () => document.activeElement.textContent === 'Transcrire et rédiger le compte rendu', { max: 3 });
  await assertFocusVisible(page);

  // A box without transcription (limits.speech_model null, as /auth/me says then).
  await page.route('**/auth/me', async (route) => {
    const r = await route.fetch();
    const me = await r.json();
    me.limits.speech_model = null;
    await route.fulfill({ response: r, json: me });
  });
  // A new page load, so that the session is read again.
  await page.goto('/app/#/taches');
  await page.reload();
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
  const card = page.locator('.carte-tache', { has: page.getByRole('link', { name: 'Compte rendu de réunion', exact: true }) });
  assert.match(await card.textContent(), /La transcription n'est pas activée sur cette box\./);
  await card.getByRole('link').click();
  await expectTitleAndH1(page, 'Compte rendu de réunion', 'Compte rendu de réunion');
  await page.getByText('La transcription des enregistrements n\'est pas activée sur cette box.').waitFor();
  assert.equal(await page.locator('main input[type="file"]').count(), 0, 'no upload form');
  await checkAxe(page, 'reunion-desactivee', axeResults);
  await page.unroute('**/auth/me');
  assert.deepEqual(page.problems, []);
});
