// The API client: JSON calls with the session cookie and the CSRF token, errors as
// ApiError with a French message (worded by messages.js from the error's code and details,
// never the box's English message), and the streamed answers (SSE over fetch): the chat
// completion, and the JSON event streams of the transcription and the meeting minutes.
import { errorFrench } from './messages.js';

let csrfToken = null;
let onUnauthorized = null;

export function setCsrf(token) { csrfToken = token || null; }
/** Called with the ApiError when a call answers 401 (session ended) outside the login. */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// The HTTP status a code stands for when it arrives inside a stream (no status of its own).
const STREAM_STATUS = { queue_full: 429, rate_limit_exceeded: 429, daily_quota_exceeded: 429, speech_busy: 503, speech_unavailable: 503, model_unavailable: 503, embedding_unavailable: 503, knowledge_busy: 503 };

/** "dans 2 minutes" from a Retry-After in seconds. */
export function frenchDelay(secs) {
  const s = Math.max(1, Math.round(Number(secs) || 0));
  if (s < 60) return `${s} seconde${s > 1 ? 's' : ''}`;
  const m = Math.ceil(s / 60);
  if (m < 60) return `${m} minute${m > 1 ? 's' : ''}`;
  const hr = Math.ceil(m / 60);
  return `${hr} heure${hr > 1 ? 's' : ''}`;
}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.type = e.type || null;
    this.param = e.param || null;
    // Civia's extension (docs/errors.md): {reason, …values} for the French sentence.
    this.details = e.details && typeof e.details === 'object' ? e.details : null;
    // The box's English message: for logs and developers, never shown to the agent.
    this.serverMessage = e.message || '';
    this.retryAfter = retryAfter;
  }

  /** The message to show the agent, in French (from the code and details, see messages.js). */
  get french() {
    let msg = errorFrench(this.code, this.details, this.param);
    if (msg === null) {
      if (this.status === 0) msg = 'La box ne répond pas. Vérifiez la connexion au réseau de la mairie puis réessayez.';
      else if (this.status === 403) msg = errorFrench('permission_denied');
      else if (this.status === 413) msg = errorFrench('request_too_large');
      else if (this.status >= 500) msg = errorFrench('internal_error');
      else msg = `La demande a été refusée (${this.code || this.status}).`;
    }
    if (this.retryAfter && (this.status === 429 || this.status === 503)) {
      const delay = frenchDelay(this.retryAfter);
      // A sentence that already says « réessayez plus tard » gets the delay in its place.
      const vague = / : réessayez (plus tard|dans quelques secondes)\.$/;
      if (vague.test(msg)) msg = msg.replace(vague, ` : réessayez dans ${delay}.`);
      else msg += ` Veuillez réessayer dans ${delay}.`;
    }
    return msg;
  }
}

async function errorFrom(resp) {
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  return new ApiError(resp.status, body, resp.headers.get('retry-after'));
}

/** An ApiError for an `{"error": …}` event received inside a stream. */
export function streamError(json) {
  const code = json && json.error && json.error.code;
  return new ApiError(STREAM_STATUS[code] || 500, json, null);
}

/**
 * Low-level call: returns the Response when ok, throws ApiError otherwise.
 * body: a plain object (sent as JSON), a Blob/File (sent raw), a FormData (sent as
 * multipart/form-data, the browser writes the boundary), or undefined.
 */
export async function request(method, path, body, { headers = {}, signal, login = false } = {}) {
  const h = { ...headers };
  let payload;
  if (body instanceof Blob || body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) h['X-CSRF-Token'] = csrfToken;
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, null, null);
  }
  if (!resp.ok) {
    const err = await errorFrom(resp);
    if (resp.status === 401 && !login && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return resp;
}

/** JSON call: the parsed answer, or null for 204. */
export async function api(method, path, body, opts) {
  const resp = await request(method, path, body, opts);
  if (resp.status === 204) return null;
  const type = resp.headers.get('content-type') || '';
  return type.includes('json') ? resp.json() : resp.text();
}

/** The filename of a Content-Disposition header (filename*= or filename=). */
export function dispositionName(resp, fallback) {
  const cd = resp.headers.get('content-disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) { try { return decodeURIComponent(star[1]); } catch { /* fall through */ } }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return plain ? plain[1] : fallback;
}

/** Fetches a file (GET or POST) and returns {blob, filename}. */
export async function fetchFile(method, path, body, fallbackName) {
  const resp = await request(method, path, body);
  const blob = await resp.blob();
  return { blob, filename: dispositionName(resp, fallbackName) };
}

/**
 * Reads a `text/event-stream` answer: calls onData(data) with each event's data (the
 * `data:` lines joined), until the stream ends or onData returns true. Whatever onData
 * throws, and an AbortError when the request is stopped, propagate to the caller.
 */
export async function readSse(resp, onData) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let done = false;
  let ended = false;
  try {
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) { ended = true; break; }
      buffer += decoder.decode(value, { stream: true });
      // Events are separated by a blank line; lines may end with \r\n.
      let idx;
      while ((idx = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const raw = buffer.slice(0, idx);
        buffer = buffer.slice(idx).replace(/^\r?\n\r?\n/, '');
        const data = raw.split(/\r?\n/)
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data && onData(data)) { done = true; break; }
      }
    }
  } finally {
    // Stopped early ([DONE] or an error event): let the connection go.
    if (!ended) reader.cancel().catch(() => {});
    try { reader.releaseLock(); } catch { /* already released */ }
  }
}

