// For iterating on the assets without rebuilding civiad: serves /app/* from the assets
// folder (with civiad's security headers) and proxies every other request to civiad.
// Used only when CIVIA_WEB_ASSETS_DIR is set; the tests proper run against the embedded assets.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = { html: 'text/html; charset=utf-8', css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8', png: 'image/png', svg: 'image/svg+xml' };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export function startProxy(assetsDir, upstream) {
  const up = new URL(upstream);
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') { res.writeHead(303, { location: '/app/' }); res.end(); return; }
    if (url.pathname.startsWith('/app/')) {
      const rel = url.pathname.slice(5) || 'index.html';
      const file = path.join(assetsDir, rel);
      if (!file.startsWith(assetsDir) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file).slice(1)] || 'application/octet-stream', 'content-security-policy': CSP, 'cache-control': 'no-cache' });
      res.end(fs.readFileSync(file));
      return;
    }
    // The client's Host header is kept: civiad compares it with the Origin of a login.
    const p = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: { ...req.headers } }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    p.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(p);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() })));
}
