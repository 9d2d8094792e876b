// Small inline-SVG charts (no library): sparklines, line charts, grouped bars, price gauges.
// Every chart carries role="img" and an aria-label; the numbers are also in a table nearby.
import { h, isNum, kusd, num } from './lib.js';

export const PALETTE = ['#0b62a4', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#1098ad', '#e67700', '#5c940d'];

const s = (tag, attrs, ...children) => h(`svg:${tag}`, attrs, ...children);

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!isNum(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.01 || 1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

// "Nice" axis ticks between lo and hi.
export function ticks(lo, hi, count = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => span / st <= count) || mag * 10;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

export function sparkline(values, { width = 90, height = 22, label = 'trend' } = {}) {
  const svg = s('svg', {
    class: 'spark',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });
  const pts = values.filter(isNum);
  if (pts.length < 2) return svg;
  const [lo, hi] = extent(pts);
  const x = (i) => (i / (pts.length - 1)) * (width - 2) + 1;
  const y = (v) => height - 2 - ((v - lo) / (hi - lo)) * (height - 4);
  const d = pts.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const up = pts[pts.length - 1] >= pts[0];
  svg.append(s('path', { d, fill: 'none', stroke: up ? '#17753a' : '#b3261e', 'stroke-width': 1.5 }));
  return svg;
}

// series: [{name, points: [[x, y], ...]}]; x numeric.
export function lineChart(series, opts = {}) {
  const {
    width = 640,
    height = 260,
    label = 'chart',
    yFormat = (v) => num(v, 1),
    xFormat = (v) => num(v, 0),
    xLabel = '',
    zeroLine = true,
  } = opts;
  const m = { l: 64, r: 16, t: 12, b: 36 };
  const svg = s('svg', {
    class: 'chart',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });
  const xs = series.flatMap((se) => se.points.map((p) => p[0]));
  const ys = series.flatMap((se) => se.points.map((p) => p[1]));
  if (zeroLine) ys.push(0);
  const [x0, x1] = extent(xs);
  const [y0, y1] = extent(ys);
  const X = (v) => m.l + ((v - x0) / (x1 - x0 || 1)) * (width - m.l - m.r);
  const Y = (v) => height - m.b - ((v - y0) / (y1 - y0 || 1)) * (height - m.t - m.b);
  for (const t of ticks(y0, y1, 5)) {
    svg.append(s('line', { class: 'grid', x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t) }));
    svg.append(s('text', { x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end', text: yFormat(t) }));
  }
  const xt = ticks(x0, x1, Math.min(8, Math.max(1, xs.length - 1))).filter((t) => Number.isInteger(t) || x1 - x0 > 8);
  for (const t of xt) {
    svg.append(s('text', { x: X(t), y: height - m.b + 16, 'text-anchor': 'middle', text: xFormat(t) }));
  }
  if (xLabel) {
    svg.append(s('text', { x: (m.l + width - m.r) / 2, y: height - 4, 'text-anchor': 'middle', text: xLabel }));
  }
  svg.append(s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: height - m.b }));
  if (zeroLine && y0 <= 0 && y1 >= 0) {
    svg.append(s('line', { class: 'axis', x1: m.l, x2: width - m.r, y1: Y(0), y2: Y(0) }));
  }
  series.forEach((se, k) => {
    const color = se.color || PALETTE[k % PALETTE.length];
    const pts = se.points.filter((p) => isNum(p[1]));
    if (!pts.length) return;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    svg.append(s('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': se.name }));
    for (const p of pts) {
      svg.append(
        s('circle', { cx: X(p[0]), cy: Y(p[1]), r: 3, fill: color },
          s('title', { text: `${se.name}: ${yFormat(p[1])} at ${xFormat(p[0])}` })),
      );
    }
  });
  return svg;
}

export function legend(items) {
  return h(
    'div',
    { class: 'legend', 'aria-hidden': 'true' },
    items.map((it, k) => {
      const swatch = h('i');
      swatch.style.background = it.color || PALETTE[k % PALETTE.length];
      return h('span', {}, swatch, it.name);
    }),
  );
}

// Grouped horizontal bars: rows [{label, values: [v1, v2, ...]}], names of the values.
export function groupedBars(rows, names, { width = 560, label = 'bars', colors = PALETTE } = {}) {
  const barH = 11;
  const gap = 3;
  const groupH = names.length * (barH + gap) + 10;
  const m = { l: 64, r: 48, t: 6, b: 22 };
  const height = m.t + m.b + rows.length * groupH;
  const svg = s('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  const all = rows.flatMap((r) => r.values);
  let [lo, hi] = extent(all.concat([0]));
  if (lo > 0) lo = 0;
  if (hi < 0) hi = 0;
  const X = (v) => m.l + ((v - lo) / (hi - lo || 1)) * (width - m.l - m.r);
  for (const t of ticks(lo, hi, 4)) {
    svg.append(s('line', { class: 'grid', x1: X(t), x2: X(t), y1: m.t, y2: height - m.b }));
    svg.append(s('text', { x: X(t), y: height - 6, 'text-anchor': 'middle', text: kusd(t) }));
  }
  rows.forEach((row, i) => {
    const top = m.t + i * groupH;
    svg.append(s('text', { x: m.l - 8, y: top + groupH / 2, 'text-anchor': 'end', 'font-weight': 600, text: row.label }));
    row.values.forEach((v, k) => {
      if (!isNum(v)) return;
      const y = top + 4 + k * (barH + gap);
      const x = Math.min(X(0), X(v));
      const w = Math.max(1, Math.abs(X(v) - X(0)));
      svg.append(
        s('rect', { x, y, width: w, height: barH, fill: colors[k % colors.length], rx: 1 },
          s('title', { text: `${row.label} ${names[k]}: ${kusd(v)} USD` })),
      );
      // the value beside its bar; inside it when there is no room (a bar reaching the labels)
      const inside = v >= 0 ? x + w + 44 > width : x - 44 < m.l;
      const tx = v >= 0 ? (inside ? x + w - 4 : x + w + 4) : inside ? x + 4 : x - 4;
      const anchor = (v >= 0) !== inside ? 'start' : 'end';
      svg.append(s('text', { x: tx, y: y + barH - 2, 'text-anchor': anchor, text: kusd(v), ...(inside ? { style: null, fill: '#fff', class: 'in-bar' } : {}) }));
    });
  });
  svg.append(s('line', { class: 'axis', x1: X(0), x2: X(0), y1: m.t, y2: height - m.b }));
  return svg;
}

// A price scale with the live price (dot) and the liquidation price(s) (red ticks), the zone
// beyond them shaded.
export function priceGauge(current, below, above, { width = 240, label = 'price gauge' } = {}) {
  const height = 30;
  const svg = s('svg', { class: 'chart gauge', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  const marks = [current, below, above].filter(isNum);
  if (!isNum(current) || marks.length < 2) return svg;
  let [lo, hi] = extent(marks);
  const pad = (hi - lo) * 0.15;
  lo = Math.max(0, lo - pad);
  hi += pad;
  const X = (v) => 6 + ((v - lo) / (hi - lo)) * (width - 12);
  const y = 14;
  svg.append(s('line', { x1: 6, x2: width - 6, y1: y, y2: y, stroke: '#c5ced6', 'stroke-width': 6, 'stroke-linecap': 'round' }));
  if (isNum(below)) {
    svg.append(s('line', { x1: 6, x2: X(below), y1: y, y2: y, stroke: '#f0a8a2', 'stroke-width': 6 }));
    svg.append(s('line', { x1: X(below), x2: X(below), y1: 4, y2: 24, stroke: '#b3261e', 'stroke-width': 2 }));
  }
  if (isNum(above)) {
    svg.append(s('line', { x1: X(above), x2: width - 6, y1: y, y2: y, stroke: '#f0a8a2', 'stroke-width': 6 }));
    svg.append(s('line', { x1: X(above), x2: X(above), y1: 4, y2: 24, stroke: '#b3261e', 'stroke-width': 2 }));
  }
  svg.append(s('circle', { cx: X(current), cy: y, r: 5, fill: '#0b62a4', stroke: '#fff', 'stroke-width': 1.5 }));
  return svg;
}

// A horizontal bar inside a table cell, centred on zero when `signed`.
export function cellBar(value, maxAbs, signed = true) {
  const outer = h('div', { class: 'hbar', 'aria-hidden': 'true' });
  if (!isNum(value) || !(maxAbs > 0)) return outer;
  const inner = h('i');
  const frac = Math.min(1, Math.abs(value) / maxAbs);
  if (signed) {
    inner.style.left = value >= 0 ? '50%' : `${50 - frac * 50}%`;
    inner.style.width = `${frac * 50}%`;
  } else {
    inner.style.left = '0';
    inner.style.width = `${frac * 100}%`;
  }
  inner.style.background = value >= 0 ? '#2f9e55' : '#d64a3f';
  outer.append(inner);
  return outer;
}

// Diverging colours of a heatmap cell: red below zero, green above, stronger with magnitude;
// the text colour keeps a readable contrast on either.
export function heatColor(value, maxAbs) {
  if (!isNum(value)) return { background: '#eee', color: '#14202b' };
  const t = Math.min(1, Math.abs(value) / (maxAbs || 1));
  const l = value < 0 ? 92 - t * 52 : 94 - t * 36;
  const background = value < 0 ? `hsl(4, 72%, ${l}%)` : `hsl(140, 45%, ${l}%)`;
  return { background, color: l < 62 ? '#ffffff' : '#14202b' };
}
