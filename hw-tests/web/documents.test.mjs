// Documents in the browser: a PDF and a DOCX made by the test are summarised; a long text is
// summarised in parts with progress; a corrupt PDF and a 50 MB file get a clear French
// refusal, and the server keeps answering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCiviad } from './lib/civiad.mjs';
import { makePdf } from './lib/fixtures.mjs';
import {
  launch, newPage, screenshot, checkAxe, goto, login, acceptCharterIfShown, saveJson, MODEL_TIMEOUT,
} from './lib/browser.mjs';

const PASS = 'correct-horse-battery-9';
const axeResults = [];
let server;
let browser;
let page;
let tmp;

before(async () => {
  server = await startCiviad();
  await server.createUser('agent.docs', 'agent', PASS);
  browser = await launch();
  page = await newPage(browser, server);
  await login(page, 'agent.docs', PASS);
  await acceptCharterIfShown(page);
  await page.locator('main h1', { hasText: 'Que souhaitez-vous faire ?' }).waitFor();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'civia-web-docs-'));
});

after(async () => {
  saveJson('axe-documents.json', axeResults);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const REPORT = [
  'Rapport sur la rénovation de l\'école Jules-Ferry',
  'Le conseil municipal a voté le 14 février la rénovation thermique de l\'école.',
  'Le coût total des travaux est estimé à 480 000 euros hors taxes.',
  'La région finance 40 % du montant, l\'État 20 % au titre de la DSIL.',
  'Les travaux commenceront en juillet et dureront six mois.',
  'La consommation d\'énergie du bâtiment doit baisser de 45 %.',
];

async function chooseFile(files) {
  const input = page.getByLabel(/^Document/);
  await input.setInputFiles(files);
}

async function summarise(expectRead) {
  await page.locator('.champ .statut', { hasText: expectRead }).waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Résumer le document' }).click();
  await page.locator('.resultat .statut', { hasText: /Rédaction (terminée|arrêtée)/ }).waitFor({ timeout: MODEL_TIMEOUT });
  const result = page.locator('section.resultat');
  assert.ok(await result.getByText('Brouillon IA — à vérifier').isVisible());
  const text = (await result.locator('.sortie').textContent()).trim();
  assert.ok(text.length > 10, `a summary came back: ${JSON.stringify(text)}`);
  return text;
}

test('a PDF made by the test is read and summarised', { timeout: 300_000 }, async () => {
  await goto(page, '#/synthese', 'Synthèse d\'un document');
  await checkAxe(page, 'synthese-vide', axeResults);
  await chooseFile({ name: 'rapport-ecole.pdf', mimeType: 'application/pdf', buffer: makePdf(REPORT) });
  await summarise(/Document lu : « rapport-ecole\.pdf » \(1 page, [\d\s  ]+ caractères\)/);
  await screenshot(page, '10-synthese-pdf', { readme: true });
  await checkAxe(page, 'synthese-resultat', axeResults);
});

test('a DOCX (from the box\'s own export) is read and summarised', { timeout: 300_000 }, async () => {
  const r = await server.api('POST', '/v1/exports/docx', { title: 'Note de service', text: REPORT.join('\n\n'), notice: false });
  assert.equal(r.status, 200, await r.clone().text());
  const docx = Buffer.from(await r.arrayBuffer());
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/synthese', 'Synthèse d\'un document');
  await chooseFile({ name: 'note de service.docx', mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', buffer: docx });
  await summarise(/Document lu : « note de service\.docx »/);
});

test('a long text is summarised in parts, with the progress announced', { timeout: 600_000 }, async () => {
  const paras = [];
  for (let i = 1; paras.join('\n\n').length < 20_000; i += 1) {
    paras.push(`Article ${i}. Le conseil municipal examine le point ${i} de l'ordre du jour : l'entretien de la voirie communale, `
      + `le budget de la cantine scolaire et l'éclairage public. Après débat, la délibération ${i} est adoptée à l'unanimité des membres présents. `
      + 'Le maire est chargé de son exécution et en rendra compte lors de la prochaine séance.');
  }
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/synthese', 'Synthèse d\'un document');
  await page.evaluate(() => {
    window.__civiaProgress = [];
    const obs = new MutationObserver(() => {
      const s = document.querySelector('.resultat .statut');
      if (s && s.textContent && !window.__civiaProgress.includes(s.textContent)) window.__civiaProgress.push(s.textContent);
    });
    obs.observe(document.getElementById('contenu'), { subtree: true, childList: true, characterData: true });
  });
  await chooseFile({ name: 'deliberations.txt', mimeType: 'text/plain', buffer: Buffer.from(paras.join('\n\n'), 'utf8') });
  await summarise(/Document lu : « deliberations\.txt »/);
  const progress = await page.evaluate(() => window.__civiaProgress);
  const parts = progress.filter((p) => /partie \d+ sur \d+/.test(p));
  assert.ok(parts.length >= 2, `progress by part was shown: ${JSON.stringify(progress)}`);
  assert.ok(progress.some((p) => /version finale/.test(p)), JSON.stringify(progress));
  // The status line is a polite live region.
  assert.equal(await page.locator('.resultat .statut').first().getAttribute('role'), 'status');
});

test('a corrupt PDF and a 50 MB file get a clear French refusal; the server keeps answering', { timeout: 300_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/synthese', 'Synthèse d\'un document');
  // Corrupt PDF: refused by the server, its French message shown as an alert.
  const corrupt = Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R'), Buffer.alloc(2000, 0x8f)]);
  await chooseFile({ name: 'abime.pdf', mimeType: 'application/pdf', buffer: corrupt });
  const alert = page.locator('.champ [role="alert"] .alerte-erreur');
  await alert.waitFor({ timeout: 60_000 });
  const msg = await alert.textContent();
  assert.match(msg, /^Erreur : /);
  assert.match(msg, /[àâçéèêëîïôûùüÿœ]|PDF|document|fichier/i, `a French message: ${msg}`);
  assert.doesNotMatch(msg, /\b(the|could not|failed|error)\b/i, `not English: ${msg}`);
  assert.equal(await page.getByLabel(/^Document/).getAttribute('aria-invalid'), 'true');
  await screenshot(page, '11-pdf-abime');
  await checkAxe(page, 'synthese-erreur', axeResults);
  // The summary cannot start without a readable document.
  await page.getByRole('button', { name: 'Résumer le document' }).click();
  await page.getByRole('alert').filter({ hasText: 'Veuillez remplir : Document.' }).waitFor();

  // 50 MB: refused in the browser before any upload.
  const big = path.join(tmp, 'enorme.pdf');
  const fd = fs.openSync(big, 'w');
  fs.writeSync(fd, Buffer.from('%PDF-1.4\n'));
  fs.ftruncateSync(fd, 50 * 1024 * 1024);
  fs.closeSync(fd);
  await chooseFile(big);
  await page.locator('.champ [role="alert"]', { hasText: /« enorme\.pdf » est trop volumineux \(50 Mo\) : la taille maximale est de 20 Mo\./ }).waitFor();

  // And by the server when sent anyway (as a script could): 413, French message, no crash.
  const direct = await page.evaluate(async () => {
    const me = await (await fetch('/auth/me')).json();
    const blob = new Blob([new Uint8Array(50 * 1024 * 1024)], { type: 'application/pdf' });
    const r = await fetch('/v1/parse', { method: 'POST', body: blob, headers: { 'X-CSRF-Token': me.csrf_token, 'X-Civia-Filename': 'enorme.pdf' } });
    let body = null;
    try { body = await r.json(); } catch { body = null; }
    return { status: r.status, body };
  });
  assert.equal(direct.status, 413, JSON.stringify(direct));
  assert.equal(direct.body.error.code, 'request_too_large');
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  // And a good file is still read after that.
  await chooseFile({ name: 'rapport.pdf', mimeType: 'application/pdf', buffer: makePdf(REPORT) });
  await page.locator('.champ .statut', { hasText: /Document lu : « rapport\.pdf »/ }).waitFor({ timeout: 60_000 });
  // A file of another kind: refused in the browser, in French.
  await chooseFile({ name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47]) });
  await page.locator('.champ [role="alert"]', { hasText: 'Formats acceptés : PDF, DOCX, ODT ou TXT.' }).waitFor();
});

