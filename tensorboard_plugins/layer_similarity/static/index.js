// "Layer similarity" dashboard: a heatmap of each layer x layer similarity
// matrix with a step slider, the difference of two (run, tag) series, and
// the layer x time view of per-layer series. The view lives in the URL;
// TensorBoard's reload button and auto-reload fetch new runs and steps.

import { heatmap, matrixCSV, matrixSVG } from './static/heatmap.js';
import {
  canvasBlob, checkbox, clip, csvNumber, csvText, downloads, el, fetchJSON, fileName, fitScale, iso,
  jsonBlob, listRuns, loadStyle, message, onHostReload, readUrlState, select, setReady,
  writeUrlState,
} from './static/ui.js';

const PLUGIN = 'layer_similarity';
const PREFIX = 'layer_similarity/';
const ZOOMS = ['1', '2', '4', '8'];
const state = {
  runs: {}, run: null, tag: null, minus: '', steps: [], stepIndex: -1, follow: true,
  scale: 'fit', lo: null, hi: null, filter: '', zoom: '1', beside: [], token: 0,
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
  const url = readUrlState(PLUGIN);
  Object.assign(state, {
    run: url.run ?? null,
    tag: url.tag ?? null,
    minus: url.minus ?? '',
    scale: url.scale === 'fixed' ? 'fixed' : 'fit',
    lo: url.lo != null ? Number(url.lo) : null,
    hi: url.hi != null ? Number(url.hi) : null,
    filter: url.filter ?? '',
    zoom: ZOOMS.includes(url.zoom) ? url.zoom : '1',
  });
  try {
    state.beside = url.beside ? JSON.parse(url.beside).filter((r) => typeof r === 'string') : [];
  } catch (e) {
    state.beside = [];
  }
  if (url.step != null && /^\d+$/.test(url.step)) {
    state.wantStep = Number(url.step);
    state.follow = false;
  }
  onHostReload(reload);
  await loadRuns();
}

async function loadRuns() {
  state.runs = await listRuns(dom.status, 'No layer similarity series yet. Log them with '
      + 'keras_heuristics.callbacks.LayerSimilarity.');
  if (!state.runs) {
    dom.controls.replaceChildren();
    dom.view.replaceChildren();
    dom.info.textContent = '';
    setReady();
    return;
  }
  const runs = Object.keys(state.runs);
  chooseRun(runs.includes(state.run) ? state.run : runs[0], false);
}

/** TensorBoard reloaded its data: list again; when anything changed, redraw
 * keeping the view and following the newest step if it was shown. */
async function reload() {
  document.body.dataset.reloads = String(Number(document.body.dataset.reloads ?? 0) + 1);
  if (!(await listingChanged())) return;
  cache.clear();
  await loadRuns();
}

const tagInfo = () => state.runs[state.run]?.[state.tag];

function chooseRun(run, reset = true) {
  state.run = run;
  const tags = Object.keys(state.runs[run]);
  if (!tags.includes(state.tag)) {
    // Matrices first, then per-layer series, then what cannot be shown.
    const rank = (t) => {
      const info = state.runs[run][t];
      return info.error ? 2 : info.kind === 'matrix' ? 0 : 1;
    };
    state.tag = [...tags].sort((a, b) => rank(a) - rank(b))[0];
    reset = true;
  }
  chooseTag(state.tag, reset);
}

function chooseTag(tag, reset = true) {
  if (reset) {
    state.steps = [];
    state.stepIndex = -1;
    state.follow = true;
    delete state.wantStep;
  }
  state.tag = tag;
  if (!comparable().some(([value]) => value === state.minus)) state.minus = '';
  update();
}

const pairValue = (run, tag) => JSON.stringify([run, tag]);
const shortTag = (t) => (t.startsWith(PREFIX) ? t.slice(PREFIX.length) : t);

/** Other (run, tag) series of the same kind: `[value, label]` options. */
function comparable() {
  const info = tagInfo();
  const out = [];
  for (const [run, tags] of Object.entries(state.runs)) {
    for (const [tag, other] of Object.entries(tags)) {
      if ((run === state.run && tag === state.tag) || other.error || other.kind !== info?.kind) {
        continue;
      }
      out.push([pairValue(run, tag), `${iso(clip(run, 60))} / ${iso(clip(shortTag(tag), 60))}`]);
    }
  }
  return out;
}

function minusPair() {
  return state.minus ? JSON.parse(state.minus) : null;
}

