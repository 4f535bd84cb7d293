/**
 * DataComp's threshold (sorted-desc[floor(n·f)]) for pools of any size, EXACTLY, in bounded memory:
 *
 *   pass 1  every shard's scores go into a fixed-bin histogram; histograms merge by adding counts, so they are
 *           per-shard summaries that combine in any order (a few hundred KB whatever the pool size);
 *   locate  walking the merged histogram from the top finds the bin that holds descending rank n, and n's rank
 *           inside that bin;
 *   pass 2  only the scores falling in that bin are collected and sorted.
 *
 * Memory is O(bins + scores in one bin) instead of O(pool): for 1.28B CLIP scores spread over ~0.3 of the
 * cosine range, one of 2^16 bins holds ~100k values. No approximation is involved, so a sketch's error bound
 * is not needed; the result equals a plain sort (tested on random pools with ties).
 */

export const DEFAULT_BINS = 1 << 16;

export class ScoreHistogram {
  readonly counts: Float64Array;
  total = 0;

  constructor(
    readonly bins = DEFAULT_BINS,
    /** Cosine similarities live in [-1, 1]; values outside (rounding) land in the edge bins, still exact. */
    readonly lo = -1,
    readonly hi = 1,
  ) {
    this.counts = new Float64Array(bins);
  }

  bin(v: number): number {
    const b = Math.floor(((v - this.lo) / (this.hi - this.lo)) * this.bins);
    return b < 0 ? 0 : b >= this.bins ? this.bins - 1 : b;
  }

  add(v: number): void {
    if (Number.isNaN(v)) return;
    this.counts[this.bin(v)]++;
    this.total++;
  }

  merge(other: ScoreHistogram): void {
    if (other.bins !== this.bins || other.lo !== this.lo || other.hi !== this.hi) throw new Error('cannot merge histograms with different bins');
    for (let i = 0; i < this.bins; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
  }
}

export type RankLocation =
  | { kind: 'all' } // f = 1: everything passes
  | { kind: 'none' } // empty pool: nothing passes
  | { kind: 'bin'; bin: number; rankInBin: number; n: number };

/** Where descending rank floor(total·f) lies. */
export function locateRank(h: ScoreHistogram, fraction: number): RankLocation {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  if (h.total === 0) return { kind: 'none' };
  const n = Math.floor(h.total * fraction);
  if (n >= h.total) return { kind: 'all' };
  let above = 0;
  for (let b = h.bins - 1; b >= 0; b--) {
    const c = h.counts[b];
    if (n < above + c) return { kind: 'bin', bin: b, rankInBin: n - above, n };
    above += c;
  }
  throw new Error('histogram counts do not add up to its total');
}

/** Pass 2 result: the threshold from the values of the located bin. */
export function thresholdInBin(values: number[], loc: RankLocation): number {
  if (loc.kind === 'all') return Number.NEGATIVE_INFINITY;
  if (loc.kind === 'none') return Number.POSITIVE_INFINITY;
  const desc = Float64Array.from(values).sort().reverse();
  const v = desc[loc.rankInBin];
  if (v === undefined) throw new Error(`pass 2 found ${values.length} values in bin ${loc.bin}, rank ${loc.rankInBin} expected (scores changed between passes?)`);
  return v;
}
