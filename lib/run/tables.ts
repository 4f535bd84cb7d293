/**
 * The run's parquet tables, each declared once: the declaration is the file schema and the row type, and rows
 * read back are checked against it (lib/formats/parquet `parquetTable`).
 */
import { parquetTable, type TableRow } from '../formats/parquet';
import { CAPTION_SOURCES } from '../strategies/presets';

/** work/caption/<shard>.parquet: one row per sample of the input tar. */
export const CAPTION_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  uid: { type: 'STRING' },
  raw_caption: { type: 'STRING', nullable: false },
  synthetic_caption: { type: 'STRING' },
  /** Why the sample has no caption (a reason code, see lib/reasons.ts), and the details. */
  error: { type: 'STRING' },
  error_message: { type: 'STRING' },
  /** From the sample's img2dataset json (for the basic filter's size rules). */
  original_width: { type: 'INT32' },
  original_height: { type: 'INT32' },
});
export type CaptionRow = TableRow<typeof CAPTION_TABLE>;

/** work/caption/<shard>.candidates.parquet: every caption candidate, one row per (sample, candidate); only with caption.candidates > 1. */
export const CANDIDATE_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  uid: { type: 'STRING' },
  candidate: { type: 'INT32', nullable: false },
  caption: { type: 'STRING', nullable: false },
});
export type CandidateRow = TableRow<typeof CANDIDATE_TABLE>;

/** work/score/<shard>.parquet: CLIP scores per sample. */
export const SCORE_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  uid: { type: 'STRING' },
  s_raw: { type: 'DOUBLE' },
  s_syn: { type: 'DOUBLE' },
  error: { type: 'STRING' },
  /** Nearest image-cluster centroid (filters.imageCluster), else null. */
  cluster: { type: 'INT32' },
  /** With several caption candidates: the kept candidate's index, its text and candidate 0's score (null otherwise). */
  synthetic_choice: { type: 'INT32' },
  synthetic_caption: { type: 'STRING' },
  s_syn_first: { type: 'DOUBLE' },
});
export type ScoreRow = TableRow<typeof SCORE_TABLE>;

/** decisions/<shard>.parquet: EVERY sample, kept or not, with why. */
export const DECISION_TABLE = parquetTable({
  uid: { type: 'STRING' },
  key: { type: 'STRING', nullable: false },
  kept: { type: 'BOOLEAN', nullable: false },
  source: { type: 'STRING', values: CAPTION_SOURCES },
  caption: { type: 'STRING' },
  raw_caption: { type: 'STRING', nullable: false },
  synthetic_caption: { type: 'STRING' },
  s_raw: { type: 'DOUBLE' },
  s_syn: { type: 'DOUBLE' },
  reason: { type: 'STRING' },
});
export type DecisionRow = TableRow<typeof DECISION_TABLE>;
