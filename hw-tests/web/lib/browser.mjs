// Debian's Chromium driven by playwright-core, and helpers shared by the browser tests.
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { REPO } from './civiad.mjs';

const require = createRequire(import.meta.url);
export const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
/** jsQR (a QR code reader, Apache-2.0, pinned in package-lock.json): reads back the page's QR codes. */
const JSQR_SOURCE = fs.readFileSync(require.resolve('jsqr/dist/jsQR.js'), 'utf8');
export const SHOTS = path.join(REPO, 'hw-tests', 'web', 'screenshots');
export const README_SHOTS = path.join(REPO, 'docs', 'screenshots');
/** Model answers on a slow 2-core machine: wait up to this long. */
export const MODEL_TIMEOUT = 300_000;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/**
 * A page with its own context; collects console errors, CSP violations and page errors
 * (page.problems), so that tests can assert the app ran clean under its real CSP.
 */
export async function newPage(browser, server, opts = {}) {
  const context = await browser.newContext({
    baseURL: server.url, locale: 'fr-FR', viewport: { width: 1280, height: 900 },
    acceptDownloads: true, ...opts,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    // 4xx answers the tests provoke on purpose show as "Failed to load resource".
    if (m.type() === 'error' && !/Failed to load resource/.test(t)) page.problems.push(`console: ${t}`);
    if (/Content Security Policy/i.test(t)) page.problems.push(`csp: ${t}`);
  });
  return page;
}

export async function screenshot(page, name, { readme = false } = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  if (readme && process.env.CIVIA_README_SCREENSHOTS === '1') {
    fs.mkdirSync(README_SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(README_SHOTS, `web-${name}.png`), fullPage: false });
  }
}

/** Runs axe-core (WCAG 2.0/2.1 A and AA rules) and asserts no serious or critical violation. */
export async function checkAxe(page, label, results) {
  // page.evaluate goes through the DevTools protocol: the page's CSP does not block it.
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(`${AXE_SOURCE};0`);
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (results) results.push({ page: label, violations: r.length, serious: bad.length, ids: r.map((v) => `${v.id}(${v.impact})`) });
  assert.deepEqual(bad, [], `axe: serious/critical violations on ${label}: ${JSON.stringify(bad, null, 1)}`);
  return r;
}

/**
 * Reads the QR code drawn by the `<svg>` at `selector`: rasterised in the page (as an image,
 * scaled up without smoothing) and decoded by jsQR. Returns the decoded text, or null.
 */
export async function decodeQrSvg(page, selector) {
  const has = await page.evaluate(() => typeof window.jsQR !== 'undefined');
  if (!has) await page.evaluate(`${JSQR_SOURCE};0`);
  return page.evaluate(async (sel) => {
    const svg = document.querySelector(sel);
    if (!svg) return null;
    const xml = new XMLSerializer().serializeToString(svg);
    const img = new Image();
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(xml)}`;
    await img.decode();
    const side = Math.round(svg.viewBox.baseVal.width) * 8;
    const canvas = document.createElement('canvas');
    canvas.width = side;
    canvas.height = side;
    const c = canvas.getContext('2d');
    c.imageSmoothingEnabled = false;
    c.drawImage(img, 0, 0, side, side);
    const pixels = c.getImageData(0, 0, side, side);
    // eslint-disable-next-line no-undef
    const found = window.jsQR(pixels.data, side, side);
    return found ? found.data : null;
  }, selector);
}

export async function expectTitleAndH1(page, title, h1) {
  await page.waitForFunction((t) => document.title === t, `${title} — Civia`);
  const text = await page.locator('main h1').first().textContent();
  if (h1) assert.equal(text.trim(), h1);
}

/** Navigates by hash and waits for the view's h1. */
export async function goto(page, hash, h1) {
  await page.evaluate((hsh) => { location.hash = hsh; }, hash);
  if (h1) await page.locator('main h1', { hasText: h1 }).first().waitFor();
}

/** Logs in through the form (mouse-free: fill + Enter). */
export async function login(page, user, password) {
  await page.goto('/');
  await page.getByLabel('Identifiant').fill(user);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
}

/** Accepts the charter if it is shown. */
export async function acceptCharterIfShown(page) {
  const h1 = page.locator('main h1');
  await h1.first().waitFor();
  await page.waitForFunction(() => !/Connexion/.test(document.querySelector('main h1')?.textContent || ''));
  if ((await h1.first().textContent()).includes('Charte')) {
    await page.getByLabel(/J'ai lu la charte/).check();
    await page.getByRole('button', { name: /Accepter la charte/ }).click();
    await page.waitForFunction(() => !/Charte/.test(document.querySelector('main h1')?.textContent || ''));
  }
}

/** Presses Tab until the focused element matches `pred` (run in the page); returns its description. */
export async function tabUntil(page, pred, { max = 80, reverse = false } = {}) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press(reverse ? 'Shift+Tab' : 'Tab');
    const hit = await page.evaluate(pred);
    if (hit) return hit;
  }
  const where = await page.evaluate(() => document.activeElement && document.activeElement.outerHTML.slice(0, 200));
  throw new Error(`focus never reached the target after ${max} Tab presses (now on ${where})`);
}

/** The focused element's visible focus indicator: outline of at least 2px (or of its card). */
export async function assertFocusVisible(page) {
  const r = await page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { ok: false, what: 'body' };
    const probe = (e) => {
      const s = getComputedStyle(e);
      return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    };
    const card = el.closest('.carte-tache');
    return { ok: probe(el) || (card && probe(card)), what: el.outerHTML.slice(0, 120) };
  });
  assert.ok(r.ok, `no visible focus indicator on ${r.what}`);
}

export function saveJson(name, data) {
  fs.mkdirSync(SHOTS, { recursive: true });
  fs.writeFileSync(path.join(SHOTS, name), JSON.stringify(data, null, 2));
}
