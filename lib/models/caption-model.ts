/**
 * What every captioning family provides to the shared, batched decoding loop (generation.ts). A family owns its
 * ONNX graphs and cache layout; the loop only feeds token ids and reads next-token logits.
 *
 * - vision-encoder-decoder: encoder once, then decoder_model_merged with past_key_values (implemented).
 * - florence2: vision_encoder + embed_tokens(task prompt) -> encoder_model once, then embed_tokens +
 *   decoder_model_merged per step with self- and cross-attention caches (implemented). The task prompt is
 *   encoder-side; `promptIds` are the decoder start ids.
 * - prefix-LM (BLIP-2 style): image -> LM input embeddings fed as the first step of a decoder-only LM with past
 *   KV; `begin` runs the image side and the prefix prefill (to add).
 */
import type { DecodedImage } from './preprocess';
import type { TextTokenizer } from './tokenizer';
import type { PixelTensor } from './types';

export interface StepResult {
  /** next-token logits of the last fed position, row-major [rows, vocab], float32 */
  logits: Float32Array;
  vocab: number;
}

/** Decoding state of one batch: its rows' caches live inside. */
export interface DecodeState {
  /** current number of rows */
  readonly rows: number;
  /** Feeds `tokens[r]` to row r (all rows the same count: the prompt first, then one token per step). */
  step(tokens: readonly (readonly number[])[]): Promise<StepResult>;
  /** Keeps only the given current rows (ascending indices): finished rows leave the batch and its cache. */
  keepRows(rows: readonly number[]): void;
}

export interface CaptionModel {
  readonly family: string;
  readonly modelDir: string;
  /** fed to every row before the first generated token (decoder start token, task prompt...) */
  readonly promptIds: readonly number[];
  /** any of these ends a row */
  readonly eosIds: readonly number[];
  readonly tokenizer: TextTokenizer;
  preprocess(image: Buffer): Promise<PixelTensor>;
  preprocessDecoded(image: DecodedImage): Promise<PixelTensor>;
  /** Runs the image side for a batch and returns a fresh decoding state with one row per image. */
  begin(pixels: readonly PixelTensor[]): Promise<DecodeState>;
  release(): Promise<void>;
}
