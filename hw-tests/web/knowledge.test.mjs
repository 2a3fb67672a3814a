// « Rechercher dans les documents de la commune » (issue 20): an agent creates a collection,
// uploads a TXT and a PDF made by the test and follows them to « Indexé »; asks a question
// and gets an answer with its numbered sources (document name, « page 1 » for the PDF, the
// excerpt behind a button); searches without generation; gets the plain sentence when no
// passage matches; an agent of another service sees neither the private nor the service
// collection; renames, deletes a document and the collection through the dialogs. axe-core
// on every state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCiviad, DEV_KEY } from './lib/civiad.mjs';
import { makePdf } from './lib/fixtures.mjs';
import {
  launch, newPage, screenshot, checkAxe, expectTitleAndH1, goto, login, acceptCharterIfShown, saveJson,
  MODEL_TIMEOUT,
} from './lib/browser.mjs';

const PASS = 'correct-horse-battery-9';
const COLLECTION = 'Délibérations 2026';
const SERVICE_COLLECTION = 'Notes du service Enfance';
const PUBLIC_COLLECTION = 'Règlements de la commune';
const PDF_NAME = 'tarifs-cantine.pdf';
const TXT_NAME = 'horaires-mairie.txt';
const CANTINE = [
  'Délibération n° 2026-041 du conseil municipal',
  'Tarifs du restaurant scolaire',
  'Le prix du repas à la cantine scolaire est fixé à 3,20 euros',
  'pour les enfants domiciliés dans la commune, à compter du 1er septembre 2026.',
];
const HORAIRES = 'Horaires d\'ouverture de la mairie\n\nLa mairie est ouverte au public du lundi au vendredi, '
  + 'de 8 h 30 à 12 h et de 13 h 30 à 17 h. Le samedi matin, une permanence de l\'état civil est assurée de 9 h à 12 h.\n';
const REGLEMENT = 'Règlement de la salle des fêtes\n\nLa caution demandée pour la location de la salle des fêtes est de 500 euros.\n';

const axeResults = [];
let server;
let browser;
let page;
let collectionId;

/** The admin's (trial key) call with a multipart form, straight to civiad. */
async function adminUpload(collection, name, text) {
  const form = new FormData();
  form.append('collection', String(collection));
  form.append('file', new Blob([text], { type: 'text/plain' }), name);
  const r = await fetch(`http://127.0.0.1:${server.port}/v1/documents`, {
    method: 'POST', headers: { authorization: `Bearer ${DEV_KEY}` }, body: form,
  });
  assert.equal(r.status, 202, await r.clone().text());
  return r.json();
}

before(async () => {
  server = await startCiviad();
  await server.createUser('agent.leroy', 'agent', PASS);
  await server.createUser('agent.moreau', 'agent', PASS);
  for (const [name, service] of [['agent.leroy', 'Enfance'], ['agent.moreau', 'Urbanisme']]) {
    const r = await server.api('PATCH', `/admin/users/${name}`, { service });
    assert.equal(r.status, 200, await r.text());
  }
  // A collection for the whole commune, published by the administrator.
  const r = await server.api('POST', '/v1/collections', { name: PUBLIC_COLLECTION, visibility: 'public', description: 'Règlements intérieurs des salles et équipements.' });
  assert.equal(r.status, 201, await r.clone().text());
  await adminUpload((await r.json()).id, 'reglement-salle-des-fetes.txt', REGLEMENT);
  browser = await launch();
  page = await newPage(browser, server);
  await login(page, 'agent.leroy', PASS);
  await acceptCharterIfShown(page);
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
});

after(async () => {
  saveJson('axe-knowledge.json', axeResults);
  if (browser) await browser.close();
  if (server) await server.stop();
});