test('extraction of data: typed values in a table, downloaded as ODS and CSV', { timeout: 300_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/extraction', 'Extraction de données');
  await chooseFile({ name: 'fiche-technique.pdf', mimeType: 'application/pdf', buffer: makePdf([
    'Fiche technique : centrale photovoltaïque du gymnase',
    'Puissance installée : 36 kWc',
    'Date de mise en service : 12 juin 2023',
    'Coût de l\'installation : 54 000 euros HT',
  ]) });
  await page.locator('.champ .statut', { hasText: /Document lu/ }).waitFor({ timeout: 60_000 });
  // Nothing asked: the form says what is missing and puts the focus on the first value.
  await page.getByRole('button', { name: 'Extraire les valeurs' }).click();
  await page.getByRole('alert').filter({ hasText: 'Veuillez remplir : Valeurs demandées.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), await page.getByLabel('Valeur 1', { exact: true }).getAttribute('id'));
  // Three rows at first; a fourth is added, then removed, by the keyboard.
  const group = page.getByRole('group', { name: /Valeurs demandées/ });
  assert.equal(await group.getByRole('textbox').count(), 3);
  await page.getByRole('button', { name: 'Ajouter une valeur' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), await page.getByLabel('Valeur 4', { exact: true }).getAttribute('id'));
  await page.getByRole('button', { name: 'Retirer la valeur 4' }).click();
  assert.equal(await group.getByRole('textbox').count(), 3);
  const asked = [['puissance installée', 'nombre'], ['date de mise en service', 'date'], ['coût HT', 'nombre']];
  for (const [i, [name, type]] of asked.entries()) {
    await page.getByLabel(`Valeur ${i + 1}`, { exact: true }).fill(name);
    await page.getByLabel(`Type de la valeur ${i + 1}`).selectOption(type);
  }
  await checkAxe(page, 'extraction', axeResults);
  // The request carries the schema built from the list.
  const sent = page.waitForRequest((r) => r.url().endsWith('/v1/chat/completions') && r.method() === 'POST'
    && (r.postDataJSON() || {}).response_format);
  await page.getByRole('button', { name: 'Extraire les valeurs' }).click();
  const schema = (await sent).postDataJSON().response_format.json_schema.schema;
  assert.deepEqual(schema.required, ['valeur_1', 'valeur_2', 'valeur_3']);
  assert.deepEqual(schema.properties.valeur_2.properties.valeur, { type: ['string', 'null'], format: 'date' });
  await page.locator('.resultat .statut', { hasText: /Extraction (terminée|arrêtée)/ }).waitFor({ timeout: MODEL_TIMEOUT });
  const result = page.locator('section.resultat');
  assert.ok(await result.getByText('Brouillon IA — à vérifier').isVisible());
  // The table: caption, column headers, one row per value asked, in order, each value shown
  // in French (a number, a day, or « non trouvée »).
  const table = result.locator('table');
  assert.equal(await table.locator('caption').textContent(), 'Valeurs extraites du document');
  assert.deepEqual(await table.locator('th[scope="col"]').allTextContents(), ['Valeur demandée', 'Valeur trouvée', 'Unité', 'Passage source']);
  assert.deepEqual(await table.locator('tbody th[scope="row"]').allTextContents(), asked.map(([n]) => n));
  const shownValues = await table.locator('tbody tr td:first-of-type').allTextContents();
  assert.ok(/^(non trouvée|-?[\d\u202f\u00a0]+(,\d+)?)$/.test(shownValues[0]), shownValues[0]);
  assert.ok(/^(non trouvée|\d{2}\/\d{2}\/\d{4})$/.test(shownValues[1]), shownValues[1]);
  // Whatever the model wrote, nothing of it became markup.
  assert.equal(await page.locator('.resultat .sortie script, .resultat .sortie img, .resultat .sortie a').count(), 0);
  await screenshot(page, '12-extraction');
  await checkAxe(page, 'extraction-resultat', axeResults);
  // Downloads: an ODS spreadsheet with the AI marking, a CSV with French separators.
  const [ods] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Télécharger le tableau en ODS (LibreOffice)' }).click()]);
  assert.match(ods.suggestedFilename(), /^Données-extraites-fiche-technique.*\.ods$/);
  const odsBytes = fs.readFileSync(await ods.path());
  assert.equal(odsBytes.subarray(30, 38).toString(), 'mimetype');
  assert.ok(odsBytes.includes(Buffer.from('application/vnd.oasis.opendocument.spreadsheet')));
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Télécharger le tableau en CSV' }).click()]);
  const csvText = fs.readFileSync(await csv.path(), 'utf8');
  assert.ok(csvText.startsWith('\ufeffBrouillon IA — à vérifier'), csvText.slice(0, 80));
  assert.ok(csvText.includes('Valeur demandée;Valeur trouvée;Unité;Passage source'), csvText);
  assert.ok(csvText.includes('puissance installée;'), csvText);
  await result.locator('.statut', { hasText: /a été téléchargé/ }).waitFor();
  assert.deepEqual(page.problems, []);
});

test('meeting minutes from notes: a document fills the notes field', { timeout: 120_000 }, async () => {
  await goto(page, '#/taches', 'Que souhaitez-vous faire ?');
  await goto(page, '#/compte-rendu', 'Compte rendu à partir de notes');
  const notes = 'Réunion de la commission travaux.\n\nPrésents : M. Morel, Mme Petit.\n\nDécision : réfection du trottoir rue Haute.';
  await chooseFile({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(notes, 'utf8') });
  await page.waitForFunction(() => document.querySelector('textarea[name="notes"]').value.includes('commission travaux'));
  await checkAxe(page, 'compte-rendu', axeResults);
  assert.deepEqual(page.problems, []);
});