function saveUrl() {
  const step = state.steps[state.stepIndex];
  writeUrlState(PLUGIN, {
    run: state.run,
    tag: state.tag,
    minus: state.minus,
    step: state.follow || step == null ? null : String(step),
    scale: state.scale === 'fixed' ? 'fixed' : null,
    lo: state.scale === 'fixed' ? String(state.lo) : null,
    hi: state.scale === 'fixed' ? String(state.hi) : null,
    filter: state.filter,
    zoom: state.zoom === '1' ? null : state.zoom,
    beside: state.beside.length ? JSON.stringify(state.beside) : null,
  });
}

function numberInput(value, onchange, name) {
  const input = el('input', {
    type: 'number', step: 'any', value: String(value), class: 'kh-number', name,
  });
  input.addEventListener('change', () => {
    if (input.value !== '' && Number.isFinite(Number(input.value))) onchange(Number(input.value));
  });
  return input;
}

function renderControls() {
  const runs = Object.keys(state.runs);
  const tags = Object.keys(state.runs[state.run]).map((t) => {
    const info = state.runs[state.run][t];
    return [t, `${iso(shortTag(t))} (${info.error ? 'cannot show' : info.kind})`];
  });
  const controls = [
    el('label', {}, 'Run', select(runs, state.run, (r) => chooseRun(r))),
    el('label', {}, 'Tag', select(tags, state.tag, (t) => chooseTag(t))),
    el('label', {}, 'Minus', select([['', '(none)'], ...comparable()], state.minus, (v) => {
      state.minus = v;
      update();
    }, { name: 'minus' })),
  ];
  if (state.steps.length) {
    const label = el('span', { class: 'kh-step', text: String(state.steps[state.stepIndex]) });
    const slider = el('input', {
      type: 'range', min: '0', max: String(state.steps.length - 1),
      value: String(state.stepIndex), id: 'kh-step-slider',
    });
    slider.addEventListener('input', () => {
      state.stepIndex = Number(slider.value);
      state.follow = state.stepIndex === state.steps.length - 1;
      label.textContent = String(state.steps[state.stepIndex]);
      update(false);
    });
    controls.push(el('label', {}, 'Step', slider, label));
  }
  const scale = [el('label', {}, 'Colour scale', select(
    [['fit', 'fitted to the data shown'], ['fixed', 'fixed range']], state.scale, (mode) => {
      state.scale = mode;
      if (mode === 'fixed' && dom.scale) [state.lo, state.hi] = [dom.scale.lo, dom.scale.hi];
      update();
    }, { name: 'scale' }))];
  if (state.scale === 'fixed') {
    scale.push(el('label', {}, 'from', numberInput(state.lo, (v) => {
      state.lo = v;
      update(false);
    }, 'lo')));
    scale.push(el('label', {}, 'to', numberInput(state.hi, (v) => {
      state.hi = v;
      update(false);
    }, 'hi')));
  }
  controls.push(el('span', { class: 'kh-group' }, ...scale));
  const filter = el('input', {
    type: 'search', value: state.filter, placeholder: 'part of a name', name: 'filter',
  });
  filter.addEventListener('change', () => {
    state.filter = filter.value;
    update(false);
  });
  controls.push(el('label', {}, 'Layer filter', filter));
  const others = Object.keys(state.runs).filter((r) => r !== state.run
    && state.runs[r][state.tag] && !state.runs[r][state.tag].error);
  if (tagInfo()?.kind === 'matrix' && !state.minus && others.length) {
    controls.push(el('span', { class: 'kh-group' }, 'Beside', el('span', { class: 'kh-runs' },
      ...others.map((run) => checkbox(iso(clip(run, 40)), state.beside.includes(run), (on) => {
        state.beside = others.filter((r) => (r === run ? on : state.beside.includes(r)));
        update();
      }, { 'data-run': run, title: run })))));
  }
  controls.push(el('label', {}, 'Zoom', select(ZOOMS.map((z) => [z, `${z}x`]), state.zoom, (z) => {
    state.zoom = z;
    update(false);
  }, { name: 'zoom' })));
  dom.controls.replaceChildren(...controls);
}

