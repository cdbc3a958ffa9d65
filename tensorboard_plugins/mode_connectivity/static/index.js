// "Mode connectivity" dashboard: metrics along the curve and the straight
// line between two solutions (SVG charts, several runs overlaid), and maps
// of a metric over the plane through the endpoints and the bend, drawn
// with equal units on both axes, with the endpoints, bend, curve and
// projected snapshots marked (canvas). The view lives in the URL;
// TensorBoard's reload button and auto-reload fetch new runs and steps.

import {
  SPECIAL, canvasBlob, checkbox, clip, colour, colourBar, csvNumber, csvText, downloads, el,
  extent, fetchJSON, fileName, fitScale, fitText, format, hidpiCanvas, iso, jsonBlob, listRuns,
  loadStyle, message, onHostReload, readUrlState, rgb, select, setReady, special, specials, svg,
  ticks, writeUrlState,
} from './static/ui.js';

const PLUGIN = 'mode_connectivity';
const PREFIX = 'mode_connectivity/';
// One colour per (run, tag) profile series, the same in every chart.
const LINE_COLOURS = [
  '#e65100', '#1565c0', '#2e7d32', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#827717',
];
const state = {
  runs: {}, selected: [], step: null, log: new Set(), planeMetric: {}, token: 0,
};
const dom = {};

export async function render() {
  loadStyle();
  dom.controls = el('div', { class: 'kh-controls' });
  dom.status = el('div', { class: 'kh-status' });
  dom.profiles = el('div', { class: 'kh-profiles' });
  dom.planes = el('div', { class: 'kh-planes' });
  document.body.append(
    el('h2', { text: 'Mode connectivity' }), dom.controls, dom.status, dom.profiles, dom.planes,
  );
  const url = readUrlState(PLUGIN);
  try {
    if (url.runs) state.selected = JSON.parse(url.runs);
    if (url.log) state.log = new Set(JSON.parse(url.log));
    if (url.metric) state.planeMetric = JSON.parse(url.metric);
  } catch (e) {
    // A hand-edited link: keep the defaults.
  }
  if (url.step != null && /^\d+$/.test(url.step)) state.step = Number(url.step);
  onHostReload(reload);
  await loadRuns();
}

async function loadRuns() {
  state.runs = await listRuns(dom.status, 'No mode connectivity series yet. Write them with '
      + 'keras_heuristics.connectivity.');
  if (!state.runs) {
    dom.controls.replaceChildren();
    dom.profiles.replaceChildren();
    dom.planes.replaceChildren();
    setReady();
    return;
  }
  const runs = Object.keys(state.runs);
  state.selected = state.selected.filter((r) => runs.includes(r));
  if (!state.selected.length) state.selected = [runs[0]];
  await update();
}

async function reload() {
  document.body.dataset.reloads = String(Number(document.body.dataset.reloads ?? 0) + 1);
  if (!(await listingChanged())) return;
  await loadRuns();
}

const shortName = (tag) => (tag.startsWith(PREFIX) ? tag.slice(PREFIX.length) : tag);
const seriesKey = (run, tag) => JSON.stringify([run, tag]);

/** Colour of a profile series: by its rank among all profile series. */
function lineColour(run, tag) {
  const keys = [];
  for (const [r, tags] of Object.entries(state.runs)) {
    for (const [t, info] of Object.entries(tags)) if (info.kind === 'profile') keys.push(seriesKey(r, t));
  }
  keys.sort();
  const k = keys.indexOf(seriesKey(run, tag));
  return LINE_COLOURS[(k < 0 ? 0 : k) % LINE_COLOURS.length];
}

function saveUrl() {
  writeUrlState(PLUGIN, {
    runs: JSON.stringify(state.selected),
    step: state.step == null ? null : String(state.step),
    log: state.log.size ? JSON.stringify([...state.log].sort()) : null,
    metric: Object.keys(state.planeMetric).length ? JSON.stringify(state.planeMetric) : null,
  });
}

function renderControls(steps) {
  const runs = Object.keys(state.runs);
  const boxes = runs.map((run) => checkbox(iso(clip(run)), state.selected.includes(run), (on) => {
    state.selected = runs.filter((r) => (r === run ? on : state.selected.includes(r)));
    update();
  }, { 'data-run': run, title: run }));
  const controls = [el('span', { class: 'kh-group' }, 'Runs', el('span', { class: 'kh-runs' }, ...boxes))];
  if (steps.length > 1) {
    controls.push(el('label', {}, 'Step', select(steps.map(String), String(state.step), (s) => {
      state.step = Number(s);
      update();
    }, { name: 'step' })));
  }
  dom.controls.replaceChildren(...controls);
}

