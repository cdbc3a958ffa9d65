// "Layer similarity" dashboard: a heatmap of each layer x layer similarity
// matrix with a step slider, the difference of two runs at the same step,
// and the layer x time view of per-layer series.

import { heatmap } from './static/heatmap.js';
import {
  colormaps, el, extent, fetchJSON, listRuns, loadStyle, message, select, setReady,
} from './static/ui.js';

const PREFIX = 'layer_similarity/';
const state = {
  runs: {}, run: null, tag: null, compare: '', steps: [], stepIndex: -1,
  scaleMode: null, token: 0,
};
const cache = new Map();
const dom = {};

export async function render() {
  loadStyle();
  dom.controls = el('div', { class: 'kh-controls' });
  dom.info = el('div', { class: 'kh-info' });
  dom.status = el('div', { class: 'kh-status' });
  dom.view = el('div', { class: 'kh-view' });
  document.body.append(
    el('h2', { text: 'Layer similarity' }), dom.controls, dom.info, dom.status, dom.view,
  );
  state.runs = await listRuns(dom.status, 'No layer similarity series yet. Log them with '
      + 'keras_heuristics.callbacks.LayerSimilarity.');
  if (!state.runs) {
    setReady();
    return;
  }
  const runs = Object.keys(state.runs).filter((r) => Object.keys(state.runs[r]).length);
  chooseRun(runs[0]);
}

const tagInfo = () => state.runs[state.run]?.[state.tag];

function chooseRun(run) {
  state.run = run;
  const tags = Object.keys(state.runs[run]);
  if (!tags.includes(state.tag)) {
    // Matrices first, then per-layer series, then what cannot be shown.
    const rank = (t) => {
      const info = state.runs[run][t];
      return info.error ? 2 : info.kind === 'matrix' ? 0 : 1;
    };
    state.tag = [...tags].sort((a, b) => rank(a) - rank(b))[0];
  }
  chooseTag(state.tag);
}

function chooseTag(tag) {
  state.tag = tag;
  state.steps = [];
  state.stepIndex = -1;
  state.scaleMode = null;
  if (!comparableRuns().includes(state.compare)) state.compare = '';
  update();
}

/** Other runs with the same tag, of the same kind, that can be shown. */
function comparableRuns() {
  const info = tagInfo();
  return Object.keys(state.runs).filter((r) => {
    const other = state.runs[r][state.tag];
    return r !== state.run && other && !other.error && other.kind === info?.kind;
  });
}

function renderControls() {
  const runs = Object.keys(state.runs).filter((r) => Object.keys(state.runs[r]).length);
  const tags = Object.keys(state.runs[state.run]).map((t) => {
    const info = state.runs[state.run][t];
    const name = t.startsWith(PREFIX) ? t.slice(PREFIX.length) : t;
    return [t, info.error ? `${name} (cannot show)` : `${name} (${info.kind})`];
  });
  const compare = [['', '(none)'], ...comparableRuns().map((r) => [r, r])];
  const controls = [
    el('label', {}, 'Run', select(runs, state.run, chooseRun)),
    el('label', {}, 'Tag', select(tags, state.tag, chooseTag)),
    el('label', {}, 'Minus run', select(compare, state.compare, (r) => {
      state.compare = r;
      state.scaleMode = null;
      update();
    })),
  ];
  if (state.steps.length) {
    const label = el('span', { class: 'kh-step', text: String(state.steps[state.stepIndex]) });
    const slider = el('input', {
      type: 'range', min: '0', max: String(state.steps.length - 1),
      value: String(state.stepIndex), id: 'kh-step-slider',
    });
    slider.addEventListener('input', () => {
      state.stepIndex = Number(slider.value);
      label.textContent = String(state.steps[state.stepIndex]);
      update(false);
    });
    controls.push(el('label', {}, 'Step', slider, label));
    controls.push(el('label', {}, 'Colour scale', select(
      [['auto', 'data range'], ['unit', state.compare ? '-1 to 1' : '0 to 1']],
      state.scaleMode ?? 'auto',
      (mode) => { state.scaleMode = mode; update(false); },
    )));
  }
  dom.controls.replaceChildren(...controls);
}

