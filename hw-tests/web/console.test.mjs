// Every page under axe-core, by role (agent, admin, dpo, integrator); the admin console's
// main actions, backups included (a second box with a backup destination); model output
// rendered as text only (a hostile answer injected by the test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCiviad } from './lib/civiad.mjs';
import {
  launch, newPage, screenshot, checkAxe, expectTitleAndH1, goto, login, acceptCharterIfShown,
  saveJson, decodeQrSvg, MODEL_TIMEOUT,
} from './lib/browser.mjs';

const PASS = 'correct-horse-battery-9';
const axeResults = [];
let server;
let browser;

before(async () => {
  server = await startCiviad();
  await server.createUser('admin.durand', 'admin', PASS);
  await server.createUser('dpo.bernard', 'dpo', PASS);
  await server.createUser('presta.roux', 'integrator', PASS);
  await server.createUser('agent.petit', 'agent', PASS);
  browser = await launch();
});

after(async () => {
  saveJson('axe-console.json', axeResults);
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function visit(page, hash, title, h1, shot) {
  await goto(page, hash);
  await expectTitleAndH1(page, title, h1);
  // Views load their data after the h1: wait for the page to settle.
  await page.waitForLoadState('networkidle').catch(() => {});
  if (shot) await screenshot(page, shot.name, { readme: shot.readme });
  await checkAxe(page, `${hash}`, axeResults);
}

test('public pages: accessibility statement and login, before any session', { timeout: 120_000 }, async () => {
  const page = await newPage(browser, server);
  await page.goto('/app/#/accessibilite');
  await expectTitleAndH1(page, 'Déclaration d\'accessibilité', 'Déclaration d\'accessibilité');
  await page.getByText(/Défenseur des droits/).first().waitFor();
  await page.getByText('non conforme', { exact: true }).waitFor();
  await checkAxe(page, 'accessibilite', axeResults);
  await screenshot(page, '20-accessibilite');
  await goto(page, '#/taches');
  await expectTitleAndH1(page, 'Connexion', 'Connexion à Civia');
  await checkAxe(page, 'connexion', axeResults);
  assert.deepEqual(page.problems, []);
});

test('agent: every page passes axe; unknown page; hostile model output stays text', { timeout: 300_000 }, async () => {
  const page = await newPage(browser, server);
  await login(page, 'agent.petit', PASS);
  await acceptCharterIfShown(page);
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
  for (const [hash, title, h1] of [
    ['#/courrier', 'Rédiger un courrier', 'Rédiger un courrier'],
    ['#/compte-rendu', 'Compte rendu à partir de notes', 'Compte rendu à partir de notes'],
    // No [speech] section here: the view explains that transcription is off.
    ['#/reunion', 'Compte rendu de réunion', 'Compte rendu de réunion'],
    ['#/reponse', 'Réponse à un administré', 'Réponse à un administré'],
    ['#/publication', 'Publication', 'Publication'],
    ['#/synthese', 'Synthèse d\'un document', 'Synthèse d\'un document'],
    ['#/extraction', 'Extraction de données', 'Extraction de données'],
    ['#/discussion', 'Discussion libre', 'Discussion libre'],
    ['#/documents', 'Documents de la commune', 'Rechercher dans les documents de la commune'],
    ['#/historique', 'Historique', 'Historique de vos conversations'],
    ['#/mes-donnees', 'Mes données', 'Mes données'],
    ['#/accessibilite', 'Déclaration d\'accessibilité', 'Déclaration d\'accessibilité'],
    ['#/nulle-part', 'Page introuvable', 'Page introuvable'],
  ]) {
    await visit(page, hash, title, h1);
  }
  // Required fields: a French message, focus on the first missing field.
  await goto(page, '#/courrier', 'Rédiger un courrier');
  await page.getByRole('button', { name: 'Rédiger le courrier' }).click();
  await page.getByRole('alert').filter({ hasText: 'Veuillez remplir : Destinataire, Objet du courrier, Points à aborder.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'destinataire');
  await checkAxe(page, 'courrier-erreurs', axeResults);

  // A hostile answer (served by the test in place of the model): markup stays text, the
  // personal-data notice is an alert.
  const chunks = [
    'Objet : essai\n\n<img src=x onerror="window.__pwned=1"> **Important** <script>window.__pwned=2</script>\n\n',
    '| Valeur | Résultat |\n|---|---|\n| <b>puissance</b> | <a href="javascript:alert(1)">36 kWc</a> |\n',
  ];
  const sse = [
    ...chunks.map((c) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: c }, finish_reason: null }] })}\n\n`),
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], civia: { ai_generated: true, model: 'test', model_sha256: null, warnings: [{ code: 'personal_data', kinds: ['email'], message: 'personal data in the request (email)' }] } })}\n\n`,
    'data: [DONE]\n\n',
  ].join('');
  await page.route('**/v1/chat/completions', (route) => route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse }));
  await page.getByLabel('Destinataire').fill('M. Test');
  await page.getByLabel('Objet du courrier').fill('Essai');
  await page.getByLabel('Points à aborder').fill('un point');
  await page.getByRole('button', { name: 'Rédiger le courrier' }).click();
  await page.locator('.resultat .statut', { hasText: 'Rédaction terminée' }).waitFor();
  const out = page.locator('.resultat .sortie');
  assert.equal(await out.locator('img, script, a, b').count(), 0, 'no markup from the answer');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.match(await out.textContent(), /<img src=x onerror=/);
  assert.equal(await out.locator('strong').textContent(), 'Important');
  assert.equal(await out.locator('table td').first().textContent(), '<a href="javascript:alert(1)">36 kWc</a>');
  await page.locator('[role="alert"] .alerte-donnees', { hasText: 'Attention : Données personnelles détectées dans la demande (adresse électronique) : vérifiez' }).waitFor();
  await checkAxe(page, 'courrier-avertissement', axeResults);
  await screenshot(page, '21-donnees-personnelles');
  await page.unroute('**/v1/chat/completions');
  assert.deepEqual(page.problems, []);
});

