// A canvas heatmap with row and column labels, the value under the pointer
// and a colour bar. Labels are drawn as canvas text, so names are never
// interpreted as HTML.

import { colour, colourBar, el, fit, format, hidpiCanvas, rgb } from './ui.js';

const LABEL_FONT = '11px sans-serif';
const TITLE_FONT = 'bold 12px sans-serif';

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/** Pixels the longest label needs, at most `limit`. */
function labelWidth(labels, limit) {
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = LABEL_FONT;
  let width = 0;
  for (const label of labels) width = Math.max(width, ctx.measureText(label).width);
  return Math.min(limit, Math.ceil(width) + 6);
}

/** Every how many labels fit when each takes `cell` pixels. */
function stride(cell, need = 12) {
  return Math.max(1, Math.ceil(need / cell));
}

/**
 * Draws `values[i][j]` (rows x cols) and shows the value under the pointer.
 *
 * Options: rows, cols (label lists), rowTitle, colTitle, scale ({lo, hi,
 * map}), scaleTitle, square (equal cell sides), maxWidth, maxHeight,
 * highlightCol (index of an outlined column, e.g. the current step).
 */
export function heatmap(values, options) {
  const { rows, cols, scale } = options;
  const left = labelWidth(rows, 160) + 22;
  const bottom = labelWidth(cols, 150) + 22;
  const top = 6;
  const right = 6;
  const maxWidth = options.maxWidth ?? 760;
  const maxHeight = options.maxHeight ?? 560;
  let cw = clamp(Math.floor((maxWidth - left - right) / cols.length), 1, 48);
  let ch = clamp(Math.floor((maxHeight - top - bottom) / rows.length), 2, 48);
  if (options.square) cw = ch = Math.min(cw, ch);
  ch = Math.max(ch, 2);
  const width = left + cols.length * cw + right;
  const height = top + rows.length * ch + bottom;

  const [canvas, ctx] = hidpiCanvas(width, height, { class: 'kh-heatmap-canvas' });
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < cols.length; j++) {
      ctx.fillStyle = rgb(colour(scale, values[i][j]));
      ctx.fillRect(left + j * cw, top + i * ch, cw, ch);
    }
  }
  ctx.fillStyle = '#333';
  ctx.font = LABEL_FONT;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  const rowStride = stride(ch);
  for (let i = 0; i < rows.length; i += rowStride) {
    ctx.fillText(fit(ctx, rows[i], left - 24), left - 4, top + (i + 0.5) * ch);
  }
  const colStride = stride(cw);
  for (let j = 0; j < cols.length; j += colStride) {
    ctx.save();
    ctx.translate(left + (j + 0.5) * cw, top + rows.length * ch + 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(fit(ctx, cols[j], bottom - 26), 0, 0);
    ctx.restore();
  }
  ctx.font = TITLE_FONT;
  ctx.textAlign = 'center';
  ctx.fillText(options.colTitle ?? '', left + (cols.length * cw) / 2, height - 8);
  ctx.save();
  ctx.translate(9, top + (rows.length * ch) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(options.rowTitle ?? '', 0, 0);
  ctx.restore();

  Object.assign(canvas.dataset, {
    rows: rows.length, cols: cols.length, left, top, cellWidth: cw, cellHeight: ch,
  });

  const cursor = el('div', { class: 'kh-cursor', hidden: '' });
  const tooltip = el('div', { class: 'kh-tooltip', hidden: '' });
  const plot = el('div', { class: 'kh-plot' }, canvas, cursor, tooltip);
  if (options.highlightCol != null && options.highlightCol >= 0) {
    const mark = el('div', { class: 'kh-column-mark' });
    Object.assign(mark.style, {
      left: `${left + options.highlightCol * cw - 1}px`, top: `${top - 1}px`,
      width: `${cw}px`, height: `${rows.length * ch}px`,
    });
    plot.append(mark);
  }

  canvas.addEventListener('mousemove', (event) => {
    const j = Math.floor((event.offsetX - left) / cw);
    const i = Math.floor((event.offsetY - top) / ch);
    if (i < 0 || j < 0 || i >= rows.length || j >= cols.length) {
      cursor.hidden = tooltip.hidden = true;
      return;
    }
    const value = values[i][j];
    tooltip.textContent =
      `${options.rowTitle ?? 'row'}: ${rows[i]}\n` +
      `${options.colTitle ?? 'column'}: ${cols[j]}\n` +
      `${options.scaleTitle ?? 'value'}: ${format(value)}`;
    Object.assign(tooltip.dataset, { row: i, col: j, value: String(value) });
    Object.assign(cursor.style, {
      left: `${left + j * cw - 1}px`, top: `${top + i * ch - 1}px`,
      width: `${cw}px`, height: `${ch}px`,
    });
    tooltip.style.left = `${event.offsetX + 14}px`;
    tooltip.style.top = `${event.offsetY + 14}px`;
    cursor.hidden = tooltip.hidden = false;
  });
  canvas.addEventListener('mouseleave', () => {
    cursor.hidden = tooltip.hidden = true;
  });

  const bar = colourBar(
    scale, clamp(rows.length * ch, 160, 320), options.scaleTitle,
  );
  return el('div', { class: 'kh-heatmap' }, plot, bar);
}
