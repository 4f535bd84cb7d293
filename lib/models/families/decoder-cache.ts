/** What the merged-decoder families share: the cache's shape, its tensor names, and the step input check. */
import { FLOAT_TYPES, type TensorSpec } from '../model-folder';

export interface CacheShape {
  layers: number;
  heads: number;
  headDim: number;
}

/**
 * `past_key_values.{i}[.side].key/value` inputs and the matching `present.*` outputs, layer by layer. `sides` is
 * `['']` for one cache per layer (GPT-2, OPT) and e.g. `['decoder', 'encoder']` for Florence-2's two caches.
 */
export function cacheSpecs(layers: number, sides: readonly string[] = ['']): { past: TensorSpec[]; present: TensorSpec[] } {
  const past: TensorSpec[] = [];
  const present: TensorSpec[] = [];
  for (let i = 0; i < layers; i++) {
    for (const side of sides) {
      for (const part of ['key', 'value']) {
        const suffix = side ? `${i}.${side}.${part}` : `${i}.${part}`;
        past.push({ name: `past_key_values.${suffix}`, types: FLOAT_TYPES, rank: 4 });
        present.push({ name: `present.${suffix}`, types: FLOAT_TYPES, rank: 4 });
      }
    }
  }
  return { past, present };
}

/** The common length of a step's rows; every row feeds the same, non-zero number of tokens. */
export function stepLength(tokens: readonly (readonly number[])[], rows: number): number {
  const seq = tokens[0]?.length ?? 0;
  if (tokens.length !== rows || seq === 0 || tokens.some((t) => t.length !== seq)) {
    throw new Error(`decoder step: expected ${rows} rows of equal, non-zero length`);
  }
  return seq;
}
