/** Number formatting shared by report.html and the compare table. */
import type { DistinctCount } from './hll';

export const fmtInt = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en-US'));

export const fmtScore = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined ? '—' : v.toFixed(digits));

export const fmtPct = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '—');

/** A distinct count: exact as is, a sketch estimate as "≈N". */
export const fmtDistinct = (d: DistinctCount): string => (d.method === 'exact' ? fmtInt(d.value) : `≈${fmtInt(d.value)}`);

/** A threshold as stored in thresholds.json: a number or 'inf' / '-inf'. */
export const fmtThreshold = (v: number | string): string => (typeof v === 'number' ? v.toFixed(4) : v === 'inf' ? '+∞ (nothing passes)' : '−∞ (everything passes)');

/** `raw@0.3` → `τ_raw(0.3)`. */
export const thresholdLabel = (key: string): string => {
  const m = /^(raw|synthetic)@(.+)$/.exec(key);
  return m ? `τ_${m[1] === 'raw' ? 'raw' : 'syn'}(${m[2]})` : key;
};
