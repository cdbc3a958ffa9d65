// Shared helpers of the keras_heuristics dashboards: DOM building (text
// only, never HTML), JSON fetching with readable errors, TensorBoard's
// reload messages, state in the URL, downloads, colour maps and axes.

/** Creates an element; children are nodes or strings (set as text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null) continue;
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

/**
 * User text (run, tag and layer names) set apart from the text around it:
 * first-strong isolate ... pop directional isolate, so that a right-to-left
 * override inside a name cannot reverse what follows it.
 */
export const iso = (text) => `\u2068${text}\u2069`;

/** Text of at most `n` characters, cut in the middle (the end often tells
 * names apart: `block3/conv2`). */
export function clip(text, n = 120) {
  const s = String(text);
  if (s.length <= n) return s;
  const tail = Math.ceil((n - 1) * 0.6);
  return `${s.slice(0, n - 1 - tail)}…${s.slice(s.length - tail)}`;
}

/** A `<select>` of `[value, label]` pairs (or plain strings). */
export function select(options, value, onchange, attrs = {}) {
  const node = el('select', { ...attrs, onchange: () => onchange(node.value) });
  for (const option of options) {
    const [v, label] = Array.isArray(option) ? option : [option, option];
    node.append(el('option', { value: v, text: clip(label), title: label }));
  }
  if (value != null) node.value = value;
  return node;
}

/** A checkbox with a label. */
export function checkbox(label, checked, onchange, attrs = {}) {
  const box = el('input', { type: 'checkbox', ...attrs });
  box.checked = Boolean(checked);
  box.addEventListener('change', () => onchange(box.checked));
  return el('label', {}, box, label);
}

// JSON has no NaN or infinity: the routes send them as these strings.
const NON_FINITE = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function decode(values, round) {
  if (Array.isArray(values)) return values.map((v) => decode(v, round));
  if (typeof values === 'string') return NON_FINITE[values] ?? NaN;
  return round(values);
}

/** Fetches JSON from a plugin route; throws the route's own message. */
export async function fetchJSON(route, params = {}) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${route}?${query}` : route, { cache: 'no-store' });
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`${route}: HTTP ${response.status}, not JSON`);
  }
  if (!response.ok) throw new Error(body?.error ?? `HTTP ${response.status}`);
  // Float32 data arrive as their shortest decimals: back to the exact
  // float32 values, so that differences are those of the logged numbers.
  if (body && 'values' in body) {
    body.values = decode(body.values, body.dtype === 'float32' ? Math.fround : (v) => v);
  }
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
  for (const r of Object.keys(runs)) if (!Object.keys(runs[r]).length) delete runs[r];
  if (!Object.keys(runs).length) {
    message(status, emptyText);
    return null;
  }
  return runs;
}

/** Marks the document as rendered (end-to-end tests wait for it). */
export function setReady(value = '1') {
  document.body.dataset.ready = value;
}

// TensorBoard's host messages (tensorboard/components/experimental/
// plugin_lib): JSON `{type, id, payload, error, isReply}` over a
// MessagePort that the page hands to its parent frame.

/** Calls `onReload` on TensorBoard's reload button and auto-reload. */
export function onHostReload(onReload) {
  if (window.parent === window) return;
  const channel = new MessageChannel();
  const port = channel.port1;
  port.addEventListener('message', async (event) => {
    let m;
    try {
      m = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (m.isReply) return;
    let error = null;
    if (m.type === 'experimental.DataReloaded') {
      try {
        await onReload();
      } catch (e) {
        error = String(e);
      }
    }
    port.postMessage(JSON.stringify({
      type: m.type, id: m.id, payload: null, error, isReply: true,
    }));
  });
  port.start();
  window.parent.postMessage('experimental.bootstrap', '*', [channel.port2]);
}

// State in TensorBoard's URL: `p.<plugin>.<key>=<value>` entries of the
// page's hash (the keys TensorBoard hands to plugins), so a view can be
// shared as a link.

function hostLocation() {
  try {
    return window.parent.location;
  } catch (e) {
    return window.location;
  }
}

/** The `p.<plugin>.*` entries of the URL, as `{key: value}`. */
export function readUrlState(plugin) {
  const prefix = `p.${plugin}.`;
  const out = {};
  for (const part of hostLocation().hash.replace(/^#/, '').split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    let key;
    let value;
    try {
      key = decodeURIComponent(part.slice(0, eq));
      value = decodeURIComponent(part.slice(eq + 1));
    } catch (e) {
      continue;
    }
    if (key.startsWith(prefix)) out[key.slice(prefix.length)] = value;
  }
  return out;
}

/** Replaces the `p.<plugin>.*` entries of the URL (no history entry). */
export function writeUrlState(plugin, state) {
  const prefix = encodeURIComponent(`p.${plugin}.`);
  const location = hostLocation();
  const kept = location.hash.replace(/^#/, '').split('&')
    .filter((part) => part && !part.startsWith(prefix) && !part.startsWith(`p.${plugin}.`));
  for (const [key, value] of Object.entries(state)) {
    if (value == null || value === '') continue;
    kept.push(`${encodeURIComponent(`p.${plugin}.${key}`)}=${encodeURIComponent(value)}`);
  }
  const hash = `#${kept.join('&')}`;
  if (hash === location.hash) return;
  try {
    const history = location === window.location ? window.history : window.parent.history;
    history.replaceState(history.state, '', hash);
  } catch (e) {
    // A host page of another origin: the state stays in this frame.
  }
}

