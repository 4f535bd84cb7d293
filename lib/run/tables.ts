/**
 * The parquet tables of annotations and runs, each declared once: the declaration is the file schema and the row type, and rows
 * read back are checked against it (lib/formats/parquet `parquetTable`).
 */
import { parquetTable, type TableRow } from '../formats/parquet';
import { CAPTION_SOURCES } from '../strategies/presets';

/** Annotations (lib/run/annotations.ts): one row per sample of the tar, in tar order, in every group. */

/** `samples`: what the tar says of each sample, and whether its image decodes. */
export const SAMPLES_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  uid: { type: 'STRING' },
  raw_caption: { type: 'STRING', nullable: false },
  /** From the sample's img2dataset json (for the basic filter's size rules). */
  original_width: { type: 'INT32' },
  original_height: { type: 'INT32' },
  /** Why the sample cannot be used (a reason code, see lib/reasons.ts), and the details; null when it can. */
  error: { type: 'STRING' },
  error_message: { type: 'STRING' },
});
export type SampleRow = TableRow<typeof SAMPLES_TABLE>;

/** `captions`: the synthetic caption (candidate 0); null where the sample failed. */
export const CAPTIONS_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  synthetic_caption: { type: 'STRING' },
});
export type CaptionRow = TableRow<typeof CAPTIONS_TABLE>;

/** Every caption candidate, one row per (sample, candidate); only with caption.candidates > 1. */
export const CANDIDATE_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  uid: { type: 'STRING' },
  candidate: { type: 'INT32', nullable: false },
  caption: { type: 'STRING', nullable: false },
});
export type CandidateRow = TableRow<typeof CANDIDATE_TABLE>;

/** `rawScores`: CLIP cosine of image and raw caption. */
export const RAW_SCORES_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  s_raw: { type: 'DOUBLE' },
});
export type RawScoreRow = TableRow<typeof RAW_SCORES_TABLE>;

/** `syntheticScores`: CLIP cosine of image and synthetic caption (with several candidates: the kept one). */
export const SYNTHETIC_SCORES_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  s_syn: { type: 'DOUBLE' },
  /** With several caption candidates: the kept candidate's index, its text and candidate 0's score (null otherwise). */
  synthetic_choice: { type: 'INT32' },
  synthetic_caption: { type: 'STRING' },
  s_syn_first: { type: 'DOUBLE' },
});
export type SyntheticScoreRow = TableRow<typeof SYNTHETIC_SCORES_TABLE>;

/** `clusters`: the image's nearest image-cluster centroid (filters.imageCluster). */
export const CLUSTERS_TABLE = parquetTable({
  key: { type: 'STRING', nullable: false },
  cluster: { type: 'INT32' },
});
export type ClusterRow = TableRow<typeof CLUSTERS_TABLE>;

/** Each annotation group's table (lib/run/annotations.ts ANNOTATION_GROUPS). */
export const ANNOTATION_TABLES = {
  samples: SAMPLES_TABLE,
  captions: CAPTIONS_TABLE,
  rawScores: RAW_SCORES_TABLE,
  syntheticScores: SYNTHETIC_SCORES_TABLE,
  clusters: CLUSTERS_TABLE,
} as const;

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
