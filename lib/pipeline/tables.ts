/** Column schemas of the run's parquet files; one place, so writers and readers agree. */
import type { ParquetColumnSpec } from '../formats/parquet';

export const CAPTION_COLUMNS: ParquetColumnSpec[] = [
  { name: 'key', type: 'STRING', nullable: false },
  { name: 'uid', type: 'STRING' },
  { name: 'raw_caption', type: 'STRING', nullable: false },
  { name: 'synthetic_caption', type: 'STRING' },
  { name: 'error', type: 'STRING' },
  { name: 'error_message', type: 'STRING' },
  { name: 'original_width', type: 'INT32' },
  { name: 'original_height', type: 'INT32' },
];

export interface CaptionRow {
  key: string;
  uid: string | null;
  raw_caption: string;
  synthetic_caption: string | null;
  error: string | null;
  error_message: string | null;
  /** From the sample's img2dataset json (for the basic filter's size rules). */
  original_width: number | null;
  original_height: number | null;
}

/** All caption candidates of a shard, one row per (sample, candidate); written only when caption.candidates > 1. */
export const CANDIDATE_COLUMNS: ParquetColumnSpec[] = [
  { name: 'key', type: 'STRING', nullable: false },
  { name: 'uid', type: 'STRING' },
  { name: 'candidate', type: 'INT32', nullable: false },
  { name: 'caption', type: 'STRING', nullable: false },
];

export interface CandidateRow {
  key: string;
  uid: string | null;
  candidate: number;
  caption: string;
}

export const SCORE_COLUMNS: ParquetColumnSpec[] = [
  { name: 'key', type: 'STRING', nullable: false },
  { name: 'uid', type: 'STRING' },
  { name: 's_raw', type: 'DOUBLE' },
  { name: 's_syn', type: 'DOUBLE' },
  { name: 'error', type: 'STRING' },
  { name: 'cluster', type: 'INT32' },
  { name: 'synthetic_choice', type: 'INT32' },
  { name: 'synthetic_caption', type: 'STRING' },
  { name: 's_syn_first', type: 'DOUBLE' },
];

export interface ScoreRow {
  key: string;
  uid: string | null;
  s_raw: number | null;
  s_syn: number | null;
  error: string | null;
  /** Nearest image-cluster centroid (filters.imageCluster), else null. */
  cluster: number | null;
  /** With several caption candidates: the kept candidate's index, its text and candidate 0's score (null otherwise). */
  synthetic_choice?: number | null;
  synthetic_caption?: string | null;
  s_syn_first?: number | null;
}

/** The per-shard decision parquet: EVERY sample, kept or not, with why. */
export const DECISION_COLUMNS: ParquetColumnSpec[] = [
  { name: 'uid', type: 'STRING' },
  { name: 'key', type: 'STRING', nullable: false },
  { name: 'kept', type: 'BOOLEAN', nullable: false },
  { name: 'source', type: 'STRING' },
  { name: 'caption', type: 'STRING' },
  { name: 'raw_caption', type: 'STRING', nullable: false },
  { name: 'synthetic_caption', type: 'STRING' },
  { name: 's_raw', type: 'DOUBLE' },
  { name: 's_syn', type: 'DOUBLE' },
  { name: 'reason', type: 'STRING' },
];

export interface DecisionRow {
  uid: string | null;
  key: string;
  kept: boolean;
  source: 'raw' | 'synthetic' | null;
  caption: string | null;
  raw_caption: string;
  synthetic_caption: string | null;
  s_raw: number | null;
  s_syn: number | null;
  reason: string | null;
}
