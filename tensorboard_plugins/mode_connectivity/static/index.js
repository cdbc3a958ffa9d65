// "Mode connectivity" dashboard: metrics along the curve and the straight
// line between two solutions (SVG charts), and contour maps of a metric
// over the plane through the endpoints and the bend, with the endpoints,
// bend, curve and projected snapshots marked (canvas).

import {
  colormaps, colour, colourBar, el, extent, fetchJSON, format, hidpiCanvas,
  listRuns, loadStyle, message, rgb, select, setReady, svg, ticks,
} from './static/ui.js';

const PREFIX = 'mode_connectivity/';
const LINE_COLOURS = ['#e65100', '#1565c0', '#2e7d32', '#6a1b9a', '#00838f', '#ad1457'];
const state = { runs: {}, run: null, step: null, token: 0 };
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
  state.runs = await listRuns(dom.status, 'No mode connectivity series yet. Write them with '
      + 'keras_heuristics.connectivity.');
  if (!state.runs) {
    setReady();
    return;
  }
  const runs = Object.keys(state.runs).filter((r) => Object.keys(state.runs[r]).length);
  state.run = runs[0];
  await update();
}

const shortName = (tag) => (tag.startsWith(PREFIX) ? tag.slice(PREFIX.length) : tag);

function renderControls(steps) {
  const runs = Object.keys(state.runs).filter((r) => Object.keys(state.runs[r]).length);
  const controls = [el('label', {}, 'Run', select(runs, state.run, (run) => {
    state.run = run;
    state.step = null;
    update();
  }))];
  if (steps.length > 1) {
    controls.push(el('label', {}, 'Step', select(steps.map(String), String(state.step), (s) => {
      state.step = Number(s);
      update();
    })));
  }
  dom.controls.replaceChildren(...controls);
}

/** The series at the chosen step (or the latest before it). */
async function load(tag) {
  const latest = await fetchJSON('./data', { run: state.run, tag });
  if (state.step == null || latest.step === state.step) return latest;
  const before = latest.steps.filter((s) => s <= state.step);
  const step = before.length ? before[before.length - 1] : latest.steps[0];
  return step === latest.step ? latest : fetchJSON('./data', { run: state.run, tag, step });
}

async function update() {
  const token = ++state.token;
  document.body.dataset.ready = '0';
  const tags = state.runs[state.run];
  const errors = [];
  const loaded = [];
  await Promise.all(Object.keys(tags).map(async (tag) => {
    if (tags[tag].error) {
      errors.push(`Cannot show ${tag}: ${tags[tag].error}`);
      return;
    }
    try {
      loaded.push(await load(tag));
    } catch (e) {
      errors.push(e.message);
    }
  }));
  if (token !== state.token) return;
  loaded.sort((a, b) => (a.tag < b.tag ? -1 : 1));
  const steps = [...new Set(loaded.flatMap((d) => d.steps))].sort((a, b) => a - b);
  if (state.step == null) state.step = steps[steps.length - 1] ?? 0;
  renderControls(steps);
  dom.status.replaceChildren(
    ...errors.sort().map((text) => el('div', { class: 'kh-message kh-error', text })),
  );
  showProfiles(loaded.filter((d) => d.content.kind === 'profile'));
  showPlanes(loaded.filter((d) => d.content.kind === 'plane'));
  document.body.dataset.step = String(state.step);
  setReady();
}

// Profiles: one chart per metric, one line per series (curve, line, ...).

function showProfiles(series) {
  if (!series.length) {
    dom.profiles.replaceChildren();
    return;
  }
  const metrics = [...new Set(series.flatMap((d) => d.content.metrics))];
  const charts = metrics.map((metric) => {
    const lines = series
      .filter((d) => d.content.metrics.includes(metric))
      .map((d, k) => ({
        label: `${shortName(d.tag)} (${d.content.path}${d.content.split ? `, ${d.content.split}` : ''})`,
        t: d.values[0],
        v: d.values[1 + d.content.metrics.indexOf(metric)],
        colour: LINE_COLOURS[k % LINE_COLOURS.length],
        dashed: d.content.path === 'line',
      }));
    return chart(metric, lines);
  });
  dom.profiles.replaceChildren(
    el('h3', { text: 'Along the path (t = 0 and t = 1 are the two solutions)' }),
    el('div', { class: 'kh-charts' }, ...charts),
  );
}

