/**
 * tokenizer.json via @huggingface/tokenizers (pure JS): batch encoding with padding and reference-style
 * truncation, and caption decoding.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { InputError } from '../errors';
import type { JsonFolder } from './json-folder';

const tokenizerJsonSchema = z.looseObject({ model: z.looseObject({ type: z.string().optional() }) });
const tokenizerConfigSchema = z.looseObject({
  pad_token: z.union([z.string(), z.looseObject({ content: z.string() }), z.null()]).optional(),
  eos_token: z.union([z.string(), z.looseObject({ content: z.string() }), z.null()]).optional(),
  model_max_length: z.number().optional(),
});

export interface EncodedBatch {
  /** row-major [batch, length] */
  ids: number[];
  /** 1 for real tokens, 0 for padding; same layout */
  attentionMask: number[];
  batch: number;
  length: number;
}

const tokenContent = (t: unknown): string | undefined =>
  typeof t === 'string' ? t : t && typeof t === 'object' && 'content' in t ? String((t as { content: unknown }).content) : undefined;

export class TextTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    /** id used to pad rows (the tokenizer's pad token, else its EOS) */
    readonly padId: number,
    readonly eosId: number | undefined,
    private readonly file: string,
    /** tokenizer_config.json model_max_length, when set (HF writes 1e30 for "unset") */
    readonly modelMaxLength?: number,
  ) {}

  /** Loads tokenizer.json (+ tokenizer_config.json when present) from a model folder (a ModelFolder, or jsonFolder(dir)). */
  static async load(folder: JsonFolder): Promise<TextTokenizer> {
    const json = await folder.readJson('tokenizer.json', tokenizerJsonSchema);
    const config = (await folder.readJson('tokenizer_config.json', tokenizerConfigSchema, { optional: true })) ?? {};
    const file = folder.display('tokenizer.json');
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, config);
    } catch (err) {
      throw new InputError('BadModel', `${file}: cannot build the tokenizer: ${err instanceof Error ? err.message : String(err)}`);
    }
    const idOf = (t: unknown): number | undefined => {
      const content = tokenContent(t);
      return content === undefined ? undefined : tokenizer.token_to_id(content);
    };
    const eosId = idOf(config.eos_token);
    const padId = idOf(config.pad_token) ?? eosId;
    if (padId === undefined) throw new InputError('BadModel', `${folder.display('tokenizer_config.json')}: needs a pad_token or eos_token that exists in the vocabulary`);
    const maxLength = config.model_max_length !== undefined && config.model_max_length < 1e9 ? config.model_max_length : undefined;
    return new TextTokenizer(tokenizer, padId, eosId, file, maxLength);
  }

  get vocabSize(): number {
    return this.tokenizer.get_vocab(true).size;
  }

  /** Largest id the tokenizer can emit (vocabulary and added tokens); ids need not be contiguous. */
  get maxId(): number {
    let max = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > max) max = id;
    return max;
  }

  /**
   * Token ids of one text with special tokens, truncated to `maxLength` the way HF does: content tokens are cut,
   * the template's special tokens (CLIP: SOT ... EOT) are kept, so EOS stays last.
   */
  encodeOne(text: string, maxLength?: number): number[] {
    const full = this.tokenizer.encode(text).ids;
    if (maxLength === undefined || full.length <= maxLength) return full;
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    const at = indexOfRun(full, content);
    if (at < 0 || full.length - content.length >= maxLength) {
      // The template does not wrap the content verbatim: cut and keep the last id (EOS for CLIP-like templates).
      return [...full.slice(0, maxLength - 1), full[full.length - 1]!];
    }
    const prefix = full.slice(0, at);
    const suffix = full.slice(at + content.length);
    return [...prefix, ...content.slice(0, maxLength - prefix.length - suffix.length), ...suffix];
  }

  /** Encodes a batch padded to its longest row (or to `padTo`), each row truncated to `maxLength`. */
  encodeBatch(texts: readonly string[], opts: { maxLength?: number; padTo?: number } = {}): EncodedBatch {
    const rows = texts.map((t) => this.encodeOne(t, opts.maxLength));
    const length = Math.max(opts.padTo ?? 0, ...rows.map((r) => r.length), 1);
    const ids: number[] = new Array<number>(rows.length * length).fill(this.padId);
    const attentionMask: number[] = new Array<number>(rows.length * length).fill(0);
    rows.forEach((row, b) => {
      for (let i = 0; i < row.length; i++) {
        ids[b * length + i] = row[i]!;
        attentionMask[b * length + i] = 1;
      }
    });
    return { ids, attentionMask, batch: rows.length, length };
  }

  /** Text of generated ids, special tokens removed, surrounding whitespace trimmed. */
  decode(ids: readonly number[]): string {
    try {
      return this.tokenizer.decode([...ids], { skip_special_tokens: true }).trim();
    } catch (err) {
      throw new Error(`${this.file}: cannot decode ids: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }
}

function indexOfRun(haystack: readonly number[], needle: readonly number[]): number {
  if (needle.length === 0) return -1;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
