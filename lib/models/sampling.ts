/**
 * Next-token choice for one row, in the order HF `generate` applies its processors and warpers:
 * repetition penalty -> min-length EOS mask -> temperature -> top-K -> softmax -> draw from the row's own RNG.
 * Pure functions of (logits, history, row RNG), so a row's tokens never depend on its batch.
 */
import { InputError } from '../errors';
import type { SeededRng } from './rng';
import type { CaptionOptions } from './types';

export function validateCaptionOptions(o: CaptionOptions): void {
  const problems: string[] = [];
  if (!Number.isInteger(o.topK) || o.topK < 0) problems.push(`topK must be an integer >= 0 (0 = no top-K filter), got ${o.topK}`);
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) problems.push(`temperature must be >= 0 (0 = greedy), got ${o.temperature}`);
  if (!Number.isInteger(o.minLength) || o.minLength < 0) problems.push(`minLength must be an integer >= 0, got ${o.minLength}`);
  if (!Number.isInteger(o.maxLength) || o.maxLength < 1) problems.push(`maxLength must be an integer >= 1, got ${o.maxLength}`);
  if (o.minLength > o.maxLength) problems.push(`minLength (${o.minLength}) exceeds maxLength (${o.maxLength})`);
  const p = o.repetitionPenalty ?? 1;
  if (!(p > 0) || !Number.isFinite(p)) problems.push(`repetitionPenalty must be > 0, got ${p}`);
  if (problems.length > 0) throw new InputError('InvalidConfig', `caption options: ${problems.join('; ')}`);
}

export interface RowContext {
  /** every token fed to the decoder so far for this row (start/prompt tokens included, as HF penalises them) */
  history: readonly number[];
  /** number of tokens generated so far (excluding the start/prompt tokens) */
  generated: number;
  eosIds: readonly number[];
  rng: SeededRng;
}

/** Applies the logits processors (penalty, min-length) and temperature into a fresh float64 array. */
export function processLogits(logits: Float32Array, row: RowContext, o: CaptionOptions): Float64Array {
  const scores = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    scores[i] = Number.isNaN(v) ? -Infinity : v; // a NaN (fp16 overflow) must never be sampled
  }
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    // CTRL penalty (Keskar et al.): divide positive logits, multiply negative ones; once per distinct token.
    for (const id of new Set(row.history)) {
      if (id < 0 || id >= scores.length) continue;
      const s = scores[id]!;
      scores[id] = s > 0 ? s / penalty : s * penalty;
    }
  }
  if (row.generated < o.minLength) for (const eos of row.eosIds) if (eos >= 0 && eos < scores.length) scores[eos] = -Infinity;
  if (o.temperature > 0 && o.temperature !== 1) for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! / o.temperature;
  return scores;
}

/**
 * Candidate ids kept by top-K, best first (ties by id). Like HF's TopKLogitsWarper, every token scoring at least
 * the K-th best score is kept, so ties at the boundary may keep a few more than K.
 */
export function topKCandidates(scores: Float64Array, k: number): number[] {
  const n = scores.length;
  let threshold = -Infinity;
  if (k > 0 && k < n) {
    // Min-heap of the K best scores seen: O(V log K), with no V-sized sort per step.
    const heap = new Float64Array(k);
    let size = 0;
    for (let i = 0; i < n; i++) {
      const s = scores[i]!;
      if (size < k) {
        let j = size++;
        heap[j] = s;
        while (j > 0) {
          const parent = (j - 1) >> 1;
          if (heap[parent]! <= heap[j]!) break;
          [heap[parent], heap[j]] = [heap[j]!, heap[parent]!];
          j = parent;
        }
      } else if (s > heap[0]!) {
        heap[0] = s;
        let j = 0;
        for (;;) {
          const l = 2 * j + 1;
          const r = l + 1;
          let m = j;
          if (l < k && heap[l]! < heap[m]!) m = l;
          if (r < k && heap[r]! < heap[m]!) m = r;
          if (m === j) break;
          [heap[m], heap[j]] = [heap[j]!, heap[m]!];
          j = m;
        }
      }
    }
    threshold = heap[0]!;
  }
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (scores[i]! >= threshold && scores[i]! > -Infinity) kept.push(i);
  kept.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return kept;
}

/** Picks the next token for one row. temperature 0 (or topK 1) is greedy. */
export function nextToken(logits: Float32Array, row: RowContext, o: CaptionOptions): number {
  const scores = processLogits(logits, row, o);
  const candidates = topKCandidates(scores, o.temperature === 0 ? 1 : o.topK);
  if (candidates.length === 0) throw new Error('every token has a -inf/NaN logit: nothing can be sampled');
  if (candidates.length === 1 || o.temperature === 0) return candidates[0]!;
  // Softmax over the candidates (max-subtracted, float64), then inverse-CDF with one uniform draw.
  const best = scores[candidates[0]!]!;
  const weights = candidates.map((id) => Math.exp(scores[id]! - best));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = row.rng.nextDouble() * total;
  for (let i = 0; i < candidates.length; i++) {
    u -= weights[i]!;
    if (u < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}
