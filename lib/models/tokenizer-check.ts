/**
 * Does a folder's tokenizer belong to its model? A tokenizer from another checkpoint loads fine and then feeds
 * ids past the embedding table (ORT fails on every sample, or worse, a wrapped index silently reads garbage) or
 * never emits the model's EOS. Family loaders call `checkTokenizerFits` once at load with what the model declares.
 */
import { InputError } from '../errors';

/** What the check needs from a tokenizer (TextTokenizer provides it). */
export interface TokenizerFacts {
  /** largest id the tokenizer can emit, added tokens included */
  readonly maxId: number;
  /** tokenizer_config.json model_max_length, when set */
  readonly modelMaxLength?: number;
}

/** A size the model declares, with where it was read (`onnx/decoder_model_merged.onnx logits`, `config.json vocab_size`). */
export type Declared = readonly [size: number | null | undefined, source: string];

export interface ModelTextLimits {
  /** every vocabulary size the model declares (logits width, embedding rows, config vocab_size); undefined ones are skipped */
  vocab?: readonly Declared[];
  /** special ids the model is fed or stops on, by config name (decoder_start_token_id, eos_token_id...) */
  ids?: Readonly<Record<string, number | readonly number[] | null | undefined>>;
  /** text positions the model embeds (CLIP's max_position_embeddings) */
  positions?: Declared;
}

/**
 * Throws InputError('BadModel') naming `tokenizerFile` and every mismatch: tokenizer ids beyond a declared
 * vocabulary, special ids outside it, model_max_length beyond the position embeddings.
 */
export function checkTokenizerFits(tokenizer: TokenizerFacts, model: ModelTextLimits, tokenizerFile: string): void {
  const problems: string[] = [];
  const vocabs = (model.vocab ?? []).filter((v): v is readonly [number, string] => typeof v[0] === 'number');
  for (const [size, source] of vocabs) {
    if (tokenizer.maxId >= size) {
      problems.push(`the tokenizer has ids up to ${tokenizer.maxId} but the model's vocabulary has ${size} entries (${source}): the tokenizer does not belong to this model`);
    }
  }
  const smallest = vocabs.reduce<readonly [number, string] | undefined>((a, v) => (a === undefined || v[0] < a[0] ? v : a), undefined);
  for (const [name, value] of Object.entries(model.ids ?? {})) {
    for (const id of value === null || value === undefined ? [] : typeof value === 'number' ? [value] : value) {
      if (!Number.isInteger(id) || id < 0) problems.push(`${name} ${id} is not a valid token id`);
      else if (smallest && id >= smallest[0]) problems.push(`${name} ${id} is outside the model's vocabulary of ${smallest[0]} (${smallest[1]})`);
    }
  }
  const [positions, positionsSource] = model.positions ?? [undefined, ''];
  if (typeof positions === 'number' && tokenizer.modelMaxLength !== undefined && tokenizer.modelMaxLength > positions) {
    problems.push(`tokenizer_config.json model_max_length ${tokenizer.modelMaxLength} exceeds the text model's ${positions} position embeddings (${positionsSource})`);
  }
  if (problems.length > 0) throw new InputError('BadModel', `${tokenizerFile}: does not match the model: ${problems.join('; ')}`);
}
