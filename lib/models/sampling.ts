/**
 * Next-token choice for one row, in the order HF `generate` applies its processors and warpers:
 * repetition penalty -> min-length EOS mask -> temperature -> top-K -> softmax -> draw from the row's own RNG.
 * Pure functions of (logits, history, row RNG), so a row's tokens never depend on its batch.
 *
 * The same choice runs inside ONNX Runtime (generation-graph/sampler-graph.ts), and on CPU fp32 both give the same
 * tokens. For that, this sampler follows the graph's precision and order (changed once, with the graph):
 *  - scores are float64 from the float32 logits (NaN -> -inf); penalty, EOS mask and temperature in that order;
 *  - top-K keeps exactly min(K, V) candidates, best first, ties by lower id (ONNX TopK); K = 0 keeps all V, and
 *    -inf candidates stay in the list with weight 0 (HF keeps every tie at the K-th score: a boundary tie now
 *    keeps only the lower ids);
 *  - every step consumes exactly one uniform u from the row's RNG, greedy steps included, so step t always
 *    uses the row's t-th draw (the graph takes them as a [rows, maxLength] input);
 *  - inverse CDF: weights exp(s_i - best) in candidate order, their running sum c_i accumulated in float64 in
 *    that order (ONNX CumSum), and the pick is the first i with c_i > u * c_last (before: u * total minus the
 *    weights in turn until below 0).
 * Math.exp (V8) and ONNX Runtime's Exp may differ in the last bit; a token differs only if u * c_last falls
 * within such a rounding of a boundary (~1e-16 relative per draw).
 */
import { InputError } from '../errors';
import type { SeededRng } from './rng';
import type { CaptionOptions } from './types';

/**
 * Which sampler made a caption: part of the captions' annotation key (lib/run/annotations.ts), so captions made
 * by an earlier sampler are never reused as this one's. Bump when the same (logits, seed, options) could give other
 * tokens. 2: exactly-K top-K, one uniform per step, running-sum inverse CDF (the graph's order).
 */
export const SAMPLER_VERSION = 2;

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
 * Candidate ids kept by top-K: exactly min(k, n) of them (k = 0: all n), best first, ties by lower id — what
 * ONNX TopK returns. -inf scores are kept at the end of the list (their weight is 0).
 */
export function topKCandidates(scores: Float64Array, k: number): number[] {
  const n = scores.length;
  const want = k > 0 && k < n ? k : n;
  // "a ranks before b": higher score, or the same score and a lower id.
  const before = (a: number, b: number): boolean => scores[a]! > scores[b]! || (scores[a] === scores[b] && a < b);
  let kept: number[];
  if (want === n) {
    kept = Array.from({ length: n }, (_, i) => i);
  } else {
    // Heap of the `want` best ids, worst at the root: O(V log K), with no V-sized sort per step.
    const heap = new Int32Array(want);
    let size = 0;
    const worse = (a: number, b: number): boolean => before(b, a);
    const up = (j: number): void => {
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (!worse(heap[j]!, heap[parent]!)) break;
        [heap[parent], heap[j]] = [heap[j]!, heap[parent]!];
        j = parent;
      }
    };
    const down = (j: number): void => {
      for (;;) {
        const l = 2 * j + 1;
        const r = l + 1;
        let m = j;
        if (l < size && worse(heap[l]!, heap[m]!)) m = l;
        if (r < size && worse(heap[r]!, heap[m]!)) m = r;
        if (m === j) break;
        [heap[m], heap[j]] = [heap[j]!, heap[m]!];
        j = m;
      }
    };
    for (let i = 0; i < n; i++) {
      if (size < want) {
        heap[size] = i;
        up(size++);
      } else if (before(i, heap[0]!)) {
        heap[0] = i;
        down(0);
      }
    }
    kept = Array.from(heap);
  }
  kept.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  return kept;
}

/**
 * Picks the next token for one row, consuming exactly one uniform from its RNG. temperature 0 (or topK 1) is
 * greedy: the best-scoring id, lowest id on ties.
 */
export function nextToken(logits: Float32Array, row: RowContext, o: CaptionOptions): number {
  const u = row.rng.nextDouble();
  const scores = processLogits(logits, row, o);
  const candidates = topKCandidates(scores, o.temperature === 0 ? 1 : o.topK);
  const best = scores[candidates[0]!]!;
  if (candidates.length === 0 || best === -Infinity) throw new Error('every token has a -inf/NaN logit: nothing can be sampled');
  // Running sum of exp(s - best) in candidate order (float64), then the first sum above u * total.
  const cumulative = new Float64Array(candidates.length);
  let c = 0;
  for (let i = 0; i < candidates.length; i++) cumulative[i] = c += Math.exp(scores[candidates[i]!]! - best);
  const threshold = u * cumulative[candidates.length - 1]!;
  for (let i = 0; i < candidates.length; i++) if (cumulative[i]! > threshold) return candidates[i]!;
  return candidates[0]!; // only when the sums are NaN (a +inf score): the graph's ArgMax picks the first too
}
