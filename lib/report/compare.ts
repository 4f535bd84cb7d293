/**
 * Runs side by side, one column per run and one row per measure, as the paper's tables set its strategies next to
 * each other. Deltas are against the first run (the baseline), so two runs read as before: B − A.
 */
import { InputError } from '../errors';
import { fmtDistinct, fmtInt, fmtScore, fmtThreshold, thresholdLabel } from './format';
import { hllStandardError, type DistinctCount } from './hll';
import type { RunReport } from './types';

type Value = number | string | null;

export interface ComparisonRow {
  label: string;
  /** Formatted cells, one per run, in the order the runs were given. */
  cells: string[];
  /** Run i − the first run, for numeric rows ('' for the first run and for other rows). */
  deltas: string[];
  /** The raw values behind the cells. */
  values: Value[];
}

export interface ComparedRun {
  name: string;
  uri: string;
  preset: string | null;
  fraction: number | null;
}

export interface Comparison {
  runs: ComparedRun[];
  rows: ComparisonRow[];
}

interface Measure {
  label: string;
  get: (r: RunReport) => Value;
  fmt: (v: Value, r: RunReport) => string;
  /** How to print run − first run (omit for non-numeric rows). */
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
  { label: 'fraction', get: (r) => r.run.fraction, fmt: num(String), delta: (d) => sign(d, String(+d.toFixed(6))) },
  { label: 'samples', get: (r) => r.counts.samples, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept', get: (r) => r.counts.kept, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept %', get: keptPct, fmt: num((v) => `${v.toFixed(1)} %`), delta: (d) => sign(d, `${d.toFixed(1)} pt`) },
  { label: 'kept, raw captions', get: (r) => r.counts.keptBySource.raw, fmt: num(fmtInt), delta: intDelta },
  { label: 'kept, synthetic captions', get: (r) => r.counts.keptBySource.synthetic, fmt: num(fmtInt), delta: intDelta },
  { label: 'dropped (rule or filter)', get: (r) => r.counts.dropped, fmt: num(fmtInt), delta: intDelta },
  { label: 'failed samples', get: (r) => r.counts.failed, fmt: num(fmtInt), delta: intDelta },
  { label: 'failed shards', get: (r) => r.shards.failedCount, fmt: num(fmtInt), delta: intDelta },
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

/** Two or more runs side by side; deltas against the first. */
export function compareReports(reports: readonly RunReport[]): Comparison {
  if (reports.length < 2) throw new InputError('BadArguments', `compare needs at least two runs, got ${reports.length}`);
  const row = (label: string, values: Value[], fmt: (v: Value, r: RunReport) => string, delta?: (d: number) => string): ComparisonRow => {
    const base = values[0];
    return {
      label,
      cells: values.map((v, i) => fmt(v, reports[i]!)),
      deltas: values.map((v, i) => (i > 0 && delta && typeof base === 'number' && typeof v === 'number' ? delta(v - base) : '')),
      values,
    };
  };
  const rows = MEASURES.map((m) => row(m.label, reports.map(m.get), m.fmt, m.delta));
  // Thresholds: one row per key any run uses (raw@0.3, synthetic@0.5...).
  const keys = [...new Set(reports.flatMap((r) => Object.keys(r.thresholds.values)))].sort();
  if (keys.length === 0) rows.push(row('thresholds', reports.map(() => null), () => 'none'));
  for (const k of keys) {
    rows.push(row(`${thresholdLabel(k)} (${k})`, reports.map((r) => r.thresholds.values[k] ?? null), (v) => (v === null ? '—' : fmtThreshold(v)), scoreDelta));
  }
  return { runs: reports.map((r) => ({ name: r.run.name, uri: r.run.uri, preset: r.run.preset, fraction: r.run.fraction })), rows };
}

/** A, B, ..., Z, AA, AB...: the runs' letters in the table and its legend. */
const letter = (i: number): string => (i < 26 ? String.fromCharCode(65 + i) : letter(Math.floor(i / 26) - 1) + letter(i % 26));

/** Plain-text table: measure | one column per run | each later run − the first, columns padded (numbers right-aligned). */
export function renderComparison(c: Comparison): string {
  const names = c.runs.map((r) => r.name);
  const clash = new Set(names).size < names.length; // same names: label the columns A: name, B: name...
  const head = ['', ...names.map((n, i) => (clash ? `${letter(i)}: ${n}` : n)), ...names.slice(1).map((_, i) => `${letter(i + 1)} − A`)];
  const body = c.rows.map((r) => [r.label, ...r.cells, ...r.deltas.slice(1)]);
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
    ...c.runs.map((r, i) => `${letter(i)} = ${r.uri}`),
    ...(c.rows.some((r) => r.cells.some((cell) => cell.startsWith('≈')))
      ? [`≈ = HyperLogLog estimate (relative standard error ${(hllStandardError() * 100).toFixed(2)} %)`]
      : []),
  ].join('\n') + '\n';
}
