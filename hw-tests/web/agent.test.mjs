// The agent's path in a real browser against a live civiad (SmolLM2): login -> charter ->
// "Rédiger un courrier" -> streamed draft -> DOCX export -> history -> erase; a keyboard-only
// walk-through of the letter; an agent kept out of the admin pages; CSRF on every change.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startCiviad, SMOL } from './lib/civiad.mjs';
import { readZip } from './lib/zip.mjs';
import {
  launch, newPage, screenshot, checkAxe, expectTitleAndH1, goto, login, acceptCharterIfShown, tabUntil,
  assertFocusVisible, saveJson, MODEL_TIMEOUT,
} from './lib/browser.mjs';

const axeResults = [];

const PASS = 'correct-horse-battery-9';
let server;
let browser;

before(async () => {
  server = await startCiviad();
  await server.createUser('agent.martin', 'agent', PASS);
  await server.createUser('agent.clavier', 'agent', PASS);
  browser = await launch();
});

after(async () => {
  saveJson('axe-agent.json', axeResults);
  if (browser) await browser.close();
  if (server) await server.stop();
});

/** Watches the result panel: did text show while the answer was still streaming? */
async function watchStreaming(page) {
  await page.evaluate(() => {
    window.__civiaStreamSeen = false;
    const obs = new MutationObserver(() => {
      const out = document.querySelector('.sortie');
      if (out && out.getAttribute('aria-busy') === 'true' && out.textContent.length > 0) window.__civiaStreamSeen = true;
    });
    obs.observe(document.getElementById('contenu'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function waitForDraft(page) {
  try {
    await page.locator('.resultat .statut', { hasText: /Rédaction (terminée|arrêtée)/ }).waitFor({ timeout: MODEL_TIMEOUT });
  } catch (e) {
    const state = await page.evaluate(() => ({
      status: [...document.querySelectorAll('.resultat .statut')].map((s) => s.textContent),
      alerts: document.querySelector('.resultat [role="alert"]')?.textContent,
      busy: document.querySelector('.sortie')?.getAttribute('aria-busy'),
      length: document.querySelector('.sortie')?.textContent.length,
      problems: null,
    })).catch(() => '?');
    throw new Error(`the draft did not finish: ${e.message}\n--- page: ${JSON.stringify(state)} ${JSON.stringify(page.problems)}\n--- civiad:\n${server.logTail(20)}`);
  }
}

test('login, charter, letter streamed, DOCX export, history, erase', { timeout: 900_000 }, async () => {
  const page = await newPage(browser, server);
  // / redirects to /app/: the login page, in French.
  await page.goto('/');
  assert.match(page.url(), /\/app\/$/);
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  await expectTitleAndH1(page, 'Connexion', 'Connexion à Civia');
  await screenshot(page, '01-connexion');
  await checkAxe(page, 'connexion', axeResults);

  // A wrong password: a French error in an alert.
  await page.getByLabel('Identifiant').fill('agent.martin');
  await page.getByLabel('Mot de passe').fill('pas-le-bon-mot-de-passe');
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('alert').filter({ hasText: 'Identifiant ou mot de passe incorrect.' }).waitFor();

  // The right one: the charter comes first.
  await page.getByLabel('Mot de passe').fill(PASS);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await expectTitleAndH1(page, 'Charte d\'utilisation', 'Charte d\'utilisation de l\'IA');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'civia_session');
  assert.ok(session, 'the session cookie is stored over http://127.0.0.1');
  assert.ok(session.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(session));
  await screenshot(page, '02-charte');
  await checkAxe(page, 'charte', axeResults);
  // Not ticked: refused with a message.
  await page.getByRole('button', { name: /Accepter la charte/ }).click();
  await page.getByRole('alert').filter({ hasText: 'Veuillez cocher la case' }).waitFor();
  await page.getByLabel(/J'ai lu la charte/).check();
  await page.getByRole('button', { name: /Accepter la charte/ }).click();

  // Home: the tasks.
  await expectTitleAndH1(page, 'Tâches', 'Que souhaitez-vous faire ?');
  assert.equal(await page.locator('.grille-taches').first().locator('li').count(), 7);
  await screenshot(page, '03-taches', { readme: true });
  await checkAxe(page, 'taches', axeResults);

  // The letter.
  await page.getByRole('link', { name: 'Rédiger un courrier' }).click();
  await expectTitleAndH1(page, 'Rédiger un courrier', 'Rédiger un courrier');
  // Focus moved to the view's h1.
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1');
  await page.getByLabel('Destinataire').fill('Mme Claire Dubois, 4 place de l\'Église');
  await page.getByLabel('Objet du courrier').fill('Autorisation d\'occupation du domaine public');
  await page.getByLabel('Points à aborder').fill('demande reçue le 3 mars\nautorisation accordée pour la terrasse du café\nredevance annuelle à régler');
  await page.getByLabel('Ton').selectOption('cordial');
  await watchStreaming(page);
  await page.getByRole('button', { name: 'Rédiger le courrier' }).click();
  await waitForDraft(page);
  const result = page.locator('section.resultat');
  assert.ok(await result.getByText('Brouillon IA — à vérifier').isVisible(), 'the AI marking is shown on the output');
  const draft = (await result.locator('.sortie').textContent()).trim();
  assert.ok(draft.length > 20, `a draft came back: ${JSON.stringify(draft)}`);
  assert.ok(await page.evaluate(() => window.__civiaStreamSeen), 'text appeared while the answer was streaming');
  assert.ok(await result.getByText(/Texte généré par intelligence artificielle \(modèle/).isVisible());
  await screenshot(page, '04-courrier', { readme: true });
  await checkAxe(page, 'courrier-resultat', axeResults);

  // Copy.
  await result.getByRole('button', { name: 'Copier le texte' }).click();
  await result.getByText('Le texte a été copié dans le presse-papiers.').waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.ok(clip.length > 20);

  // DOCX export: a real zip with the text and the AI metadata.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    result.getByRole('button', { name: 'Télécharger en DOCX (Word)' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.docx$/);
  const docx = fs.readFileSync(await download.path());
  const files = readZip(docx);
  const body = files.get('word/document.xml').toString('utf8');
  const custom = files.get('docProps/custom.xml').toString('utf8');
  assert.match(body, /Brouillon IA — à vérifier/, 'the visible notice');
  const words = clip.split(/\s+/).filter((w) => /^[\p{L}]{4,}$/u.test(w)).slice(0, 3);
  for (const w of words) assert.ok(body.includes(w), `the draft's word ${w} is in the DOCX`);
  assert.match(custom, /name="civia_ai_generated"[^>]*>\s*<vt:bool>true<\/vt:bool>/);
  assert.ok(custom.includes(SMOL), 'the model id is in the DOCX metadata');
  await result.getByText(/a été téléchargé/).waitFor();

  // ODT and text exports download too.
  const [odt] = await Promise.all([page.waitForEvent('download'), result.getByRole('button', { name: /ODT/ }).click()]);
  assert.match(odt.suggestedFilename(), /\.odt$/);
  assert.ok(readZip(fs.readFileSync(await odt.path())).has('meta.xml'));

  // History: the conversation is there, with its retention.
  await page.getByRole('navigation', { name: 'Menu principal' }).getByRole('link', { name: 'Historique' }).click();
  await expectTitleAndH1(page, 'Historique', 'Historique de vos conversations');
  await page.getByText(/conservé 30 jours/).waitFor();
  const row = page.locator('table tbody tr');
  assert.equal(await row.count(), 1);
  assert.match(await row.first().textContent(), /Courrier — Autorisation d'occupation/);
  await screenshot(page, '05-historique');
  await checkAxe(page, 'historique', axeResults);

  // Open it in the chat and continue.
  await row.first().getByRole('link').click();
  await page.locator('main h1', { hasText: 'Courrier' }).waitFor();
  assert.ok((await page.locator('.message-assistant').count()) >= 1);
  await page.getByLabel('Votre message').fill('Raccourcissez ce courrier.');
  await page.getByRole('button', { name: 'Envoyer' }).click();
  await page.getByText(/Réponse (terminée|arrêtée)/).waitFor({ timeout: MODEL_TIMEOUT });
  assert.equal(await page.locator('.message-assistant').count(), 2);
  await screenshot(page, '06-discussion');
  await checkAxe(page, 'discussion', axeResults);

  // Erase everything, through the confirmation dialog.
  await goto(page, '#/historique', 'Historique de vos conversations');
  await page.getByRole('button', { name: 'Effacer tout mon historique' }).click();
  const dialog = page.getByRole('dialog', { name: 'Effacer tout votre historique ?' });
  await dialog.waitFor();
  await checkAxe(page, 'dialogue-effacement', axeResults);
  // Escape cancels, focus back on the opener.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Effacer tout mon historique');
  await page.getByRole('button', { name: 'Effacer tout mon historique' }).click();
  await dialog.getByRole('button', { name: 'Tout effacer' }).click();
  await page.getByText('1 conversation(s) effacée(s).').waitFor();
  await page.getByText('Aucune conversation conservée pour le moment.').waitFor();
  const list = await (await server.api('GET', '/v1/conversations')).json();
  assert.ok(Array.isArray(list.data));

  // Mes données: the export downloads a JSON file.
  await goto(page, '#/mes-donnees', 'Mes données');
  const [mine] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Télécharger mes données/ }).click()]);
  const data = JSON.parse(fs.readFileSync(await mine.path(), 'utf8'));
  assert.ok(JSON.stringify(data).includes('agent.martin'));
  await screenshot(page, '07-mes-donnees');
  await checkAxe(page, 'mes-donnees', axeResults);

  // Logout: back to the login page.
  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await expectTitleAndH1(page, 'Connexion', 'Connexion à Civia');
  assert.deepEqual(page.problems, []);
});

test('an agent cannot reach the admin pages; every change needs the CSRF token', { timeout: 300_000 }, async () => {
  const page = await newPage(browser, server);
  await login(page, 'agent.martin', PASS);
  await acceptCharterIfShown(page); // when run alone, without the first test
  await page.locator('main h1', { hasText: 'Que souhaitez-vous faire ?' }).waitFor();
  // No admin link in the menu.
  assert.equal(await page.getByRole('link', { name: 'Administration' }).count(), 0);
  for (const hash of ['#/admin', '#/admin/utilisateurs', '#/admin/cles', '#/admin/audit', '#/admin/sauvegardes', '#/admin/systeme']) {
    await goto(page, hash, 'Accès refusé');
    await expectTitleAndH1(page, 'Accès refusé', 'Accès refusé');
    await page.getByRole('alert').filter({ hasText: 'ne donne pas accès à cette page' }).waitFor();
  }
  await screenshot(page, '08-acces-refuse');
  await checkAxe(page, 'acces-refuse', axeResults);
  // The API refuses too, whatever the page does.
  const api = await page.evaluate(async () => {
    const r = await fetch('/admin/users');
    return { status: r.status, body: await r.json() };
  });
  assert.equal(api.status, 403);
  assert.equal(api.body.error.code, 'permission_denied');

  // CSRF: the same requests from the page, without the token, are refused.
  const csrf = await page.evaluate(async () => {
    const calls = [
      ['DELETE', '/v1/conversations', undefined],
      ['POST', '/v1/exports/txt', JSON.stringify({ title: 't', text: 'x' })],
      ['POST', '/v1/charter/accept', JSON.stringify({ version: 1 })],
      ['POST', '/v1/chat/completions', JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'x' }] })],
      ['POST', '/auth/logout', undefined],
    ];
    const out = [];
    for (const [method, url, body] of calls) {
      const r = await fetch(url, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
      let code = null;
      try { code = (await r.json()).error.code; } catch { code = null; }
      out.push({ method, url, status: r.status, code });
    }
    return out;
  });
  for (const c of csrf) {
    assert.equal(c.status, 403, `${c.method} ${c.url} without X-CSRF-Token: ${c.status}`);
    assert.equal(c.code, 'csrf_failed', `${c.method} ${c.url}`);
  }
  // Still logged in (the logout without token was refused).
  const me = await page.evaluate(async () => (await fetch('/auth/me')).status);
  assert.equal(me, 200);
  assert.deepEqual(page.problems, []);
});