test('admin: console pages pass axe; users, keys and quotas work', { timeout: 300_000 }, async () => {
  const page = await newPage(browser, server);
  await login(page, 'admin.durand', PASS);
  await acceptCharterIfShown(page);
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
  await visit(page, '#/admin', 'Administration', 'Administration de la box', { name: '30-admin', readme: true });
  assert.equal(await page.locator('.grille-taches li').count(), 9);
  await visit(page, '#/admin/utilisateurs', 'Utilisateurs', 'Utilisateurs', { name: '31-utilisateurs' });

  // Create an agent with a generated password: shown once, with a copy button.
  await page.getByLabel('Identifiant').fill('nouvel.agent');
  await page.getByLabel('Service').fill('État civil');
  await page.getByRole('button', { name: 'Créer le compte' }).click();
  await page.getByText('Le compte « nouvel.agent » a été créé.').waitFor();
  const secret = page.locator('.alerte-secret code.secret');
  assert.ok((await secret.textContent()).length >= 12);
  await page.getByRole('button', { name: 'Copier le mot de passe' }).click();
  await page.getByText('Copié dans le presse-papiers.').waitFor();
  await checkAxe(page, 'utilisateurs-cree', axeResults);
  // A duplicate: French error.
  await page.getByLabel('Identifiant').fill('nouvel.agent');
  await page.getByRole('button', { name: 'Créer le compte' }).click();
  await page.getByRole('alert').filter({ hasText: 'Un utilisateur porte déjà cet identifiant.' }).waitFor();

  // Manage the user: quotas.
  await page.getByRole('link', { name: 'Gérer le compte nouvel.agent' }).click();
  await expectTitleAndH1(page, 'Compte nouvel.agent', 'Compte « nouvel.agent »');
  await page.getByLabel('Requêtes par minute').fill('5');
  await page.getByRole('button', { name: 'Enregistrer les quotas' }).click();
  await page.getByText(/Quotas enregistrés : 5 requêtes par minute/).waitFor();
  await checkAxe(page, 'utilisateur', axeResults);
  await screenshot(page, '32-utilisateur');

  // Keys: shown once.
  await visit(page, '#/admin/cles', 'Clés d\'API', 'Clés d\'API');
  await page.getByLabel('Compte').selectOption('nouvel.agent');
  await page.getByLabel('Nom de la clé').fill('Logiciel courrier');
  await page.getByRole('button', { name: 'Créer la clé' }).click();
  const key = await page.locator('.alerte-secret code.secret').textContent();
  assert.match(key, /^civia-[0-9a-f]{64}$/);
  await page.locator('table', { hasText: 'Logiciel courrier' }).waitFor();
  await checkAxe(page, 'cles-creee', axeResults);
  await screenshot(page, '33-cles');

  await visit(page, '#/admin/utilisation', 'Utilisation', 'Utilisation de la box', { name: '34-utilisation' });
  await visit(page, '#/admin/charte', 'Charte d\'utilisation', 'Charte d\'utilisation', { name: '35-charte-admin' });
  await visit(page, '#/admin/modele', 'Dossier du modèle', 'Dossier du modèle', { name: '36-modele' });
  await visit(page, '#/admin/audit', 'Journal d\'audit', 'Journal d\'audit');
  await page.getByRole('button', { name: 'Vérifier l\'intégrité du journal' }).click();
  await page.getByText(/Journal intègre|Anomalie détectée/).waitFor({ timeout: 60_000 });
  await checkAxe(page, 'audit-verifie', axeResults);
  await screenshot(page, '37-audit');
  const [audit] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Exporter le journal' }).click()]);
  assert.match(audit.suggestedFilename(), /\.csv$/);
  await visit(page, '#/admin/conformite', 'Documents de conformité', 'Documents de conformité', { name: '38-conformite' });
  await page.getByLabel('Document').selectOption('checklist');
  await page.getByRole('button', { name: 'Afficher' }).click();
  await page.locator('.controle').first().waitFor();
  await checkAxe(page, 'conformite-checklist', axeResults);
  const [md] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Télécharger (Markdown)' }).click()]);
  assert.match(md.suggestedFilename(), /\.md$/);
  await visit(page, '#/admin/systeme', 'État du système', 'État du système', { name: '39-systeme' });
  await page.getByRole('link', { name: /Télécharger le certificat de la box/ }).waitFor();

  // A new charter version: everyone, the admin included, accepts it again.
  await goto(page, '#/admin/charte', 'Charte d\'utilisation');
  await page.getByLabel('Texte de la charte').fill('# Charte\n\nVersion révisée : vérifiez toujours les brouillons.');
  await page.getByRole('button', { name: 'Publier une nouvelle version' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Publier' }).click();
  await page.getByText(/Version \d+ publiée\./).waitFor();
  await page.locator('main h1', { hasText: 'Charte d\'utilisation de l\'IA' }).waitFor({ timeout: 30_000 });
  await page.getByText('Version révisée : vérifiez toujours les brouillons.').waitFor();
  await page.getByLabel(/J'ai lu la charte/).check();
  await page.getByRole('button', { name: /Accepter la charte/ }).click();
  await page.locator('main h1', { hasText: 'Charte d\'utilisation' }).waitFor();
  assert.deepEqual(page.problems, []);
});

test('dpo and integrator see their own parts only', { timeout: 300_000 }, async () => {
  const dpo = await newPage(browser, server);
  await login(dpo, 'dpo.bernard', PASS);
  await acceptCharterIfShown(dpo);
  await expectTitleAndH1(dpo, 'Administration', 'Administration de la box');
  assert.equal(await dpo.locator('.grille-taches li').count(), 5);
  assert.equal(await dpo.getByRole('link', { name: 'Tâches' }).count(), 0, 'no model pages for the DPO');
  await checkAxe(dpo, 'admin (dpo)', axeResults);
  await visit(dpo, '#/admin/charte', 'Charte d\'utilisation', 'Charte d\'utilisation');
  await dpo.getByText(/ont accepté la version/).waitFor();
  await visit(dpo, '#/admin/utilisation', 'Utilisation', 'Utilisation de la box');
  await visit(dpo, '#/admin/audit', 'Journal d\'audit', 'Journal d\'audit');
  await visit(dpo, '#/admin/conformite', 'Documents de conformité', 'Documents de conformité');
  await visit(dpo, '#/courrier', 'Accès refusé', 'Accès refusé');
  await visit(dpo, '#/admin/utilisateurs', 'Accès refusé', 'Accès refusé');
  await visit(dpo, '#/admin/sauvegardes', 'Accès refusé', 'Accès refusé');
  assert.deepEqual(dpo.problems, []);

  const integ = await newPage(browser, server);
  await login(integ, 'presta.roux', PASS);
  await acceptCharterIfShown(integ);
  await expectTitleAndH1(integ, 'Administration', 'Administration de la box');
  assert.equal(await integ.locator('.grille-taches li').count(), 2);
  await visit(integ, '#/admin/systeme', 'État du système', 'État du système');
  await visit(integ, '#/admin/modele', 'Dossier du modèle', 'Dossier du modèle');
  await visit(integ, '#/admin/audit', 'Accès refusé', 'Accès refusé');
  await visit(integ, '#/mes-donnees', 'Mes données', 'Mes données');
  assert.deepEqual(integ.problems, []);
});

// ---- backups (« Sauvegardes ») -------------------------------------------------------------

const KEY_RE = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;
const STALE_NEVER = 'Aucune sauvegarde n\'a encore été faite.';

test('admin: « Sauvegardes » — the key shown once (text, QR code, copy, print), a download; an agent is refused', { timeout: 300_000 }, async () => {
  const page = await newPage(browser, server);
  await login(page, 'admin.durand', PASS);
  await acceptCharterIfShown(page);
  await goto(page, '#/admin', 'Administration de la box');
  await page.getByRole('link', { name: 'Sauvegardes' }).click();
  await expectTitleAndH1(page, 'Sauvegardes', 'Sauvegardes');
  // No backup yet: a visible warning; no destination on this box.
  await page.getByRole('alert').filter({ hasText: STALE_NEVER }).waitFor();
  await page.getByText('Aucune destination configurée : seules les sauvegardes téléchargées sont possibles.').waitFor();
  await page.locator('main code', { hasText: '[backup]' }).waitFor();
  const now = page.getByRole('button', { name: 'Sauvegarder maintenant' });
  const download = page.getByRole('button', { name: 'Télécharger une sauvegarde' });
  assert.ok(await now.isDisabled(), 'no key, no destination: « Sauvegarder maintenant » is disabled');
  assert.ok(await download.isDisabled(), 'no key: the download is disabled');
  assert.match(await now.getAttribute('aria-describedby').then((id) => page.locator(`#${id}`).textContent()), /créez d'abord la clé de sauvegarde/);
  await page.waitForLoadState('networkidle').catch(() => {});
  await checkAxe(page, 'sauvegardes (sans clé)', axeResults);
  await screenshot(page, '3a-sauvegardes');

  // The key: shown once, as selectable text and as a QR code that reads back to the same text.
  await page.getByRole('button', { name: 'Créer la clé de sauvegarde' }).click();
  const keyBlock = page.locator('.cle-sauvegarde');
  await keyBlock.waitFor();
  const key = (await keyBlock.locator('.cle-texte').textContent()).trim();
  assert.match(key, KEY_RE);
  await page.waitForFunction(() => document.activeElement && document.activeElement.textContent === 'Votre clé de sauvegarde');
  await keyBlock.getByText('Affichée une seule fois.').waitFor();
  await keyBlock.getByText(/avec la clé de récupération du disque/).waitFor();
  const qr = keyBlock.locator('svg[role="img"]');
  assert.equal(await qr.count(), 1);
  assert.equal(await qr.getAttribute('aria-label'), 'QR code de la clé de sauvegarde');
  assert.equal(await decodeQrSvg(page, '.cle-sauvegarde svg'), key, 'the QR code holds the key');
  await page.getByRole('button', { name: 'Copier la clé' }).click();
  await keyBlock.getByText('Clé copiée dans le presse-papiers.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  // « Imprimer » opens the print dialog; printed, the page shows the key block only.
  await page.evaluate(() => { window.__prints = 0; window.print = () => { window.__prints += 1; }; });
  await page.getByRole('button', { name: 'Imprimer la clé' }).click();
  assert.equal(await page.evaluate(() => window.__prints), 1);
  await page.emulateMedia({ media: 'print' });
  assert.ok(await keyBlock.locator('.cle-texte').isVisible());
  assert.ok(await qr.isVisible());
  for (const hidden of ['main h1', '.bandeau', '.pied', 'main .introduction', 'main table, main dl']) {
    assert.equal(await page.locator(hidden).first().isVisible(), false, `printed: ${hidden} is hidden`);
  }
  await screenshot(page, '3b-sauvegardes-cle-imprimee');
  await page.emulateMedia({ media: 'screen' });
  // The staleness warning still stands (a key is not a backup), now asking for a download.
  await page.getByRole('alert').filter({ hasText: 'Téléchargez une sauvegarde maintenant' }).waitFor();
  assert.ok(await download.isEnabled());
  assert.ok(await now.isDisabled(), 'still no destination');
  await checkAxe(page, 'sauvegardes (clé affichée)', axeResults);
  await screenshot(page, '3b-sauvegardes-cle');

  // Once: a reload does not show it again, and the API refuses a second key.
  await page.reload();
  await expectTitleAndH1(page, 'Sauvegardes', 'Sauvegardes');
  await page.getByText(/^La clé de sauvegarde existe\./).waitFor();
  assert.equal(await page.locator('.cle-texte, .cle-sauvegarde, main svg').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Créer la clé de sauvegarde' }).count(), 0);
  assert.equal(await page.evaluate(() => document.body.classList.contains('impression-cle')), false);
  const again = await server.api('POST', '/admin/backup/key');
  assert.equal(again.status, 409);
  assert.equal((await again.json()).error.code, 'backup_key_exists');

  // A download through the page: the browser saves the age-encrypted archive.
  const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
  assert.match(file.suggestedFilename(), /^civia-[0-9a-f]{8}-[0-9TZ]+\.civia-backup$/);
  const saved = await file.path();
  assert.equal(fs.readFileSync(saved).subarray(0, 21).toString('latin1'), 'age-encryption.org/v1');
  await page.getByRole('status').filter({ hasText: /^Sauvegarde téléchargée \(/ }).waitFor();
  await page.getByRole('alert').filter({ hasText: STALE_NEVER }).waitFor({ state: 'detached' });
  assert.equal(await page.locator('[role="alert"] .alerte-avertissement').count(), 0, 'the warning is gone');
  await page.locator('dd', { hasText: /\(téléchargée\)$/ }).waitFor();
  await page.locator('dd', { hasText: /Mo$/ }).first().waitFor();
  await checkAxe(page, 'sauvegardes (téléchargée)', axeResults);
  assert.deepEqual(page.problems, []);

  // An agent gets the French 403 page, and the API refuses the download too.
  const agent = await newPage(browser, server);
  await login(agent, 'agent.petit', PASS);
  await acceptCharterIfShown(agent);
  await visit(agent, '#/admin/sauvegardes', 'Accès refusé', 'Accès refusé');
  await agent.getByRole('alert').filter({ hasText: 'ne donne pas accès à cette page' }).waitFor();
  const refused = await agent.evaluate(async () => {
    const r = await fetch('/admin/backup/download');
    return { status: r.status, code: (await r.json()).error.code };
  });
  assert.deepEqual(refused, { status: 403, code: 'permission_denied' });
  assert.deepEqual(agent.problems, []);
});

test('admin: « Sauvegarder maintenant » to a destination — progress, outcome announced, archive listed', { timeout: 300_000 }, async () => {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'civia-sauvegardes-'));
  const box = await startCiviad({ extraToml: `[backup]\ndestination = ${JSON.stringify(dest)}\n` });
  try {
    await box.createUser('admin.martin', 'admin', PASS);
    const created = await box.api('POST', '/admin/backup/key');
    assert.equal(created.status, 201);
    const page = await newPage(browser, box);
    await login(page, 'admin.martin', PASS);
    await acceptCharterIfShown(page);
    await goto(page, '#/admin/sauvegardes', 'Sauvegardes');
    await expectTitleAndH1(page, 'Sauvegardes', 'Sauvegardes');
    await page.getByRole('alert').filter({ hasText: STALE_NEVER }).waitFor();
    await page.locator('dd code', { hasText: dest }).waitFor();
    await page.locator('dt', { hasText: 'Prochaine sauvegarde' }).waitFor();
    await page.getByText('Aucune archive de cette box dans le dossier de destination.').waitFor();
    await checkAxe(page, 'sauvegardes (destination)', axeResults);

    // The backup of a test box takes well under a second: while `hold` is set, the test
    // serves the page a status with the backup still running (the box's own answer with
    // `running` set) so that the progress bar can be checked, then lets the real one through.
    let hold = true;
    let held = 0;
    await page.route('**/admin/backup', async (route) => {
      if (route.request().method() !== 'GET' || !hold) { await route.continue(); return; }
      const resp = await route.fetch();
      const body = await resp.json();
      held += 1;
      Object.assign(body, {
        running: { to: 'destination', started_at: new Date().toISOString(), progress: { files_done: 3, files_total: 12, bytes_done: 524_288, bytes_total: 1_572_864 } },
        last: null, last_success: null, too_old: true, archives: [],
      });
      await route.fulfill({ response: resp, json: body });
    });
    await page.getByRole('button', { name: 'Sauvegarder maintenant' }).click();
    const bar = page.getByRole('progressbar', { name: 'Sauvegarde en cours (vers le dossier de destination)' });
    await bar.waitFor();
    await page.waitForFunction(() => document.querySelector('progress')?.getAttribute('value') === '524288');
    assert.equal(await bar.getAttribute('max'), '1572864');
    await page.getByText(/^3 fichiers sur 12, 0,5 Mo sur 1,5 Mo\./).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sauvegarder maintenant' }).getAttribute('aria-disabled'), 'true');
    assert.ok(held >= 1);
    await checkAxe(page, 'sauvegardes (en cours)', axeResults);
    await screenshot(page, '3c-sauvegardes-en-cours');
    hold = false;

    // The end: the outcome in the live region, the bar gone, the archive in the table.
    const done = page.getByRole('status').filter({ hasText: /^Sauvegarde terminée : archive « civia-[0-9a-f]{8}-[0-9TZ]+\.civia-backup » \(/ });
    await done.waitFor();
    await bar.waitFor({ state: 'hidden' });
    const names = fs.readdirSync(dest).filter((n) => n.endsWith('.civia-backup'));
    assert.equal(names.length, 1, `one archive in ${dest}: ${names}`);
    assert.ok((await done.textContent()).includes(names[0]));
    const row = page.locator('table', { hasText: 'Archives de cette box dans le dossier de destination (1)' }).locator('tbody tr');
    await row.first().waitFor();
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('th').textContent()).trim(), names[0]);
    await page.getByRole('alert').filter({ hasText: STALE_NEVER }).waitFor({ state: 'detached' });
    assert.equal(await page.locator('[role="alert"] .alerte-avertissement').count(), 0, 'the warning is gone');
    await page.locator('dd', { hasText: /\(dans le dossier de destination\)$/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sauvegarder maintenant' }).getAttribute('aria-disabled'), null);
    // The archive is an age file.
    assert.equal(fs.readFileSync(path.join(dest, names[0])).subarray(0, 21).toString('latin1'), 'age-encryption.org/v1');
    await checkAxe(page, 'sauvegardes (archive)', axeResults);
    await screenshot(page, '3d-sauvegardes-archive');
    await page.unroute('**/admin/backup');

    // The destination gone (an unmounted share): the failure said in French, never the box's English.
    fs.rmSync(dest, { recursive: true, force: true });
    await page.getByRole('button', { name: 'Sauvegarder maintenant' }).click();
    await page.getByRole('alert').filter({ hasText: 'La sauvegarde vers le dossier de destination a échoué : vérifiez que le dossier est bien monté' }).waitFor();
    await page.getByText('Dernière sauvegarde en échec :').waitFor();
    await page.getByText(/^Dossier inaccessible :/).waitFor();
    await page.getByText('Liste indisponible : le dossier de destination est inaccessible.').waitFor();
    const text = await page.locator('main').textContent();
    assert.doesNotMatch(text, /not mounted|No such file|os error/, 'no English from the box');
    await page.locator('dd', { hasText: /\(dans le dossier de destination\)$/ }).waitFor(); // the last good one stays
    await checkAxe(page, 'sauvegardes (échec)', axeResults);
    await screenshot(page, '3e-sauvegardes-echec');
    assert.deepEqual(page.problems, []);
  } finally {
    await box.stop();
    fs.rmSync(dest, { recursive: true, force: true });
  }
});

test('admin: « Sauvegardes » to the NAS share (`[backup] smb`) — the account, its password kept and never shown; an agent is refused', { timeout: 300_000 }, async () => {
  // An address nothing answers: the box never reaches a NAS in this test.
  const share = '//10.255.255.1/sauvegardes';
  const box = await startCiviad({ extraToml: `[backup]\nsmb = ${JSON.stringify(share)}\nsmb_user = "civia"\n` });
  try {
    await box.createUser('admin.nas', 'admin', PASS);
    await box.createUser('agent.nas', 'agent', PASS);
    assert.equal((await box.api('POST', '/admin/backup/key')).status, 201);
    const status = await (await box.api('GET', '/admin/backup')).json();
    assert.equal(status.destination, share);
    assert.deepEqual(status.smb, { user: 'civia', domain: null, encrypt: false, password_set: false });
    // No password yet: the box refuses a backup to the share, and an empty password.
    const refused = await box.api('POST', '/admin/backup');
    assert.equal(refused.status, 409);
    assert.equal((await refused.json()).error.code, 'backup_no_smb_password');
    const empty = await box.api('PUT', '/admin/backup/smb-password', { password: '' });
    assert.equal(empty.status, 400);
    assert.equal((await empty.json()).error.code, 'invalid_value');

    const page = await newPage(browser, box);
    await login(page, 'admin.nas', PASS);
    await acceptCharterIfShown(page);
    const dd = (term) => page.locator('dl dt', { hasText: new RegExp(`^${term}$`) }).locator('xpath=following-sibling::dd[1]');
    const now = page.getByRole('button', { name: 'Sauvegarder maintenant' });

    // The box's refusal, worded by messages.js: the page is served a status that says the
    // password is kept (the box's own answer, `password_set` changed), so that the button
    // is offered, and the box itself answers the click.
    await page.route('**/admin/backup', async (route) => {
      if (route.request().method() !== 'GET') { await route.continue(); return; }
      const resp = await route.fetch();
      const body = await resp.json();
      body.smb = { ...body.smb, password_set: true };
      delete body.destination_error;
      await route.fulfill({ response: resp, json: body });
    });
    const t0 = Date.now();
    await goto(page, '#/admin/sauvegardes', 'Sauvegardes');
    await expectTitleAndH1(page, 'Sauvegardes', 'Sauvegardes');
    await dd('Partage du NAS').waitFor();
    const openMs = Date.now() - t0;
    assert.ok(await now.isEnabled());
    await page.unroute('**/admin/backup');
    await now.click();
    await page.getByRole('alert').filter({ hasText: 'Le mot de passe du compte sur le NAS n\'est pas enregistré sur la box : saisissez-le ci-dessous' }).waitFor();

    // The box's own status: the share, the account, the password to give.
    assert.equal((await dd('Partage du NAS').textContent()).trim(), share);
    assert.equal(await dd('Partage du NAS').locator('code').count(), 1);
    assert.equal((await dd('Compte').textContent()).trim(), 'civia');
    await dd('Mot de passe du compte').filter({ hasText: /^Mot de passe à saisir/ }).waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => b.textContent === 'Sauvegarder maintenant' && b.disabled));
    assert.match(await now.getAttribute('aria-describedby').then((id) => page.locator(`#${id}`).textContent()), /enregistrez d'abord le mot de passe du compte sur le NAS/);
    await page.getByRole('alert').filter({ hasText: 'Enregistrez le mot de passe du compte sur le NAS' }).waitFor();
    await page.getByText('Liste indisponible : le mot de passe du compte sur le NAS n\'est pas enregistré.').waitFor();
    assert.doesNotMatch(await page.locator('main').textContent(), /password|not set|refused/i, 'no English from the box');
    await checkAxe(page, 'sauvegardes (NAS, mot de passe à saisir)', axeResults);
    await screenshot(page, '3f-sauvegardes-nas');

    // The form: a password field that the browser does not fill with the admin's own.
    const input = page.getByLabel('Mot de passe du compte sur le NAS');
    assert.equal(await input.getAttribute('type'), 'password');
    assert.equal(await input.getAttribute('autocomplete'), 'new-password');
    await page.getByText('La box garde ce mot de passe chiffré, avec une clé qu\'elle seule possède, et ne l\'affichera plus jamais').waitFor();
    const save = page.getByRole('button', { name: 'Enregistrer le mot de passe' });
    await save.click();
    await page.getByRole('alert').filter({ hasText: 'Saisissez le mot de passe du compte sur le NAS.' }).waitFor();
    assert.equal(await input.getAttribute('aria-invalid'), 'true');

    // Kept: the PUT, the success announced, the field emptied, the status reloaded.
    const secret = 'mot de passe du NAS 2026 !';
    await input.fill(secret);
    const put = page.waitForResponse((r) => r.url().endsWith('/admin/backup/smb-password'));
    const t1 = Date.now();
    await save.click();
    const putResp = await put;
    assert.equal(putResp.status(), 204);
    assert.equal(putResp.request().method(), 'PUT');
    assert.deepEqual(putResp.request().postDataJSON(), { password: secret });
    await page.getByRole('status').filter({ hasText: /^Mot de passe du NAS enregistré/ }).waitFor();
    assert.equal(await input.inputValue(), '');
    assert.equal(await input.getAttribute('aria-invalid'), null);
    await dd('Mot de passe du compte').filter({ hasText: /^Mot de passe enregistré$/ }).waitFor({ timeout: 120_000 });
    const reloadMs = Date.now() - t1;
    await page.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => b.textContent === 'Sauvegarder maintenant' && !b.disabled));
    assert.equal(await page.getByRole('alert').filter({ hasText: 'n\'est pas enregistré sur la box' }).count(), 0, 'the refusal is gone');
    const after = await (await box.api('GET', '/admin/backup')).json();
    assert.equal(after.smb.password_set, true);
    assert.doesNotMatch(JSON.stringify(after), /mot de passe du NAS 2026/, 'the password is never answered back');
    assert.doesNotMatch(await page.locator('main').textContent(), /mot de passe du NAS 2026/);
    await checkAxe(page, 'sauvegardes (NAS, mot de passe enregistré)', axeResults);

    // The share cannot be listed (nothing answers): said in French once the box has tried.
    const t2 = Date.now();
    await expectEventually(async () => {
      await page.reload();
      await expectTitleAndH1(page, 'Sauvegardes', 'Sauvegardes');
      await dd('Partage du NAS').waitFor();
      return (await page.getByText('Liste indisponible : le partage du NAS est inaccessible.').count()) === 1;
    }, 120_000);
    const listMs = Date.now() - t2;
    await page.getByText(/^Partage du NAS inaccessible :/).waitFor();
    assert.doesNotMatch(await page.locator('main').textContent(), /NT_STATUS|smbclient|refused to/i, 'no English from the box');
    await checkAxe(page, 'sauvegardes (NAS injoignable)', axeResults);
    console.log(`# NAS page timings: opened in ${openMs} ms, status after the password in ${reloadMs} ms, unreachable share reported after ${listMs} ms`);
    assert.deepEqual(page.problems, []);

    // An agent: the API refuses the route (the page's own 403 is checked above).
    const agent = await newPage(browser, box);
    await login(agent, 'agent.nas', PASS);
    await acceptCharterIfShown(agent);
    const denied = await agent.evaluate(async () => {
      const { request } = await import('/app/js/api.js'); // the app's module: its CSRF token
      try {
        await request('PUT', '/admin/backup/smb-password', { password: 'essai' });
        return { status: 204 };
      } catch (e) {
        return { status: e.status, code: e.code };
      }
    });
    assert.deepEqual(denied, { status: 403, code: 'permission_denied' });
    assert.deepEqual(agent.problems, []);
  } finally {
    await box.stop();
  }
});

/** Calls `check` (true when done) until it says so, at most `ms`. */
async function expectEventually(check, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`not done after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
