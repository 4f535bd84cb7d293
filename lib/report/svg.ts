/**
 * Hand-made inline SVG charts for report.html. Why not a library: the report must be ONE self-contained file
 * that opens offline with no scripts and no external assets; charting libraries either render in the browser
 * (a JS runtime and usually a CDN in the page) or pull in a DOM/canvas stack to pre-render, and none that is
 * small and well kept does better than these ~250 lines for a handful of histograms and bars. Tooltips are SVG
 * <title> elements (no script needed).
 */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const COLORS = {
  raw: '#d9822b',
  synthetic: '#2f6fd0',
  chosen: '#2a9d5c',
  dropped: '#b8bec6',
  failed: '#d64545',
  axis: '#5b6470',
  grid: '#e4e7eb',
  threshold: '#7b2cbf',
};

const W = 760;
const H = 300;
const M = { left: 64, right: 18, top: 46, bottom: 48 };

/** A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` ticks over `span`. */
function niceStep(span: number, target = 5): number {
  if (!(span > 0)) return 1;
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const f of [1, 2, 5, 10]) if (f * p >= raw) return f * p;
  return 10 * p;
}

function fmtTick(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return v.toFixed(Math.min(decimals, 6));
}

export interface BarSeries {
  name: string;
  color: string;
  values: number[];
}

export interface HistogramSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** Bin i covers [lo + i·width, lo + (i+1)·width) — or, with `labels`, is the category labels[i]. */
  lo: number;
  width: number;
  bins: number;
  /** Category labels for discrete bins (caption lengths); ticks are then drawn every `labelEvery` bins. */
  labels?: string[];
  labelEvery?: number;
  series: BarSeries[];
  /** overlay: translucent bars on top of each other; stack: stacked; group: side by side within a bin. */
  mode: 'overlay' | 'stack' | 'group';
  /** Vertical reference lines in x units (thresholds). */
  vlines?: Array<{ x: number; label: string }>;
  /** Formats a y value for tooltips (default: integer). */
  yFormat?: (v: number) => string;
  /** Shown instead of bars when every series is empty. */
  emptyText: string;
}

function legend(series: Array<{ name: string; color: string }>, x: number, y: number): string {
  let out = '';
  let cx = x;
  for (const s of [...series].reverse()) {
    const w = s.name.length * 6.6 + 22;
    cx -= w;
    out += `<rect x="${cx.toFixed(1)}" y="${y - 9}" width="11" height="11" rx="2" fill="${s.color}"/><text x="${(cx + 15).toFixed(1)}" y="${y}" class="lg">${esc(s.name)}</text>`;
  }
  return out;
}

function frame(id: string, title: string, body: string, height = H): string {
  return (
    `<svg class="plot" data-plot="${esc(id)}" viewBox="0 0 ${W} ${height}" width="100%" role="img" aria-label="${esc(title)}">` +
    `<title>${esc(title)}</title>` +
    `<text x="${M.left}" y="18" class="pt">${esc(title)}</text>${body}</svg>`
  );
}