/** The series at the chosen step (or the latest before it). */
async function load(run, tag) {
  if (state.step == null) return fetchJSON('./data', { run, tag });
  try {
    return await fetchJSON('./data', { run, tag, at_or_before: state.step });
  } catch (e) {
    return fetchJSON('./data', { run, tag, step: 0 }).catch(() => fetchJSON('./data', { run, tag }));
  }
}

async function update() {
  const token = ++state.token;
  document.body.dataset.ready = '0';
  const errors = [];
  const loaded = [];
  const jobs = [];
  for (const run of state.selected) {
    for (const [tag, info] of Object.entries(state.runs[run] ?? {})) {
      if (info.error) {
        errors.push(`Cannot show ${iso(run)} / ${iso(tag)}: ${info.error}`);
        continue;
      }
      jobs.push(load(run, tag).then((d) => loaded.push(d), (e) => errors.push(e.message)));
    }
  }
  await Promise.all(jobs);
  if (token !== state.token) return;
  loaded.sort((a, b) => (seriesKey(a.run, a.tag) < seriesKey(b.run, b.tag) ? -1 : 1));
  const steps = [...new Set(loaded.flatMap((d) => d.steps))].sort((a, b) => a - b);
  if (state.step != null && !steps.includes(state.step)) state.step = null;
  if (state.step == null) state.step = steps[steps.length - 1] ?? 0;
  renderControls(steps);
  dom.status.replaceChildren(
    ...errors.sort().map((text) => el('div', { class: 'kh-message kh-error', text })),
  );
  showProfiles(loaded.filter((d) => d.content.kind === 'profile'));
  showPlanes(loaded.filter((d) => d.content.kind === 'plane'));
  document.body.dataset.step = String(state.step);
  saveUrl();
  setReady();
}

// Profiles: one chart per metric, one line per (run, tag) series.

function showProfiles(series) {
  if (!series.length) {
    dom.profiles.replaceChildren();
    return;
  }
  const many = state.selected.length > 1;
  const metrics = [...new Set(series.flatMap((d) => d.content.metrics))];
  const charts = metrics.map((metric) => {
    const lines = series
      .filter((d) => d.content.metrics.includes(metric))
      .map((d) => ({
        label: `${many ? `${iso(clip(d.run, 40))} / ` : ''}${iso(clip(shortName(d.tag), 60))} `
          + `(${d.content.path}${d.content.split ? `, ${d.content.split}` : ''}, step ${d.step})`,
        run: d.run,
        tag: d.tag,
        t: d.values[0],
        v: d.values[1 + d.content.metrics.indexOf(metric)],
        colour: lineColour(d.run, d.tag),
        dashed: d.content.path === 'line',
      }));
    return chartCard(metric, lines);
  });
  dom.profiles.replaceChildren(
    el('h3', { text: 'Along the path' }),
    el('div', { class: 'kh-info' }, 'Each chart: one metric at positions t along each path '
      + 'between the two solutions (t = 0 and t = 1); solid lines follow the learned curve, '
      + 'dashed lines the straight line.'),
    el('div', { class: 'kh-charts' }, ...charts),
  );
}

function chartCard(metric, lines) {
  const log = state.log.has(`profile:${metric}`);
  const holder = el('div');
  const box = checkbox('log scale', log, (on) => {
    if (on) state.log.add(`profile:${metric}`);
    else state.log.delete(`profile:${metric}`);
    saveUrl();
    holder.replaceChildren(...chart(metric, lines, on));
  }, { name: `log-${metric}` });
  holder.replaceChildren(...chart(metric, lines, log));
  const name = fileName('profile', metric);
  const files = downloads({
    PNG: async () => [`${name}.png`, await svgToPng(holder.querySelector('svg'))],
    SVG: () => [`${name}.svg`, new Blob([new XMLSerializer().serializeToString(
      holder.querySelector('svg'))], { type: 'image/svg+xml' })],
    CSV: () => [`${name}.csv`, new Blob([profileCSV(metric, lines)], { type: 'text/csv' })],
    JSON: () => [`${name}.json`, jsonBlob({
      metric,
      series: lines.map((l) => ({ run: l.run, tag: l.tag, t: l.t, values: l.v })),
    })],
  });
  return el('div', { class: 'kh-card', 'data-metric': metric },
    el('h3', { text: metric }), el('div', { class: 'kh-controls' }, box, files), holder);
}

