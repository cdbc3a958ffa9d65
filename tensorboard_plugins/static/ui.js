// Shared helpers of the keras_heuristics dashboards: DOM building (text
// only, never HTML), JSON fetching with readable errors, colour maps and
// axis ticks.

/** Creates an element; children are nodes or strings (set as text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** Same, in the SVG namespace. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/** A `<select>` of `[value, label]` pairs (or plain strings). */
export function select(options, value, onchange) {
  const node = el('select', { onchange: () => onchange(node.value) });
  for (const option of options) {
    const [v, label] = Array.isArray(option) ? option : [option, option];
    node.append(el('option', { value: v, text: label }));
  }
  if (value != null) node.value = value;
  return node;
}

/** Fetches JSON from a plugin route; throws the route's own message. */
export async function fetchJSON(route, params = {}) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${route}?${query}` : route);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`${route}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) throw new Error(body?.error ?? `HTTP ${response.status}`);
  return body;
}

/** Loads the shared style sheet once. */
export function loadStyle() {
  if (document.getElementById('kh-style')) return;
  const href = new URL('./style.css', import.meta.url).href;
  document.head.append(el('link', { id: 'kh-style', rel: 'stylesheet', href }));
}

/** Replaces the content of `node` with a message (kind: info|error). */
export function message(node, text, kind = 'info') {
  node.replaceChildren(el('div', { class: `kh-message kh-${kind}`, text }));
}

/** Marks the document as rendered (end-to-end tests wait for it). */
/**
 * The plugin's runs that hold at least one series, as `{run: {tag: info}}`
 * from `./tags`; null (with the reason shown in `status`) when there are
 * none or the listing failed.
 */
export async function listRuns(status, emptyText) {
  let runs;
  try {
    runs = (await fetchJSON('./tags')).runs;
  } catch (e) {
    message(status, `Could not list the series: ${e.message}`, 'error');
    return null;
  }
  const names = Object.keys(runs).filter((r) => Object.keys(runs[r]).length);
  if (!names.length) {
    message(status, emptyText);
    return null;
  }
  return runs;
}

export function setReady(value = '1') {
  document.body.dataset.ready = value;
}

// Colour maps. Anchors of matplotlib's viridis (sequential) and a
// blue-white-red diverging map; linear interpolation between anchors.
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142],
  [38, 130, 142], [31, 158, 137], [53, 183, 121], [110, 206, 88],
  [181, 222, 43], [253, 231, 37],
];
const DIVERGING = [
  [5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222],
  [209, 229, 240], [247, 247, 247], [253, 219, 199], [244, 165, 130],
  [214, 96, 77], [178, 24, 43], [103, 0, 31],
];

function interpolate(anchors, t) {
  const x = Math.min(1, Math.max(0, t)) * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(x));
  const f = x - i;
  return anchors[i].map((a, k) => Math.round(a + f * (anchors[i + 1][k] - a)));
}

export const colormaps = {
  viridis: (t) => interpolate(VIRIDIS, t),
  diverging: (t) => interpolate(DIVERGING, t),
};

/** `[r, g, b]` of `value` in `scale` ({lo, hi, map}); grey for missing. */
export function colour(scale, value) {
  if (value == null || !Number.isFinite(value)) return [160, 160, 160];
  const span = scale.hi - scale.lo;
  return scale.map(span > 0 ? (value - scale.lo) / span : 0.5);
}

export const rgb = ([r, g, b]) => `rgb(${r},${g},${b})`;

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

/** Short number text: 4 significant digits. */
export function format(value) {
  if (value == null || !Number.isFinite(value)) return 'n/a';
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(4)));
}

/** [min, max] of the finite numbers in nested arrays. */
export function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values.flat(Infinity)) {
    if (v == null || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** A canvas sized in CSS pixels, drawn at the device's resolution. */
export function hidpiCanvas(width, height, attrs = {}) {
  const canvas = el('canvas', attrs);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  return [canvas, ctx];
}

/** A vertical colour bar for `scale`, with ticks and a title. */
export function colourBar(scale, height, title = '') {
  const width = 70;
  const [canvas, ctx] = hidpiCanvas(width, height + 20, { class: 'kh-colourbar' });
  const top = 10;
  for (let y = 0; y < height; y++) {
    ctx.fillStyle = rgb(scale.map(1 - y / (height - 1)));
    ctx.fillRect(0, top + y, 14, 1);
  }
  ctx.strokeStyle = '#888';
  ctx.strokeRect(0.5, top + 0.5, 13, height - 1);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textBaseline = 'middle';
  for (const v of ticks(scale.lo, scale.hi, 5)) {
    const y = top + (1 - (v - scale.lo) / (scale.hi - scale.lo || 1)) * (height - 1);
    ctx.fillRect(14, y, 4, 1);
    ctx.fillText(format(v), 20, y);
  }
  canvas.title = title;
  canvas.dataset.lo = String(scale.lo);
  canvas.dataset.hi = String(scale.hi);
  return canvas;
}

/** Shortens text to fit `width` pixels in `ctx`'s font. */
export function fit(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}
