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

export const SCORE_COLUMNS: ParquetColumnSpec[] = [
  { name: 'key', type: 'STRING', nullable: false },
  { name: 'uid', type: 'STRING' },
  { name: 's_raw', type: 'DOUBLE' },
  { name: 's_syn', type: 'DOUBLE' },
  { name: 'error', type: 'STRING' },
  { name: 'cluster', type: 'INT32' },
];

export interface ScoreRow {
  key: string;
  uid: string | null;
  s_raw: number | null;
  s_syn: number | null;
  error: string | null;
  /** Nearest image-cluster centroid (filters.imageCluster), else null. */
  cluster: number | null;
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
