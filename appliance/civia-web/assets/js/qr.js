// QR codes drawn as SVG through the DOM (no markup string, no inline style: the CSP allows
// neither), from the vendored `qrcode-generator` (js/vendor/qrcode-generator.js, MIT).
import qrcode from './vendor/qrcode-generator.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
// The quiet zone the QR standard asks for around the code, in modules.
const QUIET = 4;

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * The modules of `text`'s QR code (error correction M, the smallest version that fits):
 * {size, isDark(row, col)}. Text made only of QR's alphanumeric characters (digits, capitals,
 * space and $%*+-./:), such as a backup key, is encoded in that denser mode.
 */
export function qrMatrix(text) {
  const q = qrcode(0, 'M');
  q.addData(text, /^[0-9A-Z $%*+\-./:]*$/.test(text) ? 'Alphanumeric' : 'Byte');
  q.make();
  return { size: q.getModuleCount(), isDark: (r, c) => q.isDark(r, c) };
}

/**
 * An <svg role="img"> of `text`'s QR code, dark modules on white with the quiet zone; its
 * size on screen and on paper comes from `className` (app.css). `label` names it for
 * screen readers.
 */
export function qrSvg(text, { label, className = 'qr' } = {}) {
  const m = qrMatrix(text);
  const side = m.size + 2 * QUIET;
  const svg = svgEl('svg', {
    viewBox: `0 0 ${side} ${side}`, class: className, role: 'img', 'aria-label': label || 'QR code',
    'shape-rendering': 'crispEdges', focusable: 'false',
  });
  const title = svgEl('title', {});
  title.textContent = label || 'QR code';
  // One path for every dark module: one small square each (x y h1 v1 h-1 z).
  const d = [];
  for (let r = 0; r < m.size; r += 1) {
    for (let c = 0; c < m.size; c += 1) {
      if (m.isDark(r, c)) d.push(`M${c + QUIET} ${r + QUIET}h1v1h-1z`);
    }
  }
  svg.append(title,
    svgEl('rect', { x: 0, y: 0, width: side, height: side, fill: '#ffffff' }),
    svgEl('path', { d: d.join(''), fill: '#000000' }));
  return svg;
}
