/**
 * The next-token choice of sampling.ts as ONNX nodes in a Loop body, in the same order and float64 precision:
 * last-position logits -> float64 (NaN -> -inf) -> CTRL repetition penalty on the row's presence mask -> EOS
 * masked before minLength -> / temperature -> TopK (exactly K, ties by lower id) -> exp(s - best) -> CumSum ->
 * the first candidate whose running sum exceeds u * total, u being the row's uniform for this step. Then the
 * row bookkeeping of generation.ts: EOS ends a row (not emitted), finished rows keep running on a pad feed with
 * their outputs masked, and the loop goes on while any row is unfinished.
 */
import { attr, ELEM, type GraphBuilder } from '../../onnx/graph-builder';

const DOUBLE = ELEM.float64;
const FLOAT = ELEM.float32;
const INT64 = ELEM.int64;

/** Values of the Loop body (or its outer scope) the sampler reads. */
export interface SamplerIn {
  /** decoder logits [B, S, V] (float32 or float16) */
  logits: string;
  /** iteration number = tokens generated so far by unfinished rows, int64 scalar */
  iter: string;
  /** [B, V] bool: tokens fed so far (prompt included) */
  presence: string;
  /** [B] bool */
  finished: string;
  /** [B] int64: tokens emitted */
  lengths: string;
  /** [B] bool: a row whose every logit was -inf/NaN while unfinished */
  invalid: string;
  /** outer scope: [B, maxLength] float64 uniforms in [0, 1) */
  uniforms: string;
  /** outer scope: int64 scalar */
  minLength: string;
  /** outer scope: float64 scalar, the temperature with 0 (greedy) replaced by 1 */
  temperature: string;
  /** outer scope: float64 scalar */
  penalty: string;
  /** outer scope: int64 [1], K after greedy (1) and no filter (V) are resolved */
  k: string;
  /** outer scope: [V] bool, true at the EOS ids */
  eosMask: string;
}

export interface SamplerOut {
  /** [B] int64: the token a row emits this step, the pad id where it emits none */
  emitted: string;
  /** [B] int64: next step's input token (= emitted: finished rows feed the pad id) */
  feed: string;
  presence: string;
  finished: string;
  lengths: string;
  invalid: string;
  /** bool scalar: some row is still unfinished */
  cond: string;
}

export function samplerNodes(g: GraphBuilder, v: SamplerIn, eosIds: readonly number[]): SamplerOut {
  const i64 = (x: number): string => g.constant('int64', [], BigInt64Array.of(BigInt(x)));
  const f64 = (x: number): string => g.constant('float64', [], Float64Array.of(x));
  const axes = (...a: number[]): string => g.constant('int64', [a.length], BigInt64Array.from(a.map(BigInt)));
  const slice1 = (x: string, start: number, end: number): string => g.node('Slice', [x, axes(start), axes(end), axes(1)]);
  const minusInf = f64(-Infinity);

  // Scores of the last position, in float64 like the JS sampler; a NaN (fp16 overflow) is never sampled.
  const last = g.node('Gather', [v.logits, i64(-1)], { axis: attr.int(1) });
  let s = g.node('Cast', [last], { to: attr.int(DOUBLE) });
  s = g.node('Where', [g.node('IsNaN', [s]), minusInf, s]);
  // CTRL penalty once per token seen: positive scores divided, others multiplied (1 leaves them unchanged).
  const penalised = g.node('Where', [g.node('Greater', [s, f64(0)]), g.node('Div', [s, v.penalty]), g.node('Mul', [s, v.penalty])]);
  s = g.node('Where', [v.presence, penalised, s]);
  const early = g.node('Less', [v.iter, v.minLength]);
  s = g.node('Where', [g.node('And', [v.eosMask, early]), minusInf, s]);
  s = g.node('Div', [s, v.temperature]);

  const [vals, ids] = g.nodeN('TopK', [s, v.k], 2, { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }) as [string, string];
  const best = slice1(vals, 0, 1);
  const cum = g.node('CumSum', [g.node('Exp', [g.node('Sub', [vals, best])]), i64(1)]);
  const total = g.node('Slice', [cum, axes(-1), axes(Number.MAX_SAFE_INTEGER), axes(1)]);
  const u = g.node('Unsqueeze', [g.node('Gather', [v.uniforms, v.iter], { axis: attr.int(1) }), axes(1)]);
  const above = g.node('Cast', [g.node('Greater', [cum, g.node('Mul', [u, total])])], { to: attr.int(FLOAT) });
  const pick = g.node('ArgMax', [above], { axis: attr.int(1), keepdims: attr.int(1), select_last_index: attr.int(0) });
  const token = g.node('Squeeze', [g.node('GatherElements', [ids, pick], { axis: attr.int(1) }), axes(1)]);
  const noCandidate = g.node('Squeeze', [g.node('IsInf', [best], { detect_positive: attr.int(0), detect_negative: attr.int(1) }), axes(1)]);

  // Row bookkeeping: EOS ends a row and is not emitted; a finished row emits the pad id and feeds it.
  const active = g.node('Not', [v.finished]);
  let isEos = g.node('Equal', [token, i64(eosIds[0]!)]);
  for (const e of eosIds.slice(1)) isEos = g.node('Or', [isEos, g.node('Equal', [token, i64(e)])]);
  const append = g.node('And', [active, g.node('Not', [isEos])]);
  const emitted = g.node('Where', [append, token, i64(eosIds[0]!)]);
  const lengths = g.node('Add', [v.lengths, g.node('Cast', [append], { to: attr.int(INT64) })]);
  const finished = g.node('Not', [append]);
  const invalid = g.node('Or', [v.invalid, g.node('And', [active, noCandidate])]);
  const presence = g.node('ScatterElements', [v.presence, g.node('Unsqueeze', [emitted, axes(1)]), g.node('Unsqueeze', [append, axes(1)])], { axis: attr.int(1) });
  // Keep the mask true where it was: a finished row's scatter writes false at the pad id only.
  const presenceKept = g.node('Or', [presence, v.presence]);
  const unfinished = g.node('ReduceSum', [g.node('Cast', [append], { to: attr.int(INT64) })], { keepdims: attr.int(0) });
  const cond = g.node('Greater', [unfinished, i64(0)]);
  return { emitted, feed: emitted, presence: presenceKept, finished, lengths, invalid, cond };
}
