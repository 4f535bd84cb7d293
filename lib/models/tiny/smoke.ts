/**
 * Smoke runs of freshly generated tiny models in onnxruntime-node, before their folder is committed: each graph
 * loads, runs on simple inputs and returns every output it declares.
 */
import * as ort from 'onnxruntime-node';

/** Loads a model, runs it once and checks every declared output came back. */
export async function runOnce(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = (await session.run(feeds)) as Record<string, ort.Tensor>;
    for (const name of session.outputNames) {
      if (!out[name]) throw new Error(`${file}: output ${name} missing after a smoke run`);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** A batch of flat grey images: pixel_values [batch, 3, size, size]. */
export function greyPixels(batch: number, size: number): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(batch * 3 * size * size).fill(0.1), [batch, 3, size, size]);
}

/** Adds an empty past_key_values.{i}[.side].key/value [rows, heads, 0, headDim] per layer and side: a first step. */
export function addEmptyPast(feeds: Record<string, ort.Tensor>, cache: { layers: number; heads: number; headDim: number }, rows: number, sides: readonly string[] = ['']): void {
  for (let i = 0; i < cache.layers; i++) {
    for (const side of sides) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${side ? `${side}.` : ''}${kv}`] = new ort.Tensor('float32', new Float32Array(0), [rows, cache.heads, 0, cache.headDim]);
    }
  }
}