function profileCSV(metric, lines) {
  const out = [['run', 'tag', 't', metric].join(',')];
  for (const l of lines) {
    l.t.forEach((t, i) => out.push([csvText(l.run), csvText(l.tag), csvNumber(t),
      csvNumber(l.v[i])].join(',')));
  }
  return `${out.join('\n')}\n`;
}

function svgToPng(node) {
  const text = new XMLSerializer().serializeToString(node);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = el('canvas');
      canvas.width = node.width.baseVal.value;
      canvas.height = node.height.baseVal.value;
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(image, 0, 0);
      URL.revokeObjectURL(url);
      canvas.toBlob(resolve, 'image/png');
    };
    image.onerror = reject;
    image.src = url;
  });
}

/** Where a value is drawn: a finite number, or a mark on an edge. */
function placed(v, log) {
  const kind = special(v);
  if (kind) return { kind };
  if (log && v <= 0) return { kind: 'nonpos' };
  return { y: log ? Math.log10(v) : v };
}

function chart(metric, lines, log) {
  const W = 440;
  const H = 270;
  const m = { left: 56, right: 14, top: 16, bottom: 38 };
  const shown = lines.map((l) => l.v.map((v) => placed(v, log).y ?? null));
  const range = extent(shown.map((s) => s.map((v) => v ?? NaN)));
  const counts = {};
  lines.forEach((l) => l.v.forEach((v) => {
    const { kind } = placed(v, log);
    if (kind) counts[kind] = (counts[kind] ?? 0) + 1;
  }));
  const notices = Object.entries(counts).map(([kind, n]) => el('div', {
    class: 'kh-notice', 'data-special': kind,
  }, `${n} value${n > 1 ? 's' : ''} ${kind === 'nonpos' ? 'are ≤ 0 and have no logarithm'
    : `are ${SPECIAL[kind].label}`}: marked at the ${kind === 'posinf' ? 'top' : 'bottom'} `
    + 'edge, lines broken there.'));
  if (!range) {
    return [el('div', { class: 'kh-message kh-info', 'data-empty': metric },
      `No finite value of ${metric}${log ? ' above 0' : ''} to draw.`), ...notices];
  }
  const [lo, hi] = range;
  const pad = (hi - lo) * 0.05 || 0.5;
  const y0 = lo - pad;
  const y1 = hi + pad;
  const px = (t) => m.left + t * (W - m.left - m.right);
  const py = (v) => m.top + (1 - (v - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const root = svg('svg', {
    xmlns: 'http://www.w3.org/2000/svg', width: W, height: H, class: 'kh-chart',
    'data-metric': metric, 'data-log': log ? '1' : '0', 'data-y0': y0, 'data-y1': y1,
    'data-left': m.left, 'data-top': m.top, 'data-right': W - m.right,
    'data-bottom': H - m.bottom, 'font-family': 'sans-serif', 'font-size': 11,
  });
  const axis = svg('g', { class: 'kh-axis' });
  for (const t of ticks(0, 1, 5)) {
    axis.append(svg('line', { x1: px(t), x2: px(t), y1: H - m.bottom, y2: H - m.bottom + 4, stroke: '#999' }));
    axis.append(svg('text', { x: px(t), y: H - m.bottom + 15, 'text-anchor': 'middle', text: format(t) }));
  }
  for (const v of ticks(y0, y1, 5)) {
    axis.append(svg('line', { x1: m.left, x2: W - m.right, y1: py(v), y2: py(v), stroke: '#eee' }));
    axis.append(svg('text', {
      x: m.left - 4, y: py(v) + 4, 'text-anchor': 'end', text: log ? format(10 ** v) : format(v),
    }));
  }
  axis.append(svg('path', {
    d: `M${m.left},${m.top}V${H - m.bottom}H${W - m.right}`, fill: 'none', stroke: '#999',
  }));
  axis.append(svg('text', { x: (W + m.left) / 2, y: H - 4, 'text-anchor': 'middle', text: 't (position along the path)' }));
  axis.append(svg('text', {
    x: 12, y: (H - m.bottom) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${(H - m.bottom) / 2})`, text: log ? `${metric} (log scale)` : metric,
  }));
  root.append(axis);
  lines.forEach((line, k) => {
    const group = svg('g', { class: 'kh-series', 'data-series': seriesKey(line.run, line.tag) });
    // Runs of finite points become separate polylines: a NaN or an
    // infinity breaks the line instead of being bridged.
    let run = [];
    const runs = [];
    line.t.forEach((t, i) => {
      const y = shown[k][i];
      if (y == null) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push([t, y, line.v[i]]);
      }
    });
    if (run.length) runs.push(run);
    for (const points of runs) {
      group.append(svg('polyline', {
        points: points.map(([t, y]) => `${px(t)},${py(y)}`).join(' '),
        fill: 'none', stroke: line.colour, 'stroke-width': 2,
        'stroke-dasharray': line.dashed ? '6 4' : 'none',
      }));
      for (const [t, y, v] of points) {
        group.append(svg('circle', { cx: px(t), cy: py(y), r: 3, fill: line.colour },
          svg('title', { text: `${line.label}\nt = ${format(t)}\n${metric} = ${format(v)}` })));
      }
    }
    line.t.forEach((t, i) => {
      const { kind } = placed(line.v[i], log);
      if (!kind) return;
      const x = px(t);
      const y = kind === 'posinf' ? m.top : H - m.bottom;
      const d = kind === 'posinf' ? `M${x},${y}l-5,8h10z`
        : kind === 'neginf' ? `M${x},${y}l-5,-8h10z`
          : `M${x - 4},${y - 4}l8,8m0,-8l-8,8`;
      group.append(svg('path', {
        d, class: 'kh-special', 'data-special': kind, 'data-t': String(t),
        stroke: kind === 'nan' || kind === 'nonpos' ? line.colour : '#000',
        'stroke-width': 2, fill: line.colour,
      }, svg('title', { text: `${line.label}\nt = ${format(t)}\n${metric} = ${format(line.v[i])}`
        + `${kind === 'nonpos' ? ' (≤ 0: no logarithm)' : ''}` })));
    });
    root.append(group);
  });
  const legend = el('div', { class: 'kh-legend' }, ...lines.map((line) => el('span', {},
    el('span', {
      class: 'kh-swatch',
      style: `background:${line.colour};${line.dashed ? 'height:0;border-top:3px dashed '
        + `${line.colour};background:none` : ''}`,
    }), line.label)));
  return [root, ...notices, legend];
}

// Planes: a filled map of one metric with the marked models.

function showPlanes(series) {
  dom.planes.replaceChildren(...series.map((d) => {
    const key = seriesKey(d.run, d.tag);
    const metrics = d.content.metrics;
    const view = {
      metric: metrics.includes(state.planeMetric[key]) ? state.planeMetric[key] : metrics[0],
    };
    view.log = state.log.has(`plane:${key}:${view.metric}`);
    const holder = el('div');
    const redraw = () => holder.replaceChildren(...plane(d, view));
    const logBox = checkbox('log scale', view.log, (on) => {
      view.log = on;
      const k = `plane:${key}:${view.metric}`;
      if (on) state.log.add(k);
      else state.log.delete(k);
      saveUrl();
      redraw();
    }, { name: 'log' });
    const controls = el('div', { class: 'kh-controls' },
      el('label', {}, 'Metric', select(metrics, view.metric, (metric) => {
        view.metric = metric;
        state.planeMetric[key] = metric;
        view.log = state.log.has(`plane:${key}:${metric}`);
        logBox.querySelector('input').checked = view.log;
        saveUrl();
        redraw();
      }, { name: 'metric' })),
      logBox,
      downloads({
        PNG: async () => [`${fileName(d.run, shortName(d.tag), view.metric)}.png`,
          await canvasBlob(holder.querySelector('canvas'))],
        CSV: () => [`${fileName(d.run, shortName(d.tag), view.metric)}.csv`,
          new Blob([planeCSV(d, view.metric)], { type: 'text/csv' })],
        JSON: () => [`${fileName(d.run, shortName(d.tag))}.json`, jsonBlob({
          run: d.run, tag: d.tag, step: d.step, ...d.content,
          values: Object.fromEntries(metrics.map((mm, k) => [mm, d.values[k]])),
        })],
      }),
    );
    redraw();
    const split = d.content.split ? ` (${d.content.split})` : '';
    return el('div', { class: 'kh-card', 'data-series': key },
      el('h3', { text: `${iso(clip(d.run, 60))} / ${iso(clip(shortName(d.tag), 60))}${split}, `
        + `step ${d.step}` }), controls, holder);
  }));
}

function planeCSV(d, metric) {
  const grid = d.values[d.content.metrics.indexOf(metric)];
  const out = [['x', 'y', metric].join(',')];
  d.content.y.forEach((y, i) => d.content.x.forEach((x, j) => out.push(
    [csvNumber(x), csvNumber(y), csvNumber(grid[i][j])].join(','))));
  return `${out.join('\n')}\n`;
}

/** Segments `[x1, y1, x2, y2]` (grid index units) of `grid` at `level`. */
function contour(grid, level) {
  const out = [];
  const at = (v1, v2) => (level - v1) / (v2 - v1);
  for (let i = 0; i + 1 < grid.length; i++) {
    for (let j = 0; j + 1 < grid[i].length; j++) {
      const a = grid[i][j];
      const b = grid[i][j + 1];
      const c = grid[i + 1][j + 1];
      const d = grid[i + 1][j];
      if ([a, b, c, d].some((v) => v == null || !Number.isFinite(v))) continue;
      const cross = [];
      if ((a > level) !== (b > level)) cross.push([j + at(a, b), i]);
      if ((b > level) !== (c > level)) cross.push([j + 1, i + at(b, c)]);
      if ((d > level) !== (c > level)) cross.push([j + at(d, c), i + 1]);
      if ((a > level) !== (d > level)) cross.push([j, i + at(a, d)]);
      if (cross.length === 2) out.push([...cross[0], ...cross[1]]);
      if (cross.length === 4) {
        // Saddle: the centre decides which corners are joined.
        const centreAbove = (a + b + c + d) / 4 > level;
        const [e0, e1, e2, e3] = cross;
        if (centreAbove === a > level) out.push([...e0, ...e1], [...e2, ...e3]);
        else out.push([...e0, ...e3], [...e1, ...e2]);
      }
    }
  }
  return out;
}

/** Cell edges of grid coordinates: midpoints between neighbours, the
 * outer cells as wide as their neighbour's half-distance on each side. */
function cellEdges(c) {
  if (c.length === 1) return [c[0] - 0.5, c[0] + 0.5];
  const out = [c[0] - (c[1] - c[0]) / 2];
  for (let k = 1; k < c.length; k++) out.push((c[k - 1] + c[k]) / 2);
  out.push(c[c.length - 1] + (c[c.length - 1] - c[c.length - 2]) / 2);
  return out;
}

/** The coordinate at fractional grid index `f` (linear between nodes). */
function atIndex(c, f) {
  const k = Math.max(0, Math.min(c.length - 2, Math.floor(f)));
  if (c.length === 1) return c[0];
  return c[k] + (f - k) * (c[k + 1] - c[k]);
}

/** Index of the cell of `v` given its edges, or -1 outside. */
function cellOf(e, v) {
  if (!(v >= e[0] && v <= e[e.length - 1])) return -1;
  let lo = 0;
  let hi = e.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (e[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function plane(d, view) {
  const { x, y, points, curve, projected } = d.content;
  const raw = d.values[d.content.metrics.indexOf(view.metric)];
  // On a log scale values <= 0 have no place: they get their own colour
  // and a count, never the colour of NaN.
  const shown = view.log
    ? raw.map((row) => row.map((v) => (Number.isFinite(v) && v <= 0 ? 'nonpos'
      : Number.isFinite(v) ? Math.log10(v) : v)))
    : raw;
  const numeric = shown.map((row) => row.map((v) => (v === 'nonpos' ? NaN : v)));
  // Values of a plane (a loss, an accuracy or their logarithm) are not
  // differences: one sequential map.
  const scale = fitScale(numeric, { signed: false });
  const ex = cellEdges(x);
  const ey = cellEdges(y);
  // The axes cover the grid and every marked model (projected snapshots
  // may lie outside the evaluated grid); outside the grid stays blank.
  const marked = [...Object.values(points), ...curve, ...projected.map((p) => p.xy)];
  let [X0, X1, Y0, Y1] = [ex[0], ex[ex.length - 1], ey[0], ey[ey.length - 1]];
  for (const [mx, my] of marked) {
    [X0, X1, Y0, Y1] = [Math.min(X0, mx), Math.max(X1, mx), Math.min(Y0, my), Math.max(Y1, my)];
  }
  if (X0 < ex[0] || X1 > ex[ex.length - 1] || Y0 < ey[0] || Y1 > ey[ey.length - 1]) {
    const pad = 0.04 * Math.max(X1 - X0, Y1 - Y0);
    if (X0 < ex[0]) X0 -= pad;
    if (X1 > ex[ex.length - 1]) X1 += pad;
    if (Y0 < ey[0]) Y0 -= pad;
    if (Y1 > ey[ey.length - 1]) Y1 += pad;
  }
  // Equal units on both axes: distances in the picture are distances
  // between the models.
  const maxSide = 520;
  const unit = Math.min(maxSide / (X1 - X0), maxSide / (Y1 - Y0));
  const plotW = (X1 - X0) * unit;
  const plotH = (Y1 - Y0) * unit;
  const m = { left: 62, right: 16, top: 14, bottom: 46 };
  const [canvas, ctx] = hidpiCanvas(plotW + m.left + m.right, plotH + m.top + m.bottom,
    { class: 'kh-plane-canvas' });
  const px = (v) => m.left + (v - X0) * unit;
  const py = (v) => m.top + (Y1 - v) * unit;
  for (let i = 0; i < y.length; i++) {
    const top = Math.round(py(ey[i + 1]));
    const bottom = Math.round(py(ey[i]));
    for (let j = 0; j < x.length; j++) {
      const v = shown[i][j];
      ctx.fillStyle = rgb(v === 'nonpos' ? SPECIAL.nonpos.rgb : colour(scale, v));
      const left = Math.round(px(ex[j]));
      ctx.fillRect(left, top, Math.round(px(ex[j + 1])) - left, bottom - top);
    }
  }
  // Contour lines, from grid index units to the grid's coordinates.
  const gx = (j) => px(atIndex(x, j));
  const gy = (i) => py(atIndex(y, i));
  ctx.strokeStyle = 'rgba(255,255,255,0.65)';
  ctx.lineWidth = 1;
  const levels = ticks(scale.lo, scale.hi, 10);
  for (const level of levels) {
    ctx.beginPath();
    for (const [ja, ia, jb, ib] of contour(numeric, level)) {
      ctx.moveTo(gx(ja), gy(ia));
      ctx.lineTo(gx(jb), gy(ib));
    }
    ctx.stroke();
  }
  // Axes: ticks about every 60 (x) and 40 (y) pixels, titled.
  ctx.strokeStyle = '#999';
  ctx.strokeRect(m.left, m.top, plotW, plotH);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  const xTicks = ticks(X0, X1, Math.max(3, Math.round(plotW / 60)));
  const yTicks = ticks(Y0, Y1, Math.max(2, Math.round(plotH / 40)));
  for (const v of xTicks) {
    ctx.fillRect(px(v), m.top + plotH, 1, 4);
    ctx.fillText(format(v), px(v), m.top + plotH + 15);
  }
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of yTicks) {
    ctx.fillRect(m.left - 4, py(v), 4, 1);
    ctx.fillText(format(v), m.left - 6, py(v));
  }
  ctx.font = 'bold 12px sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  ctx.fillText('x (weight-space units)', m.left + plotW / 2, m.top + plotH + 34);
  ctx.save();
  ctx.translate(13, m.top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(fitText(ctx, 'y (weight-space units)', Math.max(plotH, 60)), 0, 0);
  ctx.restore();
  // The curve, the projected snapshots and the marked models; names in
  // white on a black halo, readable on light and dark cells alike.
  // Labels move down past the ones already drawn, so none covers another.
  const taken = [];
  const label = (text, lx, y0) => {
    ctx.font = 'bold 12px sans-serif';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'bottom';
    const w = ctx.measureText(text).width;
    let ly = y0;
    const overlaps = () => taken.some(([a, b, c, d]) => lx < c && lx + w > a && ly - 13 < d && ly > b);
    for (let k = 0; k < 8 && overlaps(); k++) ly += 14;
    taken.push([lx, ly - 13, lx + w, ly]);
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 3;
    ctx.strokeText(text, lx, ly);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, lx, ly);
  };
  if (curve.length) {
    ctx.beginPath();
    curve.forEach(([cx, cy], k) => (k ? ctx.lineTo(px(cx), py(cy)) : ctx.moveTo(px(cx), py(cy))));
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 3.5;
    ctx.stroke();
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
  for (const p of projected) {
    const [cx, cy] = [px(p.xy[0]), py(p.xy[1])];
    ctx.beginPath();
    ctx.moveTo(cx, cy - 6);
    ctx.lineTo(cx + 5, cy + 4);
    ctx.lineTo(cx - 5, cy + 4);
    ctx.closePath();
    ctx.fillStyle = '#ff7043';
    ctx.fill();
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 1;
    ctx.stroke();
    label(`${iso(clip(p.name, 40))} (${format(p.distance)} off the plane)`, cx + 7, cy - 3);
  }
  for (const [name, [vx, vy]] of Object.entries(points)) {
    const [cx, cy] = [px(vx), py(vy)];
    ctx.beginPath();
    ctx.arc(cx, cy, 6, 0, 2 * Math.PI);
    ctx.fillStyle = /bend/i.test(name) ? '#ffd54f' : '#fff';
    ctx.fill();
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 1.5;
    ctx.stroke();
    label(iso(clip(name, 40)), cx + 8, cy - 4);
  }
  const tooltip = el('div', { class: 'kh-tooltip', hidden: '' });
  canvas.addEventListener('mousemove', (event) => {
    const j = cellOf(ex, X0 + (event.offsetX - m.left) / unit);
    const i = cellOf(ey, Y1 - (event.offsetY - m.top) / unit);
    if (i < 0 || j < 0) {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = `x = ${format(x[j])}, y = ${format(y[i])}\n`
      + `${view.metric} = ${format(raw[i][j])}`;
    Object.assign(tooltip.dataset, { row: i, col: j, value: String(raw[i][j]) });
    tooltip.style.left = `${event.offsetX + 14}px`;
    tooltip.style.top = `${event.offsetY + 14}px`;
    tooltip.hidden = false;
  });
  canvas.addEventListener('mouseleave', () => { tooltip.hidden = true; });
  Object.assign(canvas.dataset, {
    levels: String(levels.length), metric: view.metric, left: m.left, top: m.top,
    plotWidth: plotW, plotHeight: plotH, x0: X0, x1: X1, y0: Y0, y1: Y1,
    xTicks: xTicks.join(','), yTicks: yTicks.join(','),
  });
  const present = specials(raw);
  let nonpos = 0;
  shown.forEach((row) => row.forEach((v) => { if (v === 'nonpos') nonpos += 1; }));
  if (nonpos) present.nonpos = nonpos;
  const title = view.log ? `log10 ${view.metric}` : view.metric;
  const notice = nonpos ? el('div', { class: 'kh-notice', 'data-special': 'nonpos' },
    `${nonpos} of ${x.length * y.length} values are ≤ 0 and have no logarithm; they are drawn `
    + `in orange (${SPECIAL.nonpos.label}).`) : null;
  const first = Object.keys(points)[0];
  const last = Object.keys(points).slice(-1)[0];
  const describe = el('div', { class: 'kh-info' }, `${view.metric} over the plane through `
    + `${Object.keys(points).map((n) => iso(n)).join(', ') || 'the marked models'}`
    + ` (x, y: coordinates in weight space, equal units on both axes)${first && last
      ? '; the white line is the learned curve' : ''}${projected.length
      ? `; triangles are other models projected onto the plane: ${projected.map((p) =>
        `${iso(clip(p.name, 40))} (${format(p.distance)} off the plane)`).join(', ')}`
      : ''}.`);
  return [describe, notice, el('div', { class: 'kh-heatmap' },
    el('div', { class: 'kh-plot' }, canvas, tooltip), colourBar(scale, 300, title, present))]
    .filter(Boolean);
}

/** Whether the runs, tags or last steps differ from the shown ones. */
async function listingChanged() {
  try {
    const runs = (await fetchJSON('./tags')).runs;
    for (const r of Object.keys(runs)) if (!Object.keys(runs[r]).length) delete runs[r];
    return JSON.stringify(runs) !== JSON.stringify(state.runs);
  } catch (e) {
    return true;
  }
}
