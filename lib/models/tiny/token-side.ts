/**
 * The token side of the tiny caption decoders (GPT-2, BART, OPT): the embed_tokens graph, the LM head tied to
 * the token embedding, and the LM-head bias that makes random weights write word-like captions.
 */
import { attr, encodeModel, GraphBuilder } from '../../onnx/graph-builder';
import type { BuiltTokenizer } from './bpe';
import type { Ctx } from './layers';

/** Logit offsets of the random LM head, by kind of token. */
export interface LmHeadBiases {
  /** EOS's lift: captions end at varied lengths */
  eos: number;
  /** whole-word tokens (`Ġword`), so captions read as words */
  word: number;
  /** single non-letter bytes, pushed down */
  strayByte: number;
  /** the other special tokens (pad, bos...), pushed down; unset leaves them at 0 */
  special?: number;
}

/** The LM-head bias a trained LM would have learned, one per token of `tok`; `eos` gets `b.eos` whatever its kind. */
export function lmHeadBias(tok: Pick<BuiltTokenizer, 'vocab' | 'special'>, eos: number, b: LmHeadBiases): Float32Array {
  const bias = new Float32Array(Object.keys(tok.vocab).length);
  for (const [token, id] of Object.entries(tok.vocab)) {
    if (/^\u0120[a-z]{2,}$/.test(token)) bias[id] = b.word;
    else if (token.length === 1 && !/[a-z]/.test(token)) bias[id] = b.strayByte;
  }
  if (b.special !== undefined) for (const id of Object.values(tok.special)) bias[id] = b.special;
  bias[eos] = b.eos;
  return bias;
}

/** logits = x · tableᵀ + bias: the LM head tied to the token embedding `table` (already a value of the graph). */
export function tiedLmHead({ g }: Ctx, x: string, table: string, biasName: string, bias: Float32Array): string {
  return g.node('Add', [g.node('MatMul', [x, g.node('Transpose', [table], { perm: attr.ints([1, 0]) })]), g.weight(biasName, [bias.length], bias)]);
}

/** embed_tokens.onnx: input_ids [batch, seq] → inputs_embeds [batch, seq, width], rows of the token table. */
export function embedTokensModel(m: { graph: string; tableName: string; table: Float32Array; width: number; doc: string }): Uint8Array {
  const g = new GraphBuilder(m.graph);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const table = g.weight(m.tableName, [m.table.length / m.width, m.width], m.table);
  g.output(g.node('Gather', [table, ids], { axis: attr.int(0) }), 'inputs_embeds', 'float32', ['batch_size', 'sequence_length', m.width]);
  return encodeModel(g, m.doc);
}
