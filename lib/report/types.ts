/** The shape of `report.json` (RunReport) — everything report.html and `recaption compare` show. */
import type { DistinctCount } from './hll';
import type { ShardFailure } from '../run/failures';
import type { DecisionRow } from '../run/tables';

export const REPORT_KIND = 'recaption-report';
export const REPORT_VERSION = 2;

export interface ScoreStats {
  /** Samples with this score. */
  n: number;
  mean: number | null;
  /** Read off the 0.001-wide fine histogram: within ±0.0005 of the exact median. */
  median: number | null;
  min: number | null;
  max: number | null;
  /** Mean CLIPScore (Hessel et al. 2021): 2.5 · max(cos, 0). */
  meanClipScore: number | null;
}

export interface LengthStats {
  /** Captions counted. */
  n: number;
  mean: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
  /** Captions with no word at all. */
  empty: number;
}

export interface DiversityStats {
  captions: number;
  /** Word and trigram occurrences (not distinct). */
  words: number;
  trigrams: number;
  uniqueWords: DistinctCount;
  uniqueTrigrams: DistinctCount;
}

/** Histogram bins shared by every series: bin i covers [lo + i·width, lo + (i+1)·width). */
export interface ScoreHistogram {
  lo: number;
  width: number;
  bins: number;
  /** raw / synthetic: every scored sample; chosenRaw / chosenSynthetic: kept samples by caption source. */
  series: { raw: number[]; synthetic: number[]; chosen: number[]; chosenRaw: number[]; chosenSynthetic: number[] };
}

/** Caption length histogram: counts[i] = captions of i words; the last bin counts `overflowFrom` words or more. */
export interface LengthHistogram {
  overflowFrom: number;
  series: { raw: number[]; synthetic: number[]; chosen: number[] };
}

export type { ShardFailure };

/** A sample shown as an example in the report: its decision's text columns, and its shard. */
export type ExampleRow = Pick<DecisionRow, 'key' | 'caption' | 'raw_caption' | 'synthetic_caption' | 's_raw' | 's_syn' | 'reason'> & { shard: string };

export interface RunReport {
  kind: typeof REPORT_KIND;
  version: typeof REPORT_VERSION;
  generatedAt: string;
  run: {
    name: string;
    uri: string;
    preset: string | null;
    /** strategy.fraction (mix-threshold), when set. */
    fraction: number | null;
    presetDescription: string | null;
    configHash: string | null;
    createdAt: string | null;
    finishedAt: string | null;
  };
  shards: {
    /** Shards in the run's plan/manifest; null when neither file exists. */
    planned: number | null;
    /** Decision files read. */
    read: number;
    /** Planned shards without a decision file (failed or unfinished), first 100. */
    missing: string[];
    missingCount: number;
    /** Whole-shard failures recorded by the pipeline (manifest / failures/), first 100. */
    failed: ShardFailure[];
    failedCount: number;
  };
  counts: {
    samples: number;
    kept: number;
    keptBySource: { raw: number; synthetic: number };
    /** Scored samples the preset's rule or a filter did not keep, by reason (below_thresholds, basic_filter:few_words...). */
    dropped: number;
    droppedByReason: Record<string, number>;
    /** Samples that failed before selection (decode_error, empty_image, too_many_pixels, not_scored...). */
    failed: number;
    failedByReason: Record<string, number>;
  };
  thresholds: {
    /** As in thresholds.json: key `source@fraction`, value τ or 'inf' / '-inf'. */
    values: Record<string, number | string>;
    /** Samples the thresholds were computed over. */
    poolSize: number | null;
    /** Where s_raw came from (computed by our CLIP model, or a precomputed column). */
    rawScore: string | null;
  };
  scores: {
    /** raw / synthetic over every scored sample; chosen = the kept caption's score (s_raw or s_syn). */
    raw: ScoreStats;
    synthetic: ScoreStats;
    chosen: ScoreStats;
    histogram: ScoreHistogram | null;
    medianResolution: number;
    /** Why the histograms are empty, when they are. */
    note: string | null;
  };
  captions: {
    /** Which captions each pool holds. */
    pools: { raw: string; synthetic: string; chosen: string };
    lengths: { raw: LengthStats; synthetic: LengthStats; chosen: LengthStats; histogram: LengthHistogram | null };
    diversity: {
      tokenization: string;
      /** Distinct counts are exact up to this many distinct items per pool, HyperLogLog estimates beyond. */
      exactLimit: number;
      hll: { precision: number; registers: number; standardError: number };
      raw: DiversityStats;
      synthetic: DiversityStats;
      chosen: DiversityStats;
    };
  };
  /** A few samples per outcome (deterministic reservoir), for a look at the text. */
  examples: { keptRaw: ExampleRow[]; keptSynthetic: ExampleRow[]; dropped: ExampleRow[]; failed: ExampleRow[] };
  /** Sentences about anything unusual: empty pools, failed shards, nothing kept. */
  notes: string[];
}