async function getData(run, tag, step) {
  const key = JSON.stringify([run, tag, step]);
  if (!cache.has(key)) {
    const params = step == null ? { run, tag } : { run, tag, step };
    const promise = fetchJSON('./data', params);
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

async function getSeries(run, tag) {
  const key = JSON.stringify(['series', run, tag]);
  if (!cache.has(key)) {
    const promise = fetchJSON('./series', { run, tag });
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

/** Redraws; `controls` false keeps the controls (slider being dragged). */
async function update(controls = true) {
  const token = ++state.token;
  document.body.dataset.ready = '0';
  if (controls) renderControls();
  const info = tagInfo();
  dom.status.replaceChildren();
  try {
    if (info.error) {
      dom.view.replaceChildren();
      dom.info.textContent = '';
      message(dom.status, `Cannot show ${state.tag}: ${info.error}`, 'error');
    } else if (info.kind === 'matrix') {
      await showMatrix(token);
    } else {
      await showLayers(token);
    }
  } catch (e) {
    if (token !== state.token) return;
    dom.view.replaceChildren();
    message(dom.status, e.message, 'error');
  }
  if (token !== state.token) return;
  if (controls) renderControls();
  setReady();
}

function scaleFor(values, difference) {
  const [lo, hi] = extent(values);
  if (state.scaleMode == null) {
    state.scaleMode = difference || (lo >= 0 && hi <= 1) ? 'unit' : 'auto';
  }
  if (difference) {
    const m = state.scaleMode === 'unit' ? 1 : Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { lo: -m, hi: m, map: colormaps.diverging };
  }
  if (state.scaleMode === 'unit') return { lo: 0, hi: 1, map: colormaps.viridis };
  return { lo, hi: hi > lo ? hi : lo + 1, map: colormaps.viridis };
}

const sameNames = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function subtract(a, b) {
  return a.map((row, i) => row.map((v, j) => (v == null || b[i][j] == null ? null : v - b[i][j])));
}

async function showMatrix(token) {
  const step = state.stepIndex >= 0 ? state.steps[state.stepIndex] : undefined;
  const data = await getData(state.run, state.tag, step);
  if (token !== state.token) return;
  state.steps = data.steps;
  state.stepIndex = data.steps.indexOf(data.step);
  const c = data.content;
  let values = data.values;
  let title = c.metric || 'similarity';
  let what = `${state.run}`;
  if (state.compare) {
    let other;
    try {
      other = await getData(state.compare, state.tag, data.step);
    } catch (e) {
      throw new Error(`Run ${state.compare} cannot be subtracted at step ${data.step}: ${e.message}`);
    }
    if (token !== state.token) return;
    if (!sameNames(other.content.rows, c.rows) || !sameNames(other.content.cols, c.cols)) {
      throw new Error(`Runs ${state.run} and ${state.compare} name their layers differently; `
        + 'their matrices cannot be subtracted.');
    }
    values = subtract(values, other.values);
    title = `Δ ${title}`;
    what = `${state.run} − ${state.compare}`;
  }
  dom.info.textContent = `${what}: ${c.metric || 'similarity'} of ${c.row_label} (rows) `
    + `and ${c.col_label} (columns)${c.reference ? `, reference: ${c.reference}` : ''}; `
    + `step ${data.step}.`;
  const scale = scaleFor(values, Boolean(state.compare));
  dom.view.replaceChildren(heatmap(values, {
    rows: c.rows, cols: c.cols, rowTitle: c.row_label, colTitle: c.col_label,
    scale, scaleTitle: title, square: true,
  }));
  Object.assign(document.body.dataset, {
    view: state.compare ? 'difference' : 'matrix', step: String(data.step),
  });
  // Warm the cache for the neighbouring steps.
  for (const i of [state.stepIndex - 1, state.stepIndex + 1]) {
    if (i >= 0 && i < state.steps.length) getData(state.run, state.tag, state.steps[i]).catch(() => {});
  }
}

async function showLayers(token) {
  const series = await getSeries(state.run, state.tag);
  if (token !== state.token) return;
  const c = series.content;
  let steps = series.steps;
  let columns = series.values;
  let what = state.run;
  if (state.compare) {
    const other = await getSeries(state.compare, state.tag);
    if (token !== state.token) return;
    if (!sameNames(other.content.layers, c.layers)) {
      throw new Error(`Runs ${state.run} and ${state.compare} name their layers differently.`);
    }
    const byStep = new Map(other.steps.map((s, i) => [s, other.values[i]]));
    const common = steps.map((s, i) => [s, i]).filter(([s]) => byStep.has(s));
    if (!common.length) throw new Error(`Runs ${state.run} and ${state.compare} share no step.`);
    columns = common.map(([s, i]) => columns[i].map((v, l) => {
      const w = byStep.get(s)[l];
      return v == null || w == null ? null : v - w;
    }));
    steps = common.map(([s]) => s);
    what = `${state.run} − ${state.compare}`;
  }
  if (state.steps.length !== steps.length || state.stepIndex < 0) {
    state.steps = steps;
    state.stepIndex = steps.length - 1;
  }
  // Rows are layers, columns are steps.
  const values = c.layers.map((_, l) => columns.map((col) => col[l]));
  const step = steps[state.stepIndex];
  dom.info.textContent = `${what}: ${c.metric || 'similarity'} of each layer with `
    + `${c.reference || 'its reference'}, over steps; step ${step} outlined.`;
  const scale = scaleFor(values, Boolean(state.compare));
  dom.view.replaceChildren(heatmap(values, {
    rows: c.layers, cols: steps.map(String), rowTitle: 'layer', colTitle: 'step',
    scale, scaleTitle: (state.compare ? 'Δ ' : '') + (c.metric || 'similarity'),
    highlightCol: state.stepIndex, maxHeight: 480,
  }));
  Object.assign(document.body.dataset, {
    view: state.compare ? 'layers-difference' : 'layers', step: String(step),
  });
}
