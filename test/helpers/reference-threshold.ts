/**
 * The test oracle for pool-wide thresholds: the naive in-memory form of DataComp's `apply_filter.get_threshold`,
 * which the product's bounded-memory two-pass method (lib/strategies/pool-threshold.ts) must equal exactly:
 * sort the WHOLE pool's scores descending, n = floor(len · f), tau = sorted[n]; a sample is kept if score >= tau.
 * Ties at tau are all kept, so slightly more than n samples may pass — as in DataComp.
 */

/** tau for the top `fraction` of `scores` (NaNs — failed samples — are not part of the pool). */
export function topFractionThreshold(scores: ArrayLike<number>, fraction: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  const pool = Float64Array.from(Array.prototype.filter.call(scores, (s: number) => !Number.isNaN(s)) as number[]);
  if (pool.length === 0) return Number.POSITIVE_INFINITY; // empty pool: nothing can pass
  pool.sort(); // ascending, numeric for typed arrays
  const n = Math.floor(pool.length * fraction);
  // DataComp indexes the descending array at n; f = 1 would index past the end: keep everything.
  if (n >= pool.length) return Number.NEGATIVE_INFINITY;
  return pool[pool.length - 1 - n];
}
