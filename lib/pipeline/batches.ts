/**
 * Batches of decoded, model-ready samples with one batch of look-ahead: while the model runs on batch i,
 * sharp (on libuv's thread pool) decodes and preprocesses batch i+1, so the accelerator does not wait on
 * image resizing. At most two batches are held, so memory stays bounded whatever the shard size.
 */
import { SampleError } from '../errors';
import type { PixelTensor } from '../models/types';
import type { InputSample } from './samples';

export interface PreparedSample {
  sample: InputSample;
  pixels: PixelTensor | null;
  /** Why the sample cannot be used (reason code), or null. */
  error: string | null;
  errorMessage: string | null;
}

async function prepareOne(sample: InputSample, preprocess: (img: Buffer) => Promise<PixelTensor>): Promise<PreparedSample> {
  if (!sample.image) return { sample, pixels: null, error: 'missing_image', errorMessage: `sample ${sample.key} has no image file` };
  try {
    return { sample, pixels: await preprocess(sample.image), error: null, errorMessage: null };
  } catch (e) {
    if (e instanceof SampleError) return { sample, pixels: null, error: e.reason, errorMessage: `${sample.key}: ${e.message}` };
    throw e;
  }
}

export async function* preparedBatches(
  samples: AsyncIterable<InputSample>,
  batchSize: number,
  preprocess: (img: Buffer) => Promise<PixelTensor>,
): AsyncGenerator<PreparedSample[]> {
  let pending: Promise<PreparedSample[]> | null = null;
  let batch: InputSample[] = [];
  const start = (b: InputSample[]) => {
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
