/**
 * Batches of prepared (decoded, model-ready) samples with one batch of look-ahead: while the models run on batch i,
 * sharp (on libuv's thread pool) decodes and preprocesses batch i+1, so the accelerator does not wait on image
 * resizing. At most two batches are held, so memory stays bounded whatever the shard size.
 */
import { SampleError } from '../errors';
import type { Img2DatasetSample } from '../formats/img2dataset';
import { FAILURE_REASONS } from '../reasons';
import type { SampleProblem } from './sample-checks';

/** A sample and its position in the tar (0-based): annotations are one row per position. */
export interface PositionedSample {
  sample: Img2DatasetSample;
  position: number;
  /** Why the sample cannot be used whatever its image (lib/pipeline/sample-checks.ts), or null. */
  problem: SampleProblem | null;
}

export interface PreparedSample<T> extends PositionedSample {
  /** What `prepare` made of the image, or null when it cannot be used. */
  value: T | null;
  /** Why the sample cannot be used (reason code), or null. */
  error: string | null;
  errorMessage: string | null;
}

async function prepareOne<T>(s: PositionedSample, prepare: (image: Buffer) => Promise<T>): Promise<PreparedSample<T>> {
  const { sample } = s;
  if (s.problem) return { ...s, value: null, error: s.problem.reason, errorMessage: s.problem.message };
  if (!sample.image) return { ...s, value: null, error: FAILURE_REASONS.missingImage, errorMessage: `sample ${sample.key} has no image file` };
  try {
    return { ...s, value: await prepare(sample.image), error: null, errorMessage: null };
  } catch (e) {
    if (e instanceof SampleError) return { ...s, value: null, error: e.reason, errorMessage: `${sample.key}: ${e.message}` };
    throw e;
  }
}

export async function* preparedBatches<T>(
  samples: AsyncIterable<PositionedSample>,
  batchSize: number,
  prepare: (image: Buffer) => Promise<T>,
): AsyncGenerator<Array<PreparedSample<T>>> {
  let pending: Promise<Array<PreparedSample<T>>> | null = null;
  let batch: PositionedSample[] = [];
  const start = (b: PositionedSample[]) => {
    const p = Promise.all(b.map((s) => prepareOne(s, prepare)));
    p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection in between
    return p;
  };
  for await (const s of samples) {
    batch.push(s);
    if (batch.length < batchSize) continue;
    const next = start(batch);
    batch = [];
    if (pending) yield await pending;
    pending = next;
  }
  const last = batch.length ? start(batch) : null;
  if (pending) yield await pending;
  if (last) yield await last;
}