test('keyboard only: log in, accept the charter, write a letter, download it', { timeout: 600_000 }, async () => {
  const page = await newPage(browser, server);
  await page.goto('/app/');
  await page.locator('main h1', { hasText: 'Connexion à Civia' }).waitFor();
  const focused = () => page.evaluate(() => document.activeElement && (document.activeElement.labels?.[0]?.textContent || document.activeElement.textContent || '').trim());
  // The skip link comes first in the page and leads to the main content.
  await tabUntil(page, () => document.activeElement.id === 'lien-evitement', { reverse: true, max: 5 });
  await assertFocusVisible(page);
  assert.ok(await page.evaluate(() => !document.activeElement.previousElementSibling), 'the skip link is the first element');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'contenu');
  assert.match(page.url(), /\/app\/(#\/?)?$/, 'the skip link does not change the route');
  await tabUntil(page, () => document.activeElement.name === 'username');
  await page.keyboard.type('agent.clavier');
  await page.keyboard.press('Tab');
  await assertFocusVisible(page);
  await page.keyboard.type(PASS);
  await page.keyboard.press('Enter');
  await page.locator('main h1', { hasText: 'Charte' }).waitFor();
  await tabUntil(page, () => document.activeElement.type === 'checkbox');
  await assertFocusVisible(page);
  await page.keyboard.press('Space');
  await page.keyboard.press('Tab');
  assert.match(await focused(), /Accepter la charte/);
  await page.keyboard.press('Enter');
  await page.locator('main h1', { hasText: 'Que souhaitez-vous faire ?' }).waitFor();

  // To the letter task by Tab, open it with Enter.
  await tabUntil(page, () => document.activeElement.textContent.trim() === 'Rédiger un courrier' && document.activeElement.tagName === 'A');
  await assertFocusVisible(page);
  await page.keyboard.press('Enter');
  await page.locator('main h1', { hasText: 'Rédiger un courrier' }).waitFor();
  // Fields in order: Destinataire, Objet, Points, Ton, Signataire, then the button.
  await tabUntil(page, () => document.activeElement.name === 'destinataire');
  await assertFocusVisible(page);
  await page.keyboard.type('M. Paul Lefèvre');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'objet');
  await page.keyboard.type('Inscription sur les listes électorales');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'points');
  await page.keyboard.type('inscription enregistrée\ncarte électorale envoyée par courrier');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'ton');
  await assertFocusVisible(page);
  await page.keyboard.press('ArrowDown'); // cordial
  assert.equal(await page.evaluate(() => document.activeElement.value), 'cordial');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'signataire');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Rédiger le courrier');
  await assertFocusVisible(page);
  await page.keyboard.press('Space');
  // Focus goes to the stop button while it writes, then to the result heading.
  await waitForDraft(page);
  await page.waitForFunction(() => document.activeElement && document.activeElement.textContent === 'Résultat');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Copier le texte');
  await assertFocusVisible(page);
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Télécharger en DOCX (Word)');
  const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
  assert.match(download.suggestedFilename(), /\.docx$/);
  // No trap: Tab goes on to the footer and wraps to the browser.
  await tabUntil(page, () => document.activeElement.textContent.includes('Accessibilité'));
  assert.deepEqual(page.problems, []);
});