/** Records what the page's polite live regions say (their successive texts). */
async function recordAnnouncements() {
  await page.evaluate(() => {
    window.__civiaSaid = [];
    const obs = new MutationObserver(() => {
      for (const r of document.querySelectorAll('[aria-live="polite"]')) {
        const t = r.textContent.trim();
        if (t && !window.__civiaSaid.includes(t)) window.__civiaSaid.push(t);
      }
    });
    obs.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

test('a collection is created, two files are uploaded and reach « Indexé »', { timeout: 300_000 }, async () => {
  await page.getByRole('navigation', { name: 'Menu principal' }).getByRole('link', { name: 'Documents de la commune' }).click();
  await expectTitleAndH1(page, 'Documents de la commune', 'Rechercher dans les documents de la commune');
  assert.equal(await page.locator('#navigation a[aria-current="page"]').textContent(), 'Documents de la commune');
  // The three groups, the administrator's collection under « Toute la commune ».
  for (const g of ['Mes collections (0)', 'Mon service (0)', 'Toute la commune (1)']) {
    await page.getByRole('heading', { name: g, level: 3 }).waitFor();
  }
  const pub = page.locator('[data-visibilite="public"] .collection');
  assert.match(await pub.textContent(), /Règlements de la commune — 1 document/);
  // « Toute la commune » is not offered to an agent.
  const vis = page.getByLabel('Qui peut la consulter ?');
  assert.deepEqual(await vis.locator('option').evaluateAll((os) => os.map((o) => o.value)), ['private', 'service']);
  await screenshot(page, '40-documents');
  await checkAxe(page, 'documents', axeResults);

  // Refused by the API (a page left open after a change of role, say): its French message.
  await page.getByLabel(/^Nom de la collection/).fill('Pour toute la commune');
  await vis.evaluate((s) => { s.append(new Option('Toute la commune', 'public')); s.value = 'public'; });
  await page.getByRole('button', { name: 'Créer la collection' }).click();
  await page.getByRole('alert').filter({ hasText: 'Seul un administrateur peut publier une collection pour toute la commune.' }).waitFor();
  await checkAxe(page, 'documents-refus', axeResults);

  // A service collection (for the isolation test), then the private one the test fills.
  await page.getByLabel(/^Nom de la collection/).fill(SERVICE_COLLECTION);
  await vis.selectOption('service');
  await page.getByRole('button', { name: 'Créer la collection' }).click();
  await expectTitleAndH1(page, `Collection ${SERVICE_COLLECTION}`, `Collection « ${SERVICE_COLLECTION} »`);
  await goto(page, '#/documents', 'Rechercher dans les documents de la commune');
  await page.getByLabel(/^Nom de la collection/).fill(COLLECTION);
  await page.getByLabel('Description').fill('Délibérations du conseil municipal de l\'année 2026.');
  await page.getByLabel('Qui peut la consulter ?').selectOption('private');
  await page.getByRole('button', { name: 'Créer la collection' }).click();
  await expectTitleAndH1(page, `Collection ${COLLECTION}`, `Collection « ${COLLECTION} »`);
  collectionId = Number(/collections\/(\d+)/.exec(page.url())[1]);
  await page.getByText('Cette collection ne contient aucun document.').waitFor();
  await checkAxe(page, 'collection-vide', axeResults);

  // Two files at once: progress per file, then the indexing status, announced politely.
  await recordAnnouncements();
  await page.getByLabel(/^Fichiers à ajouter/).setInputFiles([
    { name: TXT_NAME, mimeType: 'text/plain', buffer: Buffer.from(HORAIRES, 'utf8') },
    { name: PDF_NAME, mimeType: 'application/pdf', buffer: makePdf(CANTINE) },
  ]);
  await page.getByRole('button', { name: 'Envoyer' }).click();
  for (const name of [TXT_NAME, PDF_NAME]) {
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name }) });
    await row.locator('.etat-indexed', { hasText: 'Indexé' }).waitFor({ timeout: 120_000 });
  }
  const pdfRow = page.locator('tr', { has: page.getByRole('rowheader', { name: PDF_NAME }) });
  assert.equal(await pdfRow.locator('td').nth(1).textContent(), '1 page');
  assert.equal(await page.locator('.envoi').count(), 2);
  for (const item of await page.locator('.envoi').all()) {
    assert.equal(await item.getAttribute('data-etat'), 'indexed');
    assert.equal(await item.locator('progress').evaluate((p) => p.value), 100);
    // Each progress bar has its label (the file's name).
    assert.match(await item.locator('progress').evaluate((p) => p.labels[0].textContent), /« .+ »/);
  }
  const said = await page.evaluate(() => window.__civiaSaid);
  assert.ok(said.some((s) => /envoyé/.test(s)), JSON.stringify(said));
  assert.ok(said.some((s) => s === `« ${PDF_NAME} » est indexé (1 page).`), JSON.stringify(said));
  await page.locator('.liste-definitions dd', { hasText: '2 documents' }).waitFor();
  await screenshot(page, '41-collection');
  await checkAxe(page, 'collection-indexee', axeResults);

  // A file of another kind: refused in the page.
  await page.getByLabel(/^Fichiers à ajouter/).setInputFiles({ name: 'logiciel.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ') });
  await page.getByRole('button', { name: 'Envoyer' }).click();
  await page.getByRole('alert').filter({ hasText: '« logiciel.exe » n\'est pas dans un format accepté' }).waitFor();
  assert.deepEqual(page.problems, []);
});

