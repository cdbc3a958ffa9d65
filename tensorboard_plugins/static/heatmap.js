// A canvas heatmap with row and column labels, the value under the pointer
// and a colour bar. Labels are drawn as canvas text, so names are never
// interpreted as HTML. The picture fits the window (zoom enlarges it inside
// a scrolled box, the colour bar stays in view) and long axes show every
// n-th label.

import {
  clip, colour, colourBar, csvNumber, csvText, el, fitText, format, hidpiCanvas, iso, rgb,
  specials, svg,
} from './ui.js';

const LABEL_FONT = '11px sans-serif';
const TITLE_FONT = 'bold 12px sans-serif';
// Labels closer than this many pixels are thinned to every n-th.
const LABEL_PITCH = 13;

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/** Pixels the longest label needs, at most `limit`. */
function labelWidth(labels, limit) {
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = LABEL_FONT;
  let width = 0;
  for (const label of labels) {
    // Long names are cut to `limit` anyway: measure a bounded prefix.
    width = Math.max(width, ctx.measureText(String(label).slice(0, 200)).width);
    if (width >= limit) break;
  }
  return Math.min(limit, Math.ceil(width) + 6);
}

/** Every how many labels are drawn when each takes `cell` pixels. */
export function labelStride(cell) {
  return Math.max(1, Math.ceil(LABEL_PITCH / cell));
}

/** Cell edges in pixels: `n + 1` integers from `start`, `size` apart. */
function edges(start, n, size) {
  return Array.from({ length: n + 1 }, (_, k) => start + Math.round(k * size));
}

/**
 * Draws `values[i][j]` (rows x cols) and shows the value under the pointer.
 *
 * Options: rows, cols (label lists), rowTitle, colTitle, scale ({lo, hi,
 * map}), scaleTitle, square (equal cell sides), width, height (the space to
 * fit), zoom (1 fits), highlightCol (index of an outlined column, e.g. the
 * current step).
 */