/** Wrap text into lines of at most `max` characters (for messages inside an empty plot). */
function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function histogramSvg(spec: HistogramSpec): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x0 = M.left;
  const y0 = M.top + ph;
  const n = spec.bins;
  const empty = n === 0 || spec.series.every((s) => s.values.every((v) => !v));
  if (empty) {
    // A short frame with the reason, instead of a large empty plot area.
    const lines = wrap(spec.emptyText, 90);
    const eh = 40 + lines.length * 17 + 24;
    let msg = `<rect x="${x0}" y="30" width="${pw}" height="${eh - 42}" class="pa"/>`;
    msg += lines.map((l, i) => `<text x="${x0 + pw / 2}" y="${30 + 22 + i * 17}" text-anchor="middle" class="em">${esc(l)}</text>`).join('');
    return frame(spec.id, spec.title, msg, eh);
  }
  let body = `<rect x="${x0}" y="${M.top}" width="${pw}" height="${ph}" class="pa"/>`;

  // y scale
  let yMax = 0;
  for (let i = 0; i < n; i++) {
    if (spec.mode === 'stack') yMax = Math.max(yMax, spec.series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
    else for (const s of spec.series) yMax = Math.max(yMax, s.values[i] ?? 0);
  }
  const yStep = niceStep(yMax * 1.08, 4);
  const yTop = Math.ceil((yMax * 1.08) / yStep) * yStep || 1; // headroom for the threshold labels
  const ys = (v: number) => y0 - (v / yTop) * ph;
  for (let t = 0; t <= yTop + yStep * 1e-9; t += yStep) {
    body += `<line x1="${x0}" x2="${x0 + pw}" y1="${ys(t).toFixed(1)}" y2="${ys(t).toFixed(1)}" class="gr"/>`;
    body += `<text x="${x0 - 6}" y="${(ys(t) + 4).toFixed(1)}" text-anchor="end" class="tk">${fmtTick(t, yStep)}</text>`;
  }

  // x scale: bins are equal slots
  const bw = pw / n;
  const xAt = (v: number) => x0 + ((v - spec.lo) / spec.width) * bw;
  const yFmt = spec.yFormat ?? ((v: number) => Math.round(v).toLocaleString('en-US'));
  const binLabel = (i: number) =>
    spec.labels ? spec.labels[i]! : `${(spec.lo + i * spec.width).toFixed(3)} – ${(spec.lo + (i + 1) * spec.width).toFixed(3)}`;

  for (let i = 0; i < n; i++) {
    const tip = `${binLabel(i)}: ${spec.series.map((s) => `${s.name} ${yFmt(s.values[i] ?? 0)}`).join(', ')}`;
    let acc = 0;
    spec.series.forEach((s, si) => {
      const v = s.values[i] ?? 0;
      if (!v) return;
      let x = x0 + i * bw + 0.5;
      let w = Math.max(bw - 1, 0.5);
      let top = ys(v);
      let h = y0 - top;
      if (spec.mode === 'stack') {
        top = ys(acc + v);
        h = ys(acc) - top;
        acc += v;
      } else if (spec.mode === 'group') {
        w = Math.max((bw - 1) / spec.series.length, 0.5);
        x = x0 + i * bw + 0.5 + si * w;
      }
      const op = spec.mode === 'overlay' ? ' fill-opacity="0.55"' : '';
      body += `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" fill="${s.color}"${op}><title>${esc(tip)}</title></rect>`;
    });
  }

  // x ticks
  if (spec.labels) {
    const every = spec.labelEvery ?? 1;
    for (let i = 0; i < n; i += every) {
      const cx = x0 + (i + 0.5) * bw;
      body += `<text x="${cx.toFixed(1)}" y="${y0 + 16}" text-anchor="middle" class="tk">${esc(spec.labels[i]!)}</text>`;
    }
  } else {
    const hi = spec.lo + n * spec.width;
    const step = niceStep(hi - spec.lo, 8);
    for (let t = Math.ceil(spec.lo / step - 1e-9) * step; t <= hi + 1e-9; t += step) {
      const cx = xAt(t);
      body += `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y0}" y2="${y0 + 4}" class="ax"/>`;
      body += `<text x="${cx.toFixed(1)}" y="${y0 + 16}" text-anchor="middle" class="tk">${fmtTick(t, step)}</text>`;
    }
  }
  body += `<line x1="${x0}" x2="${x0 + pw}" y1="${y0}" y2="${y0}" class="ax"/>`;
  body += `<text x="${x0 + pw / 2}" y="${H - 8}" text-anchor="middle" class="al">${esc(spec.xLabel)}</text>`;
  body += `<text x="14" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${M.top + ph / 2})" class="al">${esc(spec.yLabel)}</text>`;

  // thresholds
  for (const [k, l] of (spec.vlines ?? []).entries()) {
    if (!(l.x >= spec.lo && l.x <= spec.lo + n * spec.width)) continue;
    const cx = xAt(l.x);
    body += `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${M.top}" y2="${y0}" class="th"/>`;
    const right = cx > x0 + pw * 0.7;
    body += `<text x="${(cx + (right ? -5 : 5)).toFixed(1)}" y="${M.top + 14 + k * 14}" text-anchor="${right ? 'end' : 'start'}" class="tl" paint-order="stroke" stroke="#fff" stroke-width="4" stroke-linejoin="round">${esc(l.label)}</text>`;
  }
  body += legend(spec.series, W - M.right, 36);
  return frame(spec.id, spec.title, body);
}

