/**
 * Batches of decoded, model-ready samples with one batch of look-ahead: while the model runs on batch i,
 * sharp (on libuv's thread pool) decodes and preprocesses batch i+1, so the accelerator does not wait on
 * image resizing. At most two batches are held, so memory stays bounded whatever the shard size.
 */
import { SampleError } from '../errors';
import { FAILURE_REASONS } from '../reasons';
import type { PixelTensor } from '../models/types';
import type { Img2DatasetSample } from '../formats/img2dataset';

export interface PreparedSample {
  sample: Img2DatasetSample;
  pixels: PixelTensor | null;
  /** Why the sample cannot be used (reason code), or null. */
  error: string | null;
  errorMessage: string | null;
}

async function prepareOne(sample: Img2DatasetSample, preprocess: (img: Buffer) => Promise<PixelTensor>): Promise<PreparedSample> {
  if (!sample.image) return { sample, pixels: null, error: FAILURE_REASONS.missingImage, errorMessage: `sample ${sample.key} has no image file` };
  try {
    return { sample, pixels: await preprocess(sample.image), error: null, errorMessage: null };
  } catch (e) {
    if (e instanceof SampleError) return { sample, pixels: null, error: e.reason, errorMessage: `${sample.key}: ${e.message}` };
    throw e;
  }
}

export async function* preparedBatches(
  samples: AsyncIterable<Img2DatasetSample>,
  batchSize: number,
  preprocess: (img: Buffer) => Promise<PixelTensor>,
): AsyncGenerator<PreparedSample[]> {
  let pending: Promise<PreparedSample[]> | null = null;
  let batch: Img2DatasetSample[] = [];
  const start = (b: Img2DatasetSample[]) => {
    const p = Promise.all(b.map((s) => prepareOne(s, preprocess)));
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