// Downloads.

/** Saves `blob` under `name` through the browser's download. */
export function saveBlob(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: name, hidden: '' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A file name from user text: letters, digits, `._-` only. */
export function fileName(...parts) {
  return parts.join('_').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '')
    .slice(0, 120) || 'view';
}

/** Numbers as CSV text: every finite value exactly (shortest round trip),
 * `NaN`, `inf`, `-inf` otherwise. */
export function csvNumber(v) {
  if (v == null || Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Math.fround(v) === v) {
    // A float32: the fewest digits that read back as the same float32.
    for (let p = 1; p < 10; p++) {
      const s = v.toPrecision(p);
      if (Math.fround(Number(s)) === v) return String(Number(s));
    }
  }
  return String(v);
}

/** A CSV field, quoted when needed. */
export function csvText(text) {
  const s = String(text);
  return /[",\n\r]/.test(s) || /^[=+\-@\t]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Buttons that download a view: `files` maps a label to `() => [name, blob]`. */
export function downloads(files) {
  return el('span', { class: 'kh-downloads' }, 'Download',
    ...Object.entries(files).map(([label, make]) => el('button', {
      type: 'button', 'data-download': label.toLowerCase(), text: label,
      onclick: async () => {
        const [name, blob] = await make();
        saveBlob(name, blob);
      },
    })));
}

/** PNG of a canvas, as a Blob. */
export const canvasBlob = (canvas) => new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));

/** JSON `{values...}` with non-finite numbers as text, as a Blob. */
export function jsonBlob(object) {
  const text = JSON.stringify(object, (key, value) => (
    typeof value === 'number' && !Number.isFinite(value) ? String(value) : value), 1);
  return new Blob([text], { type: 'application/json' });
}

// Colour maps. Anchors of matplotlib's viridis (sequential) and of RdBu
// reversed (diverging: blue below 0, white at 0, red above); linear
// interpolation between anchors.
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

/** Colours of values off the scale, named in every colour bar's legend.
 * None of them occurs in viridis or in the diverging map. */
export const SPECIAL = {
  nan: { rgb: [150, 150, 150], label: 'NaN' },
  posinf: { rgb: [255, 0, 255], label: '+inf' },
  neginf: { rgb: [0, 255, 255], label: '−inf' },
  nonpos: { rgb: [255, 140, 0], label: '≤ 0 (no log)' },
};

/** Which special class `value` is in, or null for a finite number. */
export function special(value) {
  if (value == null || Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'posinf';
  if (value === -Infinity) return 'neginf';
  return null;
}

/** `[r, g, b]` of `value` in `scale` ({lo, hi, map}). */
export function colour(scale, value) {
  const kind = special(value);
  if (kind) return SPECIAL[kind].rgb;
  const span = scale.hi - scale.lo;
  return scale.map(span > 0 ? (value - scale.lo) / span : 0.5);
}

export const rgb = ([r, g, b]) => `rgb(${r},${g},${b})`;

/** Value text for tooltips: 4 significant digits, names for the others. */
export function format(value) {
  const kind = special(value);
  if (kind) return SPECIAL[kind].label;
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(4)));
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    const v = k * step;
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