/** One horizontal bar split into segments (where the samples went), with a labelled legend below. */
export function stackedBarSvg(id: string, title: string, segments: Array<{ name: string; color: string; value: number }>, emptyText: string): string {
  const pw = W - M.left - M.right;
  const height = 100 + Math.ceil(segments.length / 2) * 20;
  const total = segments.reduce((a, s) => a + s.value, 0);
  let body = '';
  if (total === 0) {
    body += `<rect x="${M.left}" y="34" width="${pw}" height="40" class="pa"/>`;
    body += `<text x="${M.left + pw / 2}" y="59" text-anchor="middle" class="em">${esc(emptyText)}</text>`;
    return frame(id, title, body, height);
  }
  let x = M.left;
  for (const s of segments) {
    if (!s.value) continue;
    const w = (s.value / total) * pw;
    const pct = ((100 * s.value) / total).toFixed(1);
    body += `<rect x="${x.toFixed(1)}" y="34" width="${Math.max(w, 1).toFixed(1)}" height="40" fill="${s.color}"><title>${esc(`${s.name}: ${s.value.toLocaleString('en-US')} (${pct} %)`)}</title></rect>`;
    if (w > 46) body += `<text x="${(x + w / 2).toFixed(1)}" y="59" text-anchor="middle" class="bl">${pct} %</text>`;
    x += w;
  }
  // legend with counts, two columns
  segments.forEach((s, i) => {
    const lx = M.left + (i % 2) * (pw / 2);
    const ly = 100 + Math.floor(i / 2) * 20;
    const pct = ((100 * s.value) / total).toFixed(1);
    body += `<rect x="${lx}" y="${ly - 10}" width="12" height="12" rx="2" fill="${s.color}"/>`;
    body += `<text x="${lx + 18}" y="${ly}" class="lg">${esc(s.name)} — ${s.value.toLocaleString('en-US')} (${pct} %)</text>`;
  });
  return frame(id, title, body, height);
}

/** Panels of horizontal bars side by side (e.g. unique words | unique trigrams for raw, synthetic, kept). */
export function barPanelsSvg(
  id: string,
  title: string,
  panels: Array<{ title: string; bars: Array<{ name: string; color: string; value: number; label: string }> }>,
  emptyText: string,
): string {
  const rows = Math.max(...panels.map((p) => p.bars.length), 1);
  const height = 60 + rows * 34 + 10;
  const gap = 30;
  const nameW = 70;
  const pw = (W - M.left / 2 - M.right - gap * (panels.length - 1)) / panels.length;
  let body = '';
  if (panels.every((p) => p.bars.every((b) => !b.value))) {
    body += `<rect x="${M.left}" y="30" width="${W - M.left - M.right}" height="40" class="pa"/>`;
    body += `<text x="${M.left + (W - M.left - M.right) / 2}" y="55" text-anchor="middle" class="em">${esc(emptyText)}</text>`;
    return frame(id, title, body, 82);
  }
  panels.forEach((p, pi) => {
    const px = M.left / 2 + pi * (pw + gap);
    const max = Math.max(...p.bars.map((b) => b.value), 1);
    body += `<text x="${px}" y="46" class="st">${esc(p.title)}</text>`;
    p.bars.forEach((b, bi) => {
      const y = 58 + bi * 34;
      const bw = ((pw - nameW - 90) * b.value) / max;
      body += `<text x="${px + nameW - 6}" y="${y + 15}" text-anchor="end" class="lg">${esc(b.name)}</text>`;
      body += `<rect x="${px + nameW}" y="${y}" width="${Math.max(bw, b.value ? 1 : 0).toFixed(1)}" height="22" rx="2" fill="${b.color}"><title>${esc(`${b.name}: ${b.label}`)}</title></rect>`;
      body += `<text x="${(px + nameW + bw + 6).toFixed(1)}" y="${y + 15}" class="lg">${esc(b.label)}</text>`;
    });
  });
  return frame(id, title, body, height);
}
