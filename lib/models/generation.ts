/**
 * Caption generation. A model whose family built its generation graph (generation-graph/) decodes the whole
 * batch in one ONNX Runtime run; otherwise, or when forced, the JS loop below runs.
 *
 * The JS loop: B rows decode together, one session.run per step. Each row has its own RNG seeded from its seed
 * string (one draw per step) and its own stop condition; finished rows are dropped from the batch (and from the
 * cache) instead of being fed padding, which gives the same tokens for less compute. A row's tokens therefore
 * depend only on its image, its seed and the options, never on its batch — and equal the graph's on CPU fp32.
 */
import type { CaptionModel } from './caption-model';
import { SeededRng } from './rng';
import { nextToken, validateCaptionOptions } from './sampling';
import type { CaptionOptions, PixelTensor } from './types';

/** Generated token ids per row, EOS excluded; between minLength and maxLength tokens each. */
export async function generateTokens(model: CaptionModel, pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): Promise<number[][]> {
  if (!checkedBatch(pixels, seeds, o)) return [];
  return model.generateInGraph ? model.generateInGraph(pixels, seeds, o) : jsLoop(model, pixels, seeds, o);
}

/**
 * The JS loop, whatever route the model takes. On a graph-route model its first run opens the sessions only the
 * JS loop uses (the decoder's weights a second time): comparisons of the two routes load a second model with
 * `generation: 'js'` and call generateTokens on each instead.
 */
export async function generateTokensJs(model: CaptionModel, pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): Promise<number[][]> {
  if (!checkedBatch(pixels, seeds, o)) return [];
  return jsLoop(model, pixels, seeds, o);
}

/** Validates the options and the batch; false for an empty batch. */
function checkedBatch(pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): boolean {
  validateCaptionOptions(o);
  if (pixels.length !== seeds.length) throw new Error(`generateTokens: ${pixels.length} images but ${seeds.length} seeds`);
  return pixels.length > 0;
}

async function jsLoop(model: CaptionModel, pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): Promise<number[][]> {
  const state = await model.begin(pixels);
  const rngs = seeds.map((s) => new SeededRng(s));
  const generated: number[][] = seeds.map(() => []);
  const histories: number[][] = seeds.map(() => [...model.promptIds]);

  let active = pixels.map((_, i) => i); // original row of each current slot
  let feed: number[][] = active.map(() => [...model.promptIds]);
  while (active.length > 0) {
    const { logits, vocab } = await state.step(feed);
    const keepSlots: number[] = [];
    const nextFeed: number[][] = [];
    active.forEach((row, slot) => {
      const token = nextToken(logits.subarray(slot * vocab, (slot + 1) * vocab), { history: histories[row]!, generated: generated[row]!.length, eosIds: model.eosIds, rng: rngs[row]! }, o);
      if (model.eosIds.includes(token)) return; // row finished
      generated[row]!.push(token);
      histories[row]!.push(token);
      if (generated[row]!.length >= o.maxLength) return; // length cap reached
      keepSlots.push(slot);
      nextFeed.push([token]);
    });
    if (keepSlots.length === 0) break;
    if (keepSlots.length < active.length) state.keepRows(keepSlots);
    active = keepSlots.map((slot) => active[slot]!);
    feed = nextFeed;
  }
  return generated;
}
