/**
 * Why a sample was not kept: the codes of the decision parquet's `reason` column, and the one rule that splits
 * them into SELECTION (the preset's rule or a filter said no: the sample is dropped) and FAILURE (the sample
 * could not be processed: a bad image, no caption, no score). The select stage, finalize and the report all
 * classify with `isSelectionReason`.
 */
/** Selection reasons, produced by lib/strategies/decide.ts and the optional filters. */
export const SELECTION_REASONS = {
  /** A `top` rule: the source's score is below its pool-wide threshold. */
  below: (source: string) => `below_${source}_threshold`,
  /** A mix or custom rule: no allowed caption clears its gate. */
  belowThresholds: 'below_thresholds',
  /** The rule needs a score the sample does not have (e.g. no precomputed raw score for its uid). */
  noScore: (source: string) => `no_${source}_score`,
  /** The rule would keep a caption that is empty or only white space: not a caption to train on. */
  emptyCaption: (source: string) => `empty_${source}_caption`,
  /** A kept sample that an optional filter rejects: `<filter>_filter:<rule>`, e.g. `basic_filter:few_words`. */
  filter: (filter: string, rule: string) => `${filter}_filter:${rule}`,
} as const;

/** Failure reasons the pipeline itself assigns (image decoding adds decode_error, empty_image, too_many_pixels). */
export const FAILURE_REASONS = {
  /** The `.json` member is not a JSON object. */
  badMetadata: 'bad_metadata',
  /** The `.txt` member is not UTF-8 text. */
  badText: 'bad_text',
  /** The key cannot be written back as it is (absolute, `..`, a dot in the file name). */
  unsafeKey: 'unsafe_key',
  /** An earlier sample of the tar has the same key: the later one is not used (its data would mix with the first's). */
  duplicateKey: 'duplicate_key',
  /** The json has no uid, or not 32 hex digits (input.requireUid): the sample cannot be named in subset.npy. */
  missingUid: 'missing_uid',
  badUid: 'bad_uid',
  /** An earlier sample of the tar has the same uid. */
  duplicateUid: 'duplicate_uid',
  /** The tar has no image member for the key. */
  missingImage: 'missing_image',
  /** No caption row for the sample (the caption stage did not see it). */
  notCaptioned: 'not_captioned',
  /** No score row, or no score, for a sample that was captioned. */
  notScored: 'not_scored',
} as const;

/** (`no_scores` is read for decision files written before the unfiltered mix stopped reading synthetic scores.) */
export function isSelectionReason(reason: string): boolean {
  return reason.startsWith('below_') || /^(no_(raw_score|synthetic_score|scores)|empty_(raw|synthetic)_caption)$/.test(reason) || /^[a-z0-9_]+_filter:/.test(reason);
}