export function heatmap(values, options) {
  const { rows, cols, scale } = options;
  const zoom = options.zoom ?? 1;
  const left = labelWidth(rows, 180) + 24;
  const bottom = labelWidth(cols, 150) + 26;
  const top = 6;
  const right = 8;
  const width = options.width ?? 700;
  const height = options.height ?? 520;
  let cw = clamp((width - left - right) / cols.length, 0.25, 40) * zoom;
  let ch = clamp((height - top - bottom) / rows.length, 0.25, 40) * zoom;
  if (options.square) cw = ch = Math.min(cw, ch);
  const xs = edges(left, cols.length, cw);
  const ys = edges(top, rows.length, ch);
  const plotRight = xs[cols.length];
  const plotBottom = ys[rows.length];
  const canvasWidth = plotRight + right;
  const canvasHeight = plotBottom + bottom;

  const [canvas, ctx] = hidpiCanvas(canvasWidth, canvasHeight, { class: 'kh-heatmap-canvas' });
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < cols.length; j++) {
      ctx.fillStyle = rgb(colour(scale, values[i][j]));
      ctx.fillRect(xs[j], ys[i], Math.max(1, xs[j + 1] - xs[j]), Math.max(1, ys[i + 1] - ys[i]));
    }
  }
  ctx.fillStyle = '#333';
  ctx.font = LABEL_FONT;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  const rowStride = labelStride(ch);
  for (let i = 0; i < rows.length; i += rowStride) {
    ctx.fillText(iso(fitText(ctx, rows[i], left - 26)), left - 4, (ys[i] + ys[i + 1]) / 2);
  }
  const colStride = labelStride(cw);
  for (let j = 0; j < cols.length; j += colStride) {
    ctx.save();
    ctx.translate((xs[j] + xs[j + 1]) / 2, plotBottom + 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(iso(fitText(ctx, cols[j], bottom - 28)), 0, 0);
    ctx.restore();
  }
  ctx.font = TITLE_FONT;
  ctx.textAlign = 'center';
  ctx.fillText(iso(fitText(ctx, options.colTitle ?? '', 400)), (left + plotRight) / 2, canvasHeight - 9);
  ctx.save();
  ctx.translate(9, (top + plotBottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(iso(fitText(ctx, options.rowTitle ?? '', 400)), 0, 0);
  ctx.restore();

  Object.assign(canvas.dataset, {
    rows: rows.length, cols: cols.length, left, top, cellWidth: cw, cellHeight: ch,
    rowStride, colStride,
  });

  const cursor = el('div', { class: 'kh-cursor', hidden: '' });
  const tooltip = el('div', { class: 'kh-tooltip', hidden: '' });
  const plot = el('div', { class: 'kh-plot' }, canvas, cursor, tooltip);
  if (options.highlightCol != null && options.highlightCol >= 0) {
    const j = options.highlightCol;
    const mark = el('div', { class: 'kh-column-mark' });
    Object.assign(mark.style, {
      left: `${xs[j] - 2}px`, top: `${top - 2}px`,
      width: `${Math.max(1, xs[j + 1] - xs[j])}px`, height: `${plotBottom - top}px`,
    });
    plot.append(mark);
  }
  // When both axes carry the same kind of names, say which is which.
  const rowName = options.rowTitle || 'row';
  const colName = options.colTitle || 'column';
  const same = rowName === colName;
  const rowText = same ? `row (${rowName})` : rowName;
  const colText = same ? `column (${colName})` : colName;

  canvas.addEventListener('mousemove', (event) => {
    const j = Math.floor((event.offsetX - left) / cw);
    const i = Math.floor((event.offsetY - top) / ch);
    if (i < 0 || j < 0 || i >= rows.length || j >= cols.length) {
      cursor.hidden = tooltip.hidden = true;
      return;
    }
    const value = values[i][j];
    tooltip.textContent =
      `${iso(clip(rowText, 60))}: ${iso(clip(rows[i]))}\n` +
      `${iso(clip(colText, 60))}: ${iso(clip(cols[j]))}\n` +
      `${iso(clip(options.scaleTitle ?? 'value', 60))}: ${format(value)}`;
    Object.assign(tooltip.dataset, { row: i, col: j, value: String(value) });
    Object.assign(cursor.style, {
      left: `${xs[j] - 1}px`, top: `${ys[i] - 1}px`,
      width: `${Math.max(1, xs[j + 1] - xs[j])}px`, height: `${Math.max(1, ys[i + 1] - ys[i])}px`,
    });
    tooltip.style.left = `${event.offsetX + 14}px`;
    tooltip.style.top = `${event.offsetY + 14}px`;
    cursor.hidden = tooltip.hidden = false;
  });
  canvas.addEventListener('mouseleave', () => {
    cursor.hidden = tooltip.hidden = true;
  });

  const bar = colourBar(
    scale, clamp(plotBottom - top, 160, 320), options.scaleTitle, specials(values),
  );
  // The plot scrolls when zoomed; the colour bar stays beside it.
  const scroller = el('div', { class: 'kh-scroll' }, plot);
  if (zoom > 1) {
    scroller.style.maxWidth = `${width}px`;
    scroller.style.maxHeight = `${Math.max(height, 200)}px`;
  }
  const node = el('div', { class: 'kh-heatmap' }, scroller, bar);
  node.canvas = canvas;
  return node;
}

/** The matrix as CSV: a header of column names, one line per row. */
export function matrixCSV(values, rows, cols, corner = '') {
  const lines = [[corner, ...cols].map(csvText).join(',')];
  values.forEach((row, i) => lines.push([csvText(rows[i]), ...row.map(csvNumber)].join(',')));
  return `${lines.join('\n')}\n`;
}

/** A standalone SVG of the heatmap: one rect per cell, labels as text. */
export function matrixSVG(values, { rows, cols, scale, rowTitle = '', colTitle = '', title = '' }) {
  const cell = 14;
  const left = 200;
  const top = 30;
  const bottom = 170;
  const w = left + cols.length * cell + 120;
  const h = top + rows.length * cell + bottom;
  const root = svg('svg', {
    xmlns: 'http://www.w3.org/2000/svg', width: w, height: h, 'font-family': 'sans-serif',
    'font-size': 10,
  });
  root.append(svg('text', { x: left, y: 16, 'font-weight': 'bold', text: title }));
  values.forEach((row, i) => row.forEach((v, j) => {
    root.append(svg('rect', {
      x: left + j * cell, y: top + i * cell, width: cell, height: cell,
      fill: rgb(colour(scale, v)),
    }, svg('title', { text: `${rows[i]} / ${cols[j]}: ${format(v)}` })));
  }));
  rows.forEach((name, i) => root.append(svg('text', {
    x: left - 4, y: top + (i + 0.7) * cell, 'text-anchor': 'end', text: clip(name, 34),
  })));
  cols.forEach((name, j) => {
    const x = left + (j + 0.7) * cell;
    const y = top + rows.length * cell + 4;
    root.append(svg('text', {
      x, y, 'text-anchor': 'end', transform: `rotate(-90 ${x} ${y})`, text: clip(name, 24),
    }));
  });
  root.append(svg('text', {
    x: left + (cols.length * cell) / 2, y: h - 6, 'text-anchor': 'middle', text: colTitle,
  }));
  root.append(svg('text', {
    x: 12, y: top + (rows.length * cell) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${top + (rows.length * cell) / 2})`, text: rowTitle,
  }));
  // Colour bar.
  const bx = left + cols.length * cell + 20;
  const bh = Math.max(120, rows.length * cell);
  for (let k = 0; k < 50; k++) {
    root.append(svg('rect', {
      x: bx, y: top + (k * bh) / 50, width: 12, height: bh / 50 + 0.5,
      fill: rgb(scale.map(1 - k / 49)),
    }));
  }
  root.append(svg('text', { x: bx + 16, y: top + 8, text: format(scale.hi) }));
  root.append(svg('text', { x: bx + 16, y: top + bh, text: format(scale.lo) }));
  return new XMLSerializer().serializeToString(root);
}
