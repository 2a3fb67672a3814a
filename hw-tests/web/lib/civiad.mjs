// Starts the real civiad binary with the SmolLM2 model for one test file, like
// hw-tests/api/conftest.py: a fresh state dir, a free port, the trial admin key.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MODEL_DIR = process.env.CIVIA_MODEL_DIR || path.join(REPO, '.cache', 'models');
export const SMOL = 'SmolLM2-135M-Instruct.Q4_1';
export const DEV_KEY = 'test-dev-key-0123456789';
/** The whisper.cpp model of the transcription tests (appliance/scripts/install-models.sh). */
export const WHISPER = 'ggml-whisper-base.bin';
const READY_TIMEOUT_MS = 120_000;

export function civiadBin() {
  const p = process.env.CIVIAD_BIN || path.join(REPO, 'target', 'release', 'civiad');
  try { fs.accessSync(p, fs.constants.X_OK); } catch {
    throw new Error(`civiad binary not found at ${p}: run \`cargo build --release -p civiad\` or set CIVIAD_BIN`);
  }
  return p;
}

export function modelPath(model = SMOL) {
  const p = model.endsWith('.gguf') ? model : path.join(MODEL_DIR, `${model}.gguf`);
  if (!fs.existsSync(p)) throw new Error(`model file ${p} is missing: run appliance/scripts/install-models.sh (or set CIVIA_MODEL_DIR)`);
  return p;
}

/** The speech model's path ($CIVIA_WHISPER_MODEL or <model dir>/ggml-whisper-base.bin). */
export function speechModelPath() {
  const p = process.env.CIVIA_WHISPER_MODEL || path.join(MODEL_DIR, WHISPER);
  if (!fs.existsSync(p)) throw new Error(`speech model ${p} is missing: run appliance/scripts/install-models.sh (or set CIVIA_WHISPER_MODEL)`);
  return p;
}

/** A TOML value: strings quoted (JSON escapes are valid TOML basic strings), numbers and booleans as is. */
function tomlValue(v) {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts civiad; resolves {url, port, dir, log, stop(), logTail(), api(method, path, body)}.
 * extraToml: configuration text added as is (start it with its own `[section]` header);
 * speech: true, or an object of extra `[speech]` keys ({max_upload_bytes: 4194304}), adds a
 * `[speech]` section with the whisper model (the worker `civia-speech-worker` is taken from
 * next to civiad).
 */
export async function startCiviad({ model = SMOL, extraToml = '', speech = null } = {}) {
  const binary = civiadBin();
  const mpath = modelPath(model);
  if (speech) {
    const keys = { path: speechModelPath(), ...(speech === true ? {} : speech) };
    extraToml = [extraToml, '[speech]', ...Object.entries(keys).map(([k, v]) => `${k} = ${tomlValue(v)}`)].join('\n');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'civia-web-'));
  const port = await freePort();
  const config = path.join(dir, 'civiad.toml');
  fs.writeFileSync(config, [
    `state_dir = "${path.join(dir, 'state')}"`,
    '[api]', `listen = "127.0.0.1:${port}"`,
    extraToml,
    '[model]', `path = "${mpath}"`, '',
  ].join('\n'));
  const logPath = path.join(dir, 'civiad.log');
  const out = fs.openSync(logPath, 'w');
  const env = { ...process.env, CIVIA_DEV_API_KEY: DEV_KEY };
  const proc = spawn(binary, ['--config', config], { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });
  const url = `http://127.0.0.1:${port}`;
  // server.url may be replaced by the dev proxy's; server.api always talks to civiad.
  const server = {
    url, port, dir, proc, logPath,
    logTail(n = 40) {
      try { return fs.readFileSync(logPath, 'utf8').split('\n').slice(-n).join('\n'); } catch { return '(no log)'; }
    },
    async stop() {
      if (exited) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 15_000);
      await done;
      clearTimeout(t);
    },
    /** A call with the trial admin key (Bearer). */
    async api(method, p, body, headers = {}) {
      const h = { authorization: `Bearer ${DEV_KEY}`, ...headers };
      let payload = body;
      if (body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string') {
        h['content-type'] = 'application/json';
        payload = JSON.stringify(body);
      }
      return fetch(url + p, { method, headers: h, body: payload });
    },
    /**
     * Creates a user as the administrator does (with a generated password), then, as the user,
     * replaces it with `password` (POST /auth/password): a password of their own, the only
     * kind whose sessions reach their history.
     */
    async createUser(name, role, password) {
      const r = await server.api('POST', '/admin/users', { name, role });
      if (r.status !== 201 && r.status !== 200) throw new Error(`create user ${name}: ${r.status} ${await r.text()}`);
      const created = await r.json();
      const login = await fetch(url + '/auth/login', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: name, password: created.password }),
      });
      if (login.status !== 200) throw new Error(`login ${name}: ${login.status} ${await login.text()}`);
      const { csrf_token: csrf } = await login.json();
      const cookie = (login.headers.get('set-cookie') || '').split(';')[0];
      const changed = await fetch(url + '/auth/password', {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
        body: JSON.stringify({ current_password: created.password, new_password: password }),
      });
      if (changed.status !== 200) throw new Error(`own password ${name}: ${changed.status} ${await changed.text()}`);
      return created;
    },
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) throw new Error(`civiad exited (${JSON.stringify(exited)}):\n${server.logTail()}`);
    try {
      const r = await fetch(`${url}/ready`);
      if (r.status === 200) {
        if (process.env.CIVIA_WEB_ASSETS_DIR) {
          const { startProxy } = await import('./devproxy.mjs');
          const proxy = await startProxy(path.resolve(process.env.CIVIA_WEB_ASSETS_DIR), url);
          const stop = server.stop;
          server.url = proxy.url;
          server.stop = async () => { proxy.close(); await stop(); };
        }
        return server;
      }
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`civiad not ready after ${READY_TIMEOUT_MS / 1000} s:\n${server.logTail()}`);
    }
    await sleep(200);
  }
}