test('a question is answered with its numbered sources; an excerpt opens; search alone; no source', { timeout: 600_000 }, async () => {
  await goto(page, '#/documents', 'Rechercher dans les documents de la commune');
  // Every visible collection with documents is offered, checked.
  const boxes = page.getByRole('group', { name: 'Collections consultées' }).getByRole('checkbox');
  // The choices come with the list of collections, after the heading: wait for them.
  await boxes.nth(1).waitFor();
  assert.equal(await boxes.count(), 2);
  for (const b of await boxes.all()) assert.ok(await b.isChecked());
  await page.getByLabel(/^Votre question/).fill('Quel est le prix du repas à la cantine scolaire ?');
  await page.getByRole('button', { name: 'Rechercher', exact: true }).click();
  const result = page.locator('section.resultat-recherche');
  try {
    await result.locator('.statut', { hasText: /Réponse (terminée|arrêtée)/ }).waitFor({ timeout: MODEL_TIMEOUT });
  } catch (e) {
    throw new Error(`no answer: ${e.message}\n${await result.textContent().catch(() => '')}\n${server.logTail(20)}`);
  }
  await result.getByRole('heading', { name: 'Réponse', level: 2 }).waitFor();
  assert.ok(await result.getByText('Brouillon IA — à vérifier').isVisible());
  const answer = (await result.locator('.sortie').textContent()).trim();
  assert.ok(answer.length > 0, 'an answer came back');
  await result.getByRole('heading', { name: 'Sources', level: 3 }).waitFor();
  const source = result.locator('.source', { has: page.locator('.source-document', { hasText: PDF_NAME }) }).first();
  await source.waitFor();
  assert.match(await source.locator('.source-titre').textContent(), new RegExp(`^\\[\\d+\\] ${PDF_NAME.replace('.', '\\.')}, page 1`));
  // The excerpt: collapsed, opened by the keyboard, its text as text.
  const number = await source.getAttribute('data-source');
  assert.equal(await source.getByRole('button', { name: `Afficher l'extrait [${number}] de « ${PDF_NAME} »` }).count(), 1);
  // (its name changes with its state: found by its attribute from here on)
  const toggle = source.locator('button[aria-expanded]');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.ok(!(await source.locator('.extrait').isVisible()));
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.ok(await source.locator('.extrait').isVisible());
  assert.match(await source.locator('.extrait').textContent(), /3,20 euros/);
  assert.equal(await source.getByRole('button', { name: /Masquer l'extrait/ }).count(), 1);
  await screenshot(page, '42-reponse-sources');
  await checkAxe(page, 'documents-reponse', axeResults);
  await page.keyboard.press('Space');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  // A citation [n] in the answer (when the model wrote one) opens its source.
  const citation = result.locator('.sortie button.citation').first();
  if (await citation.count()) {
    await citation.click();
    const n = (await citation.textContent()).match(/\[(\d+)\]/)[1];
    assert.ok(await result.locator(`.source[data-source="${n}"] .extrait`).isVisible());
  }

  // Search alone: the passages, no generated answer.
  await page.getByLabel(/^Votre question/).fill('horaires d\'ouverture de la mairie le samedi');
  await page.getByRole('button', { name: 'Recherche seule' }).click();
  await result.getByRole('heading', { name: 'Passages trouvés', level: 2 }).waitFor();
  await result.locator('.statut', { hasText: /Recherche terminée : \d+ passages? trouvés?/ }).waitFor();
  assert.equal(await result.locator('.sortie').count(), 0);
  const txt = result.locator('.source', { has: page.locator('.source-document', { hasText: TXT_NAME }) }).first();
  await txt.waitFor();
  await txt.getByRole('button', { name: /Afficher l'extrait/ }).click();
  assert.match(await txt.locator('.extrait').textContent(), /permanence de l'état civil/);
  await checkAxe(page, 'documents-recherche-seule', axeResults);

  // Nothing matches: the plain sentence, and no generated answer.
  await page.getByLabel(/^Votre question/).fill('xylophone quetzalcoatl');
  await page.getByRole('button', { name: 'Rechercher', exact: true }).click();
  await result.getByText('Aucun passage des documents ne correspond à la question.').waitFor({ timeout: MODEL_TIMEOUT });
  assert.equal(await result.locator('.sortie').count(), 0);
  assert.equal(await result.locator('.source').count(), 0);
  await checkAxe(page, 'documents-aucune-source', axeResults);
  // No question: a French message.
  await page.getByLabel(/^Votre question/).fill('');
  await page.getByRole('button', { name: 'Rechercher', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'Veuillez écrire votre question.' }).waitFor();
  assert.deepEqual(page.problems, []);
});

test('an agent of another service sees neither the private nor the service collection', { timeout: 120_000 }, async () => {
  const other = await newPage(browser, server);
  await login(other, 'agent.moreau', PASS);
  await acceptCharterIfShown(other);
  await goto(other, '#/documents', 'Rechercher dans les documents de la commune');
  await other.getByRole('heading', { name: 'Toute la commune (1)', level: 3 }).waitFor();
  const text = await other.locator('main').textContent();
  assert.ok(!text.includes(COLLECTION) && !text.includes(SERVICE_COLLECTION), 'the first agent\'s collections are not listed');
  assert.ok(text.includes(PUBLIC_COLLECTION));
  await other.getByRole('heading', { name: 'Mes collections (0)', level: 3 }).waitFor();
  await other.getByRole('heading', { name: 'Mon service (0)', level: 3 }).waitFor();
  // Not in the question's choices, and its address says « introuvable ».
  assert.equal(await other.getByRole('group', { name: 'Collections consultées' }).getByRole('checkbox').count(), 1);
  await goto(other, `#/documents/collections/${collectionId}`, 'Collection introuvable');
  await checkAxe(other, 'collection-introuvable', axeResults);
  // The API agrees: nothing found by a search either.
  const found = await other.evaluate(async () => {
    const me = await (await fetch('/auth/me')).json();
    const r = await fetch('/v1/search', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ prompt: 'prix du repas cantine scolaire', k: 10, method: 'lexical' }),
    });
    return (await r.json()).data.map((d) => d.chunk.metadata.document_name);
  });
  assert.deepEqual(found, []);
  assert.deepEqual(other.problems, []);
  await other.context().close();
});

test('the collection is renamed; a document and the collection are deleted through the dialog', { timeout: 120_000 }, async () => {
  await goto(page, `#/documents/collections/${collectionId}`, `Collection « ${COLLECTION} »`);
  await page.locator('tr', { has: page.getByRole('rowheader', { name: TXT_NAME }) }).waitFor();
  // Rename.
  const renamed = 'Délibérations du conseil 2026';
  const form = page.locator('form', { has: page.getByRole('heading', { name: 'Renommer ou modifier la collection' }) });
  await form.getByLabel(/^Nom de la collection/).fill(renamed);
  await form.getByRole('button', { name: 'Enregistrer les modifications' }).click();
  await form.getByText('Modifications enregistrées.').waitFor();
  await expectTitleAndH1(page, `Collection ${renamed}`, `Collection « ${renamed} »`);

  // Delete a document: the dialog first (Cancel keeps it), then confirmed.
  const del = page.getByRole('button', { name: `Supprimer le document « ${TXT_NAME} »` });
  await del.click();
  const dialog = page.getByRole('dialog', { name: 'Supprimer ce document ?' });
  await dialog.waitFor();
  await checkAxe(page, 'document-dialogue', axeResults);
  await dialog.getByRole('button', { name: 'Annuler' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), `Supprimer le document « ${TXT_NAME} »`);
  await del.click();
  await page.getByRole('dialog').getByRole('button', { name: 'Supprimer le document' }).click();
  await page.getByText(`Le document « ${TXT_NAME} » a été supprimé.`).waitFor();
  assert.equal(await page.getByRole('rowheader', { name: TXT_NAME }).count(), 0);
  await page.getByRole('rowheader', { name: PDF_NAME }).waitFor();
  await page.locator('.liste-definitions dd', { hasText: /^1 document$/ }).waitFor();
  await page.getByRole('heading', { name: 'Documents (1)', level: 2 }).waitFor();
  const gone = await page.evaluate(async () => (await fetch('/v1/documents?collection=' + location.hash.split('/').pop())).json());
  assert.deepEqual(gone.data.map((d) => d.name), [PDF_NAME]);
  await checkAxe(page, 'collection-apres-suppression', axeResults);

  // Delete the collection.
  await page.getByRole('button', { name: 'Supprimer la collection' }).click();
  await page.getByRole('dialog', { name: 'Supprimer cette collection ?' }).getByRole('button', { name: 'Supprimer la collection' }).click();
  await expectTitleAndH1(page, 'Documents de la commune', 'Rechercher dans les documents de la commune');
  await page.getByRole('heading', { name: 'Mes collections (0)', level: 3 }).waitFor();
  assert.ok(!(await page.locator('main').textContent()).includes(renamed));
  await checkAxe(page, 'documents-apres-suppression', axeResults);
  assert.deepEqual(page.problems, []);
});

test('a folder is added with its date; a period narrows the search', { timeout: 300_000 }, async () => {
  const collections = await page.evaluate(async () => (await (await fetch('/v1/collections')).json()).data);
  const service = collections.find((c) => c.name === SERVICE_COLLECTION);
  await goto(page, `#/documents/collections/${service.id}`, `Collection « ${SERVICE_COLLECTION} »`);
  // A folder as a USB stick holds it: one document, a hidden file and a file of another kind.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'civia-web-dossier-'));
  fs.mkdirSync(path.join(dir, 'Conseil d\'école'));
  fs.writeFileSync(path.join(dir, 'Conseil d\'école', 'compte-rendu.md'),
    '# Conseil d\'école du 14 mars 2025\n\nLa sortie scolaire au zoo de Beauval est prévue en juin.\n');
  fs.writeFileSync(path.join(dir, '.DS_Store'), 'junk');
  fs.writeFileSync(path.join(dir, 'Thumbs.db'), 'junk');
  await recordAnnouncements();
  await page.getByLabel(/^Ou tout un dossier/).setInputFiles(dir);
  await page.getByLabel(/^Date des documents/).fill('2025-03-14');
  await page.getByRole('button', { name: 'Envoyer' }).click();
  const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'compte-rendu.md' }) });
  await row.locator('.etat-indexed', { hasText: 'Indexé' }).waitFor({ timeout: 120_000 });
  assert.equal(await row.locator('td').nth(4).textContent(), '14 mars 2025');
  const said = await page.evaluate(() => window.__civiaSaid);
  assert.ok(said.some((s) => /fichiers? du dossier ignorés?/.test(s)), JSON.stringify(said));
  await checkAxe(page, 'collection-dossier', axeResults);
  fs.rmSync(dir, { recursive: true, force: true });

  // The period: inside it the document is found, outside it nothing is consulted.
  await goto(page, '#/documents', 'Rechercher dans les documents de la commune');
  const question = page.getByLabel(/^Votre question/);
  const result = page.locator('.resultat-recherche');
  await question.fill('quand a lieu la sortie scolaire au zoo ?');
  await page.getByLabel('Du', { exact: true }).fill('2025-01-01');
  await page.getByLabel('Au', { exact: true }).fill('2025-12-31');
  await page.getByRole('button', { name: 'Recherche seule' }).click();
  await result.locator('.source', { has: page.locator('.source-document', { hasText: 'compte-rendu.md' }) }).first().waitFor();
  await checkAxe(page, 'documents-periode', axeResults);
  await page.getByLabel('Du', { exact: true }).fill('2026-01-01');
  await page.getByLabel('Au', { exact: true }).fill('');
  await page.getByRole('button', { name: 'Recherche seule' }).click();
  await result.getByText('Aucun passage des documents ne correspond à la question.').waitFor();
  // A period that ends before it starts: a French message, nothing sent.
  await page.getByLabel('Au', { exact: true }).fill('2025-01-01');
  await page.getByRole('button', { name: 'Recherche seule' }).click();
  await page.getByRole('alert').filter({ hasText: 'La fin de la période est avant son début.' }).waitFor();
  assert.deepEqual(page.problems, []);
});