function cached(key, make) {
  if (!cache.has(key)) {
    const promise = make();
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

function getData(run, tag, params = {}) {
  return cached(JSON.stringify(['data', run, tag, params]),
    () => fetchJSON('./data', { run, tag, ...params }));
}

const getSeries = (run, tag) => cached(JSON.stringify(['series', run, tag]),
  () => fetchJSON('./series', { run, tag }));

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
      message(dom.status, `Cannot show ${iso(state.tag)}: ${info.error}`, 'error');
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
  if (controls || state.scale === 'fixed') renderControls();
  saveUrl();
  setReady();
}

const sameNames = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Indices of the names that contain the filter text (all without one). */
function filtered(names) {
  const needle = state.filter.trim().toLowerCase();
  const all = names.map((_, i) => i);
  if (!needle) return all;
  return all.filter((i) => names[i].toLowerCase().includes(needle));
}

function scaleOf(values, signed) {
  const fixed = state.scale === 'fixed' && Number.isFinite(state.lo) && Number.isFinite(state.hi)
    && state.hi > state.lo ? { lo: state.lo, hi: state.hi } : null;
  const scale = fitScale(values, { signed, fixed });
  dom.scale = scale;
  return scale;
}

/** The space the view may take: the frame's width, most of its height. */
function space() {
  const width = Math.max(360, document.documentElement.clientWidth - 150);
  const height = Math.max(320, Math.min(900, window.innerHeight - 220));
  return { width, height };
}

function subtract(a, b) {
  return a.map((row, i) => row.map((v, j) => v - b[i][j]));
}

async function showMatrix(token) {
  let params = {};
  if (state.wantStep != null) params = { at_or_before: state.wantStep };
  else if (!state.follow && state.stepIndex >= 0) params = { step: state.steps[state.stepIndex] };
  const data = await getData(state.run, state.tag, params);
  if (token !== state.token) return;
  delete state.wantStep;
  state.steps = data.steps;
  state.stepIndex = data.steps.indexOf(data.step);
  const c = data.content;
  let values = data.values;
  const metric = c.metric || 'similarity';
  let title = metric;
  const pair = minusPair();
  let what = `${iso(state.run)}, ${iso(shortTag(state.tag))} at step ${data.step}`;
  let other = null;
  if (pair) {
    const [run, tag] = pair;
    try {
      other = await getData(run, tag, { at_or_before: data.step });
    } catch (e) {
      throw new Error(`${iso(run)} / ${iso(shortTag(tag))} has no step at or before step `
        + `${data.step}, so nothing is subtracted there. ${e.message}`);
    }
    if (token !== state.token) return;
    if (!sameNames(other.content.rows, c.rows) || !sameNames(other.content.cols, c.cols)) {
      throw new Error(`${iso(state.run)} / ${iso(shortTag(state.tag))} and ${iso(run)} / `
        + `${iso(shortTag(tag))} name their layers differently; their matrices cannot be `
        + 'subtracted.');
    }
    values = subtract(values, other.values);
    title = `Δ ${metric}`;
    const when = other.step === data.step ? `the same step ${other.step}`
      : `step ${other.step}, its latest at or before ${data.step}`;
    what = `${what} minus ${iso(run)}, ${iso(shortTag(tag))} at ${when}`;
  }
  const rowIdx = filtered(c.rows);
  const colIdx = filtered(c.cols);
  if (!rowIdx.length || !colIdx.length) {
    throw new Error(`No layer name contains “${iso(state.filter)}”.`);
  }
  const rows = rowIdx.map((i) => c.rows[i]);
  const cols = colIdx.map((j) => c.cols[j]);
  const shown = rowIdx.map((i) => colIdx.map((j) => values[i][j]));
  const rowLabel = c.row_label || 'layers';
  const colLabel = c.col_label || 'layers';
  const layerOf = (label) => (label === 'layers' ? 'a layer' : `a layer of ${iso(label)}`);
  dom.info.textContent = `${what}. Each cell: the ${iso(metric)} of ${layerOf(rowLabel)} `
    + `(rows, top to bottom in logged order) and ${layerOf(colLabel)} `
    + `(columns, left to right)${c.reference ? `; reference: ${iso(c.reference)}` : ''}`
    + `${rows.length < c.rows.length || cols.length < c.cols.length
      ? `; ${rows.length} of ${c.rows.length} rows and ${cols.length} of ${c.cols.length} `
        + 'columns match the filter' : ''}.`;
  // Other runs' matrices of the same tag beside it, at their latest step
  // at or before this one, on one colour scale.
  const beside = [];
  if (!pair) {
    for (const run of state.beside.filter((r) => r !== state.run && state.runs[r]?.[state.tag]
      && !state.runs[r][state.tag].error)) {
      let d;
      try {
        d = await getData(run, state.tag, { at_or_before: data.step });
      } catch (e) {
        beside.push({ run, error: `${iso(run)}: ${e.message}` });
        continue;
      }
      if (!sameNames(d.content.rows, c.rows) || !sameNames(d.content.cols, c.cols)) {
        beside.push({ run, error: `${iso(run)} names its layers differently.` });
        continue;
      }
      beside.push({ run, step: d.step, values: rowIdx.map((i) => colIdx.map((j) => d.values[i][j])) });
    }
    if (token !== state.token) return;
  }
  const drawn = beside.filter((b) => b.values);
  const scale = scaleOf([shown, ...drawn.map((b) => b.values)], pair ? true : 'auto');
  const room = space();
  if (drawn.length) room.width = Math.max(240, room.width / (1 + drawn.length) - 100);
  const view = heatmap(shown, {
    rows, cols, rowTitle: rowLabel, colTitle: colLabel,
    scale, scaleTitle: title, square: true, zoom: Number(state.zoom), ...room,
  });
  const panels = [view, ...drawn.map((b) => el('div', { class: 'kh-beside', 'data-run': b.run },
    el('h3', { text: `${iso(clip(b.run, 60))}, step ${b.step}` }),
    heatmap(b.values, {
      rows, cols, rowTitle: rowLabel, colTitle: colLabel,
      scale, scaleTitle: title, square: true, zoom: Number(state.zoom), ...room,
    })))];
  for (const b of beside) {
    if (b.error) panels.push(el('div', { class: 'kh-message kh-error', text: b.error }));
  }
  const name = fileName(state.run, shortTag(state.tag), `step${data.step}`,
    ...(pair ? ['minus', pair[0], shortTag(pair[1]), `step${other.step}`] : []));
  const corner = `${rowLabel} \\ ${colLabel}`;
  dom.view.replaceChildren(downloads({
    PNG: async () => [`${name}.png`, await canvasBlob(view.canvas)],
    SVG: () => [`${name}.svg`, new Blob([matrixSVG(shown, {
      rows, cols, scale, rowTitle: rowLabel, colTitle: colLabel, title: dom.info.textContent,
    })], { type: 'image/svg+xml' })],
    CSV: () => [`${name}.csv`, new Blob([matrixCSV(shown, rows, cols, corner)], { type: 'text/csv' })],
    JSON: () => [`${name}.json`, jsonBlob({
      run: state.run, tag: state.tag, step: data.step, metric: title,
      minus: pair ? { run: pair[0], tag: pair[1], step: other.step } : null,
      rows, cols, values: shown,
    })],
  }), drawn.length ? el('div', { class: 'kh-side-by-side' },
    el('div', { class: 'kh-beside', 'data-run': state.run },
      el('h3', { text: `${iso(clip(state.run, 60))}, step ${data.step}` }), view),
    ...panels.slice(1)) : panels[0]);
  Object.assign(document.body.dataset, {
    view: pair ? 'difference' : 'matrix', step: String(data.step),
    otherStep: other ? String(other.step) : '',
  });
  // Warm the cache for the neighbouring steps.
  for (const i of [state.stepIndex - 1, state.stepIndex + 1]) {
    if (i >= 0 && i < state.steps.length) {
      getData(state.run, state.tag, { step: state.steps[i] }).catch(() => {});
    }
  }
}

/** For each step of `steps`, the index of the latest of `other` at or
 * before it (-1 when `other` starts later). */
function alignEarlier(steps, other) {
  let k = -1;
  return steps.map((s) => {
    while (k + 1 < other.length && other[k + 1] <= s) k++;
    return k;
  });
}

async function showLayers(token) {
  const series = await getSeries(state.run, state.tag);
  if (token !== state.token) return;
  const c = series.content;
  let steps = series.steps;
  let columns = series.values;
  let otherSteps = null;
  const pair = minusPair();
  const metric = c.metric || 'similarity';
  let what = `${iso(state.run)}, ${iso(shortTag(state.tag))}`;
  let note = '';
  if (pair) {
    const [run, tag] = pair;
    const other = await getSeries(run, tag);
    if (token !== state.token) return;
    if (!sameNames(other.content.layers, c.layers)) {
      throw new Error(`${iso(state.run)} / ${iso(shortTag(state.tag))} and ${iso(run)} / `
        + `${iso(shortTag(tag))} name their layers differently.`);
    }
    const at = alignEarlier(steps, other.steps);
    const kept = steps.map((s, i) => i).filter((i) => at[i] >= 0);
    if (!kept.length) {
      throw new Error(`${iso(run)} / ${iso(shortTag(tag))} starts at step ${other.steps[0]}, `
        + `after the last step (${steps[steps.length - 1]}) of ${iso(state.run)}; nothing to `
        + 'subtract.');
    }
    columns = kept.map((i) => columns[i].map((v, l) => v - other.values[at[i]][l]));
    otherSteps = kept.map((i) => other.steps[at[i]]);
    const dropped = steps.length - kept.length;
    steps = kept.map((i) => steps[i]);
    const exact = steps.every((s, i) => s === otherSteps[i]);
    what = `${what} minus ${iso(run)}, ${iso(shortTag(tag))}`;
    note = exact ? ' Both are compared at the same steps.'
      : ` Each step is compared with the latest step of ${iso(run)} at or before it.`;
    if (dropped) {
      note += ` ${dropped} earlier step${dropped > 1 ? 's' : ''} of ${iso(state.run)} (before `
        + `step ${other.steps[0]}) ${dropped > 1 ? 'have' : 'has'} nothing to subtract and `
        + `${dropped > 1 ? 'are' : 'is'} not shown.`;
    }
  }
  if (state.wantStep != null) {
    const before = steps.filter((s) => s <= state.wantStep);
    state.stepIndex = before.length ? before.length - 1 : 0;
    delete state.wantStep;
  } else if (state.follow || state.stepIndex < 0 || state.stepIndex >= steps.length
      || state.steps[state.stepIndex] !== steps[state.stepIndex]) {
    const old = state.steps[state.stepIndex];
    const found = state.follow ? -1 : steps.indexOf(old);
    state.stepIndex = found >= 0 ? found : steps.length - 1;
  }
  state.steps = steps;
  // Rows are layers, columns are steps.
  const layerIdx = filtered(c.layers);
  if (!layerIdx.length) throw new Error(`No layer name contains “${iso(state.filter)}”.`);
  const layers = layerIdx.map((l) => c.layers[l]);
  const values = layerIdx.map((l) => columns.map((col) => col[l]));
  const step = steps[state.stepIndex];
  const compared = otherSteps ? ` (compared with step ${otherSteps[state.stepIndex]})` : '';
  dom.info.textContent = `${what}. Each cell: the ${iso(metric)} of a layer (rows, top to `
    + `bottom in logged order) with ${iso(c.reference || 'its reference')}, at a step `
    + `(columns, left to right); step ${step}${compared} outlined.${note}`
    + `${layers.length < c.layers.length ? ` ${layers.length} of ${c.layers.length} layers `
      + 'match the filter.' : ''}`;
  const scale = scaleOf(values, pair ? true : 'auto');
  const title = (pair ? 'Δ ' : '') + metric;
  const view = heatmap(values, {
    rows: layers, cols: steps.map(String), rowTitle: 'layer', colTitle: 'step',
    scale, scaleTitle: title, highlightCol: state.stepIndex, zoom: Number(state.zoom),
    ...space(),
  });
  const name = fileName(state.run, shortTag(state.tag), 'layers_by_step',
    ...(pair ? ['minus', pair[0], shortTag(pair[1])] : []));
  dom.view.replaceChildren(downloads({
    PNG: async () => [`${name}.png`, await canvasBlob(view.canvas)],
    SVG: () => [`${name}.svg`, new Blob([matrixSVG(values, {
      rows: layers, cols: steps.map(String), scale, rowTitle: 'layer', colTitle: 'step',
      title: dom.info.textContent,
    })], { type: 'image/svg+xml' })],
    CSV: () => [`${name}.csv`, new Blob([layersCSV(layers, steps, values, otherSteps)],
      { type: 'text/csv' })],
    JSON: () => [`${name}.json`, jsonBlob({
      run: state.run, tag: state.tag, metric: title,
      minus: pair ? { run: pair[0], tag: pair[1], steps: otherSteps } : null,
      layers, steps, values,
    })],
  }), view);
  Object.assign(document.body.dataset, {
    view: pair ? 'layers-difference' : 'layers', step: String(step),
    otherStep: otherSteps ? String(otherSteps[state.stepIndex]) : '',
    columns: steps.join(','),
  });
}

function layersCSV(layers, steps, values, otherSteps) {
  const lines = [['layer \\ step', ...steps].map(csvText).join(',')];
  if (otherSteps) lines.push(['minus step', ...otherSteps].map(csvText).join(','));
  values.forEach((row, l) => lines.push([csvText(layers[l]), ...row.map(csvNumber)].join(',')));
  return `${lines.join('\n')}\n`;
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