/** [min, max] of the finite numbers in nested arrays, or null. */
export function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values.flat(Infinity)) {
    if (v == null || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** Counts of the special classes in nested arrays. */
export function specials(values) {
  const out = {};
  for (const v of values.flat(Infinity)) {
    const kind = special(v);
    if (kind) out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/**
 * The colour scale of `values`, fitted to the data unless `fixed` ({lo,
 * hi}) holds it: diverging and centred on 0 for signed data (`signed`
 * true, or 'auto' and values on both sides of 0), else sequential
 * (viridis; `signed` false, e.g. a logarithm, whose 0 means nothing).
 */
export function fitScale(values, { signed = 'auto', fixed = null } = {}) {
  const range = extent(values) ?? [0, 1];
  let [lo, hi] = fixed ? [fixed.lo, fixed.hi] : range;
  const diverging = signed === 'auto' ? range[0] < 0 && range[1] > 0 : signed;
  if (diverging && !fixed) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    [lo, hi] = [-m, m];
  }
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  return { lo, hi, map: diverging ? colormaps.diverging : colormaps.viridis, diverging };
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

/**
 * A vertical colour bar for `scale` with ticks, its title written along
 * it, and swatches for the special values present (`present`: counts).
 */
export function colourBar(scale, height, title = '', present = {}) {
  const width = 92;
  const [canvas, ctx] = hidpiCanvas(width, height + 20, { class: 'kh-colourbar' });
  const top = 10;
  const x0 = 18;
  for (let y = 0; y < height; y++) {
    ctx.fillStyle = rgb(scale.map(1 - y / (height - 1)));
    ctx.fillRect(x0, top + y, 14, 1);
  }
  ctx.strokeStyle = '#888';
  ctx.strokeRect(x0 + 0.5, top + 0.5, 13, height - 1);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textBaseline = 'middle';
  const count = Math.max(2, Math.min(8, Math.floor(height / 35)));
  for (const v of ticks(scale.lo, scale.hi, count)) {
    const y = top + (1 - (v - scale.lo) / (scale.hi - scale.lo || 1)) * (height - 1);
    ctx.fillRect(x0 + 14, y, 4, 1);
    ctx.fillText(format(v), x0 + 20, y);
  }
  ctx.save();
  ctx.font = 'bold 12px sans-serif';
  ctx.textAlign = 'center';
  ctx.translate(8, top + height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(fitText(ctx, iso(title), height), 0, 0);
  ctx.restore();
  Object.assign(canvas.dataset, {
    lo: String(scale.lo), hi: String(scale.hi), title,
    map: scale.diverging ? 'diverging' : 'viridis',
  });
  const legend = el('div', { class: 'kh-specials' }, ...Object.keys(SPECIAL)
    .filter((k) => present[k])
    .map((k) => el('div', { 'data-special': k },
      el('span', { class: 'kh-swatch-box', style: `background:${rgb(SPECIAL[k].rgb)}` }),
      `${SPECIAL[k].label}: ${present[k]}`)));
  return el('div', { class: 'kh-colourbar-box' }, canvas, legend);
}

/**
 * Shortens text to fit `width` pixels in `ctx`'s font, cutting in the
 * middle so both the start and the distinguishing end stay. A binary
 * search over the kept length: O(log n) measurements of at most the
 * fitted text, so a 20,000-character name costs what a short one does.
 */
export function fitText(ctx, text, width) {
  const s = String(text);
  if (s.length <= 400 && ctx.measureText(s).width <= width) return s;
  const cut = (k) => {
    const tail = Math.ceil(k * 0.6);
    return `${s.slice(0, k - tail)}…${s.slice(s.length - tail)}`;
  };
  // A character is at least 2 pixels wide in any label font used here.
  let lo = 0;
  let hi = Math.min(s.length - 1, Math.ceil(width / 2));
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ctx.measureText(cut(mid)).width <= width) lo = mid;
    else hi = mid - 1;
  }
  return cut(lo);
}
