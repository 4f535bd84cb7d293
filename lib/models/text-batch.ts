/**
 * Texts as a text tower's int64 inputs (TokenBatch), made wherever it is cheapest: the CLIP scorer tokenises on its
 * caller's thread, the annotate stage in its preprocessing threads (lib/pipeline/prep-pool.ts), with this one
 * function. No ONNX Runtime here: the threads must not load it.
 */
import type { TextTokenizer } from './tokenizer';
import type { TextRecipe, TokenBatch } from './types';

/** The texts tokenised per `recipe` (truncated to maxLength, padded to the longest row or padTo). */
export function encodeTexts(tokenizer: TextTokenizer, texts: readonly string[], recipe: Pick<TextRecipe, 'maxLength' | 'padTo'>): TokenBatch {
  const enc = tokenizer.encodeBatch(texts, { maxLength: recipe.maxLength, padTo: recipe.padTo });
  const ids = new BigInt64Array(enc.ids.length);
  const mask = new BigInt64Array(enc.attentionMask.length);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = BigInt(enc.ids[i]!);
    mask[i] = BigInt(enc.attentionMask[i]!);
  }
  return { ids, mask, batch: enc.batch, length: enc.length };
}

/**
 * Rows [from, to) of a batch, padded as encodeTexts would pad those texts alone (to their longest row, or padTo), so
 * a split batch gives the same inputs as tokenising each part: views of the batch's buffers when the length is the
 * batch's, else a trimmed copy.
 */
export function tokenRows(tokens: TokenBatch, from: number, to: number, padTo?: number): TokenBatch {
  const { length } = tokens;
  let longest = Math.max(padTo ?? 0, 1);
  for (let r = from; r < to; r++) {
    let n = 0;
    for (let i = r * length; i < (r + 1) * length; i++) n += Number(tokens.mask[i]);
    longest = Math.max(longest, n);
  }
  if (longest === length) return { ids: tokens.ids.subarray(from * length, to * length), mask: tokens.mask.subarray(from * length, to * length), batch: to - from, length };
  const ids = new BigInt64Array((to - from) * longest);
  const mask = new BigInt64Array((to - from) * longest);
  for (let r = from; r < to; r++) {
    ids.set(tokens.ids.subarray(r * length, r * length + longest), (r - from) * longest);
    mask.set(tokens.mask.subarray(r * length, r * length + longest), (r - from) * longest);
  }
  return { ids, mask, batch: to - from, length: longest };
}
