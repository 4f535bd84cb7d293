/**
 * Error kinds shared by the whole library. The Temporal adapters map `InputError` to non-retryable
 * ApplicationFailures (bad input never heals on retry) and let everything else retry with backoff.
 */

/** Bad input that no retry can fix: a missing folder, an invalid config, a malformed model or shard. */
export class InputError extends Error {
  constructor(
    /** Stable machine-readable type, e.g. `InvalidConfig`, `MissingInput`, `BadModel`, `CorruptShard`. */
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = 'InputError';
  }
}

/** One bad sample (corrupt image, decompression bomb...). It is skipped and its reason recorded. */
export class SampleError extends Error {
  constructor(
    /** Short reason code written to the decision parquet, e.g. `decode_error`, `too_many_pixels`, `empty_image`. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'SampleError';
  }
}