/**
 * POSTs `body` (JSON object or FormData) to a route that answers a stream of JSON events
 * (`data: {…}` … `data: [DONE]`), calling onEvent(json) for each. Resolves {aborted, complete}:
 * complete is false when the stream ended without `[DONE]`. Throws ApiError on a refusal,
 * before the stream (HTTP error) or inside it (`data: {"error": …}`).
 */
export async function streamEvents(path, body, { signal, onEvent }) {
  const out = { aborted: false, complete: false };
  try {
    const resp = await request('POST', path, body, { signal });
    await readSse(resp, (data) => {
      if (data === '[DONE]') { out.complete = true; return true; }
      let json;
      try { json = JSON.parse(data); } catch { return false; }
      if (json && json.error) throw streamError(json);
      onEvent(json);
      return false;
    });
  } catch (e) {
    if (e && e.name === 'AbortError') { out.aborted = true; return out; }
    throw e;
  }
  return out;
}

/**
 * Streams a chat completion. opts: {model, messages, maxTokens, temperature, civia, signal,
 * onDelta(text, full), extra (more request fields, e.g. {search: true, search_args}),
 * onSearchResults(results) (the excerpts of a grounded answer, sent in the first chunk)}.
 * Resolves {text, finishReason, civia, conversationId, aborted, searchResults}.
 * Throws ApiError on a refusal (before or during the stream).
 */
export async function streamChat(opts) {
  const body = {
    model: opts.model,
    messages: opts.messages,
    stream: true,
    max_tokens: opts.maxTokens,
    temperature: opts.temperature ?? 0.3,
  };
  if (opts.civia) body.civia = opts.civia;
  if (opts.extra) Object.assign(body, opts.extra);
  const result = { text: '', finishReason: null, civia: null, conversationId: null, aborted: false, searchResults: null };
  let resp;
  try {
    resp = await request('POST', '/v1/chat/completions', body, { signal: opts.signal });
  } catch (e) {
    if (e && e.name === 'AbortError') { result.aborted = true; return result; }
    throw e;
  }
  result.conversationId = resp.headers.get('x-civia-conversation-id');
  const handleEvent = (data) => {
    if (data === '[DONE]') return true;
    let json;
    try { json = JSON.parse(data); } catch { return false; }
    if (json.error) throw streamError(json);
    if (Array.isArray(json.search_results) && !result.searchResults) {
      result.searchResults = json.search_results;
      if (opts.onSearchResults) opts.onSearchResults(json.search_results);
    }
    const choice = (json.choices || [])[0];
    if (choice && choice.delta && typeof choice.delta.content === 'string' && choice.delta.content) {
      result.text += choice.delta.content;
      if (opts.onDelta) opts.onDelta(choice.delta.content, result.text);
    }
    if (choice && choice.finish_reason) result.finishReason = choice.finish_reason;
    if (json.civia) {
      result.civia = json.civia;
      if (json.civia.conversation_id) result.conversationId = json.civia.conversation_id;
    }
    return false;
  };
  try {
    await readSse(resp, handleEvent);
  } catch (e) {
    if (e && e.name === 'AbortError') { result.aborted = true; return result; }
    throw e;
  }
  return result;
}

/**
 * Sends a multipart form with the upload's progress (XMLHttpRequest: fetch cannot report
 * it). opts: {signal, onProgress(sentBytes, totalBytes)}. Resolves {status, body} (the
 * parsed JSON answer); throws ApiError on a refusal, AbortError when stopped.
 */
export function uploadForm(path, form, { signal, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.withCredentials = true;
    if (csrfToken) xhr.setRequestHeader('X-CSRF-Token', csrfToken);
    const abort = () => xhr.abort();
    if (signal) {
      if (signal.aborted) { reject(new DOMException('Envoi arrêté.', 'AbortError')); return; }
      signal.addEventListener('abort', abort, { once: true });
    }
    const done = () => { if (signal) signal.removeEventListener('abort', abort); };
    if (onProgress) {
      xhr.upload.addEventListener('progress', (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded, ev.total);
      });
    }
    xhr.addEventListener('load', () => {
      done();
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300) { resolve({ status: xhr.status, body }); return; }
      const err = new ApiError(xhr.status, body, xhr.getResponseHeader('retry-after'));
      if (xhr.status === 401 && onUnauthorized) onUnauthorized(err);
      reject(err);
    });
    xhr.addEventListener('error', () => { done(); reject(new ApiError(0, null, null)); });
    xhr.addEventListener('abort', () => { done(); reject(new DOMException('Envoi arrêté.', 'AbortError')); });
    xhr.send(form);
  });
}

/** One non-streamed completion's text (used for the partial summaries of long documents). */
export async function completeOnce(opts) {
  // Streamed anyway: the stop button can cancel it and progress stays responsive.
  return streamChat(opts);
}
