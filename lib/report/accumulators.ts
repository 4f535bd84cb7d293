/**
 * Small fixed-size accumulators the report streams every decision row through: memory does not grow with the
 * pool (a 2,000-bin score histogram, a 129-bin length histogram, a distinct counter per text pool).
 */
import { clipScore } from '../models/similarity';
import { DistinctCounter } from './hll';
import { trigrams, words } from './tokenize';
import type { DiversityStats, LengthStats, ScoreStats } from './types';

/** Fine score grid: 2,000 bins of 0.001 over [-1, 1]. Medians are read off it (to ±0.0005). */
export const SCORE_BINS = 2000;
export const SCORE_LO = -1;
export const SCORE_BIN_WIDTH = 0.001;

function scoreBin(v: number): number {
  const i = Math.floor((v - SCORE_LO) / SCORE_BIN_WIDTH);
  return i < 0 ? 0 : i >= SCORE_BINS ? SCORE_BINS - 1 : i;
}

export class ScoreAccumulator {
  readonly bins = new Float64Array(SCORE_BINS);
  n = 0;
  private sum = 0;
  private sumClip = 0;
  private min = Infinity;
  private max = -Infinity;

  add(v: number | null | undefined): void {
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    this.n++;
    this.sum += v;
    this.sumClip += clipScore(v);
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.bins[scoreBin(v)]!++;
  }

  stats(): ScoreStats {
    if (this.n === 0) return { n: 0, mean: null, median: null, min: null, max: null, meanClipScore: null };
    return {
      n: this.n,
      mean: this.sum / this.n,
      median: this.median(),
      min: this.min,
      max: this.max,
      meanClipScore: this.sumClip / this.n,
    };
  }

  /** Midpoint of the fine bin holding the median (the mean of the two middle bins for an even count). */
  private median(): number {
    const mid = (k: number): number => {
      let cum = 0;
      for (let i = 0; i < SCORE_BINS; i++) {
        cum += this.bins[i]!;
        if (cum > k) return SCORE_LO + (i + 0.5) * SCORE_BIN_WIDTH;
      }
      return SCORE_LO + (SCORE_BINS - 0.5) * SCORE_BIN_WIDTH;
    };
    const n = this.n;
    const m = n % 2 ? mid((n - 1) / 2) : (mid(n / 2 - 1) + mid(n / 2)) / 2;
    // The bin midpoint can fall outside the observed range for a one-bin distribution.
    return Math.min(this.max, Math.max(this.min, m));
  }
}

/** Caption lengths in words: exact counts 0..LENGTH_CAP-1, one overflow bin for LENGTH_CAP words or more. */
export const LENGTH_CAP = 128;

export class LengthAccumulator {
  readonly counts = new Float64Array(LENGTH_CAP + 1);
  n = 0;
  private sum = 0;
  private min = Infinity;
  private max = 0;

  add(len: number): void {
    this.n++;
    this.sum += len;
    if (len < this.min) this.min = len;
    if (len > this.max) this.max = len;
    this.counts[Math.min(len, LENGTH_CAP)]!++;
  }

  get maxSeen(): number {
    return this.n ? this.max : 0;
  }

  stats(): LengthStats {
    if (this.n === 0) return { n: 0, mean: null, median: null, min: null, max: null, empty: 0 };
    const at = (k: number): number => {
      let cum = 0;
      for (let i = 0; i <= LENGTH_CAP; i++) {
        cum += this.counts[i]!;
        if (cum > k) return i;
      }
      return LENGTH_CAP;
    };
    const n = this.n;
    const median = n % 2 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
    return { n, mean: this.sum / n, median, min: this.min, max: this.max, empty: this.counts[0]! };
  }
}

/** One pool of captions: its length distribution and its diversity (unique words and word trigrams). */
export class TextAccumulator {
  readonly lengths = new LengthAccumulator();
  readonly uniqueWords: DistinctCounter;
  readonly uniqueTrigrams: DistinctCounter;
  private wordCount = 0;
  private trigramCount = 0;

  constructor(exactLimit?: number) {
    this.uniqueWords = new DistinctCounter(exactLimit);
    this.uniqueTrigrams = new DistinctCounter(exactLimit);
  }

  add(caption: string): void {
    this.addWords(words(caption));
  }

  /** A caption already split by `words()` (so a caption in two pools is tokenised once). */
  addWords(ws: readonly string[]): void {
    this.lengths.add(ws.length);
    this.wordCount += ws.length;
    for (const w of ws) this.uniqueWords.add(w);
    for (const t of trigrams(ws)) {
      this.trigramCount++;
      this.uniqueTrigrams.add(t);
    }
  }

  diversity(): DiversityStats {
    return {
      captions: this.lengths.n,
      words: this.wordCount,
      trigrams: this.trigramCount,
      uniqueWords: this.uniqueWords.result(),
      uniqueTrigrams: this.uniqueTrigrams.result(),
    };
  }
}