function chart(metric, lines) {
  const W = 420;
  const H = 260;
  const m = { left: 52, right: 12, top: 12, bottom: 36 };
  const [lo, hi] = extent(lines.map((l) => l.v));
  const pad = (hi - lo) * 0.05 || 0.5;
  const y0 = lo - pad;
  const y1 = hi + pad;
  const px = (t) => m.left + t * (W - m.left - m.right);
  const py = (v) => m.top + (1 - (v - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const root = svg('svg', { width: W, height: H, class: 'kh-chart', 'data-metric': metric });
  const axis = svg('g', { class: 'kh-axis' });
  for (const t of ticks(0, 1, 5)) {
    axis.append(svg('line', { x1: px(t), x2: px(t), y1: H - m.bottom, y2: H - m.bottom + 4 }));
    axis.append(svg('text', { x: px(t), y: H - m.bottom + 15, 'text-anchor': 'middle', text: format(t) }));
  }
  for (const v of ticks(y0, y1, 5)) {
    axis.append(svg('line', { x1: m.left, x2: W - m.right, y1: py(v), y2: py(v), stroke: '#eee' }));
    axis.append(svg('text', { x: m.left - 4, y: py(v) + 4, 'text-anchor': 'end', text: format(v) }));
  }
  axis.append(svg('path', {
    d: `M${m.left},${m.top}V${H - m.bottom}H${W - m.right}`, fill: 'none',
  }));
  axis.append(svg('text', { x: (W + m.left) / 2, y: H - 4, 'text-anchor': 'middle', text: 't' }));
  axis.append(svg('text', {
    x: 12, y: (H - m.bottom) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${(H - m.bottom) / 2})`, text: metric,
  }));
  root.append(axis);
  for (const line of lines) {
    const points = line.t
      .map((t, i) => [t, line.v[i]])
      .filter(([, v]) => v != null);
    root.append(svg('polyline', {
      points: points.map(([t, v]) => `${px(t)},${py(v)}`).join(' '),
      fill: 'none', stroke: line.colour, 'stroke-width': 2,
      'stroke-dasharray': line.dashed ? '6 4' : 'none',
    }));
    for (const [t, v] of points) {
      root.append(svg('circle', { cx: px(t), cy: py(v), r: 3, fill: line.colour },
        svg('title', { text: `${line.label}\nt = ${format(t)}\n${metric} = ${format(v)}` })));
    }
  }
  const legend = el('div', { class: 'kh-legend' }, ...lines.map((line) => el('span', {},
    el('span', { class: 'kh-swatch', style: `background:${line.colour}` }), line.label)));
  return el('div', { class: 'kh-card' }, el('h3', { text: metric }), root, legend);
}

// Planes: a filled contour map of one metric with the marked models.

function showPlanes(series) {
  dom.planes.replaceChildren(...series.map((d) => {
    const holder = el('div');
    const metrics = d.content.metrics;
    const view = { metric: metrics[0], log: /loss/i.test(metrics[0]) };
    const redraw = () => holder.replaceChildren(plane(d, view));
    const controls = el('div', { class: 'kh-controls' },
      el('label', {}, 'Metric', select(metrics, view.metric, (metric) => {
        view.metric = metric;
        view.log = /loss/i.test(metric);
        logBox.checked = view.log;
        redraw();
      })),
    );
    const logBox = el('input', { type: 'checkbox' });
    logBox.checked = view.log;
    logBox.addEventListener('change', () => {
      view.log = logBox.checked;
      redraw();
    });
    controls.append(el('label', {}, logBox, 'log scale'));
    redraw();
    const split = d.content.split ? ` (${d.content.split})` : '';
    return el('div', { class: 'kh-card' },
      el('h3', { text: `${shortName(d.tag)}${split}, step ${d.step}` }), controls, holder);
  }));
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
      if ([a, b, c, d].some((v) => v == null)) continue;
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

function plane(d, view) {
  const { x, y, points, curve, projected } = d.content;
  const raw = d.values[d.content.metrics.indexOf(view.metric)];
  const shown = view.log
    ? raw.map((row) => row.map((v) => (v != null && v > 0 ? Math.log10(v) : null)))
    : raw;
  const [lo, hi] = extent(shown);
  const scale = { lo, hi: hi > lo ? hi : lo + 1, map: colormaps.viridis };
  const size = 440;
  const m = { left: 48, right: 12, top: 12, bottom: 36 };
  const [canvas, ctx] = hidpiCanvas(size + m.left + m.right, size + m.top + m.bottom,
    { class: 'kh-plane-canvas' });
  const dx = x.length > 1 ? (x[x.length - 1] - x[0]) / (x.length - 1) : 1;
  const dy = y.length > 1 ? (y[y.length - 1] - y[0]) / (y.length - 1) : 1;
  const x0 = x[0] - dx / 2;
  const x1 = x[x.length - 1] + dx / 2;
  const y0 = y[0] - dy / 2;
  const y1 = y[y.length - 1] + dy / 2;
  const px = (v) => m.left + ((v - x0) / (x1 - x0)) * size;
  const py = (v) => m.top + (1 - (v - y0) / (y1 - y0)) * size;
  const cell = [size / x.length, size / y.length];
  for (let i = 0; i < y.length; i++) {
    for (let j = 0; j < x.length; j++) {
      ctx.fillStyle = rgb(colour(scale, shown[i][j]));
      ctx.fillRect(px(x[j]) - cell[0] / 2, py(y[i]) - cell[1] / 2, cell[0] + 0.5, cell[1] + 0.5);
    }
  }
  // Contour lines, in grid index units mapped to pixels.
  const gx = (j) => px(x[0] + j * dx);
  const gy = (i) => py(y[0] + i * dy);
  ctx.strokeStyle = 'rgba(255,255,255,0.65)';
  ctx.lineWidth = 1;
  const levels = ticks(scale.lo, scale.hi, 10);
  for (const level of levels) {
    ctx.beginPath();
    for (const [ja, ia, jb, ib] of contour(shown, level)) {
      ctx.moveTo(gx(ja), gy(ia));
      ctx.lineTo(gx(jb), gy(ib));
    }
    ctx.stroke();
  }
  // Axes.
  ctx.strokeStyle = '#999';
  ctx.strokeRect(m.left, m.top, size, size);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  for (const v of ticks(x0, x1, 5)) ctx.fillText(format(v), px(v), m.top + size + 14);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of ticks(y0, y1, 5)) ctx.fillText(format(v), m.left - 4, py(v));
  // The curve, the projected snapshots and the marked models.
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
  ctx.textAlign = 'left';
  ctx.textBaseline = 'bottom';
  ctx.font = 'bold 12px sans-serif';
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
    ctx.fillStyle = '#fff';
    ctx.fillText(p.name, cx + 7, cy - 3);
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
    ctx.fillStyle = '#fff';
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 3;
    ctx.strokeText(name, cx + 8, cy - 4);
    ctx.fillText(name, cx + 8, cy - 4);
  }
  const tooltip = el('div', { class: 'kh-tooltip', hidden: '' });
  canvas.addEventListener('mousemove', (event) => {
    const j = Math.round((x0 + ((event.offsetX - m.left) / size) * (x1 - x0) - x[0]) / dx);
    const i = Math.round((y1 - ((event.offsetY - m.top) / size) * (y1 - y0) - y[0]) / dy);
    if (i < 0 || j < 0 || i >= y.length || j >= x.length) {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = `x = ${format(x[j])}, y = ${format(y[i])}\n${view.metric} = ${format(raw[i][j])}`;
    Object.assign(tooltip.dataset, { row: i, col: j, value: String(raw[i][j]) });
    tooltip.style.left = `${event.offsetX + 14}px`;
    tooltip.style.top = `${event.offsetY + 14}px`;
    tooltip.hidden = false;
  });
  canvas.addEventListener('mouseleave', () => { tooltip.hidden = true; });
  Object.assign(canvas.dataset, { levels: String(levels.length), metric: view.metric });
  const title = view.log ? `log10 ${view.metric}` : view.metric;
  return el('div', { class: 'kh-heatmap' },
    el('div', { class: 'kh-plot' }, canvas, tooltip), colourBar(scale, 300, title));
}
