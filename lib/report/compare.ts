/** Two runs side by side, one row per measure, as the paper's tables set its strategies next to each other. */
import { fmtDistinct, fmtInt, fmtScore, fmtThreshold, thresholdLabel } from './format';
import { hllStandardError, type DistinctCount } from './hll';
import type { RunReport } from './types';

type Value = number | string | null;

export interface ComparisonRow {
  label: string;
  /** Formatted cells, A then B. */
  a: string;
  b: string;
  /** B − A for numeric rows ('' otherwise). */
  delta: string;
  /** The raw values behind a and b. */
  values: [Value, Value];
}

export interface Comparison {
  runs: [{ name: string; uri: string; preset: string | null }, { name: string; uri: string; preset: string | null }];
  rows: ComparisonRow[];
}

interface Measure {
  label: string;
  get: (r: RunReport) => Value;
  fmt: (v: Value, r: RunReport) => string;
  /** How to print B − A (omit for non-numeric rows). */
  delta?: (d: number) => string;
}

const sign = (d: number, s: string) => (d > 0 ? `+${s}` : d < 0 ? s.replace(/^-/, '−') : '0');
const intDelta = (d: number) => sign(d, fmtInt(d));
const scoreDelta = (d: number) => sign(d, d.toFixed(4));
const num = (f: (v: number) => string) => (v: Value) => (typeof v === 'number' ? f(v) : v === null ? '—' : String(v));
const distinct = (pick: (r: RunReport) => DistinctCount): Pick<Measure, 'get' | 'fmt' | 'delta'> => ({
  get: (r) => pick(r).value,
  fmt: (_v, r) => fmtDistinct(pick(r)),
  delta: intDelta,
});

const keptPct = (r: RunReport) => (r.counts.samples ? (100 * r.counts.kept) / r.counts.samples : null);

const MEASURES: Measure[] = [
  { label: 'preset', get: (r) => r.run.preset, fmt: (v) => (v === null ? '—' : String(v)) },
  { label: 'samples', get: (r) => r.counts.samples, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept', get: (r) => r.counts.kept, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept %', get: keptPct, fmt: num((v) => `${v.toFixed(1)} %`), delta: (d) => sign(d, `${d.toFixed(1)} pt`) },
  { label: 'kept, raw captions', get: (r) => r.counts.keptBySource.raw, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept, synthetic captions', get: (r) => r.counts.keptBySource.synthetic, fmt: num(fmtInt), delta: intDelta },
  { label: 'dropped (rule or filter)', get: (r) => r.counts.dropped, fmt: num(fmtInt), delta: intDelta },
  { label: 'failed samples', get: (r) => r.counts.failed, fmt: num(fmtInt), delta: intDelta },
  { label: 'mean CLIP score, chosen', get: (r) => r.scores.chosen.mean, fmt: num((v) => fmtScore(v)), delta: scoreDelta },
  { label: 'mean CLIPScore, chosen', get: (r) => r.scores.chosen.meanClipScore, fmt: num((v) => fmtScore(v)), delta: scoreDelta },
  { label: 'mean s_raw, pool', get: (r) => r.scores.raw.mean, fmt: num((v) => fmtScore(v)), delta: scoreDelta },
  { label: 'mean s_syn, pool', get: (r) => r.scores.synthetic.mean, fmt: num((v) => fmtScore(v)), delta: scoreDelta },
  {
    label: 'mean words, kept captions',
    get: (r) => r.captions.lengths.chosen.mean,
    fmt: num((v) => v.toFixed(2)),
    delta: (d) => sign(d, d.toFixed(2)),
  },
  { label: 'unique words, kept', ...distinct((r) => r.captions.diversity.chosen.uniqueWords) },
  { label: 'unique trigrams, kept', ...distinct((r) => r.captions.diversity.chosen.uniqueTrigrams) },
];

export function compareReports(a: RunReport, b: RunReport): Comparison {
  const rows: ComparisonRow[] = MEASURES.map((m) => {
    const va = m.get(a);
    const vb = m.get(b);
    return {
      label: m.label,
      a: m.fmt(va, a),
      b: m.fmt(vb, b),
      delta: m.delta && typeof va === 'number' && typeof vb === 'number' ? m.delta(vb - va) : '',
      values: [va, vb],
    };
  });
  // Thresholds: one row per key either run uses (raw@0.3, synthetic@0.5...).
  const keys = [...new Set([...Object.keys(a.thresholds.values), ...Object.keys(b.thresholds.values)])].sort();
  if (keys.length === 0) rows.push({ label: 'thresholds', a: 'none', b: 'none', delta: '', values: [null, null] });
  for (const k of keys) {
    const va = a.thresholds.values[k] ?? null;
    const vb = b.thresholds.values[k] ?? null;
    rows.push({
      label: `${thresholdLabel(k)} (${k})`,
      a: va === null ? '—' : fmtThreshold(va),
      b: vb === null ? '—' : fmtThreshold(vb),
      delta: typeof va === 'number' && typeof vb === 'number' ? scoreDelta(vb - va) : '',
      values: [va, vb],
    });
  }
  const run = (r: RunReport) => ({ name: r.run.name, uri: r.run.uri, preset: r.run.preset });
  return { runs: [run(a), run(b)], rows };
}

/** Plain-text table: measure | A | B | B − A, columns padded (numbers right-aligned). */
export function renderComparison(c: Comparison): string {
  const [ra, rb] = c.runs;
  const same = ra.name === rb.name;
  const head = ['', same ? `A: ${ra.name}` : ra.name, same ? `B: ${rb.name}` : rb.name, 'B − A'];
  const body = c.rows.map((r) => [r.label, r.a, r.b, r.delta]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(width[i]!) : cell.padStart(width[i]!)))
      .join('   ')
      .trimEnd();
  return [
    line(head),
    width.map((w) => '─'.repeat(w)).join('   '),
    ...body.map(line),
    '',
    `A = ${ra.uri}`,
    `B = ${rb.uri}`,
    ...(c.rows.some((r) => r.a.startsWith('≈') || r.b.startsWith('≈'))
      ? [`≈ = HyperLogLog estimate (relative standard error ${(hllStandardError() * 100).toFixed(2)} %)`]
      : []),
  ].join('\n') + '\n';
}
