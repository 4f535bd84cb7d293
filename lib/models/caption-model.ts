/**
 * What every captioning family provides to the shared, batched decoding loop (generation.ts). A family owns its
 * ONNX graphs and cache layout; the loop only feeds token ids and reads next-token logits.
 *
 * - vision-encoder-decoder: encoder once, then decoder_model_merged with past_key_values (implemented).
 * - florence2: vision_encoder + embed_tokens(task prompt) -> encoder_model once, then embed_tokens +
 *   decoder_model_merged per step with self- and cross-attention caches (implemented). The task prompt is
 *   encoder-side; `promptIds` are the decoder start ids.
 * - prefix-LM (BLIP-2 style): image -> LM input embeddings fed as the first step of a decoder-only LM with past
 *   KV (implemented).
 * Each family also builds, at load, a generation graph (generation-graph/) that runs the whole loop inside ONNX
 * Runtime: then `generateInGraph` is set and generation.ts uses it. The graph holds the decoder's weights, so on
 * that route the sessions only the JS loop steps with (the merged decoder, embed_tokens) are not opened; `begin`
 * opens them on first use (decode-state tests) at the cost of those weights a second time. Comparing the routes
 * in one process means loading a second model with `generation: 'js'`.
 */
import type * as ort from 'onnxruntime-node';
import type { GenerationRoute } from './generation-graph/graph-generator';
import type { DecodedImage } from './preprocess';
import type { TextTokenizer } from './tokenizer';
import type { CaptionOptions, ImageRecipe, PixelTensor } from './types';

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
  /** How this model's image tensors are made, for preprocessing threads (lib/pipeline/prep-pool.ts). */
  readonly imageRecipe: ImageRecipe;
  /**
   * The image side of a batch (encoder states, or the image prefix of a prefix-LM), in the element type the
   * decoder takes: where both `begin` and `generateInGraph` start.
   */
  context(pixels: readonly PixelTensor[]): Promise<ort.Tensor>;
  /**
   * Runs the image side for a batch and returns a fresh decoding state with one row per image (the JS loop's
   * start). On the graph route the first call opens the step sessions (see above).
   */
  begin(pixels: readonly PixelTensor[]): Promise<DecodeState>;
  /** How this model generates: the ONNX Runtime Loop graph, or the JS loop and why. */
  readonly generation: GenerationRoute;
  /** Token ids per row (EOS excluded) from one generation-graph run; present only on the graph route. */
  generateInGraph?(pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): Promise<number[][]>;
  /** The ONNX files this model holds a session for now (the generation graph as `<decoder file> generation graph`). */
  readonly openSessions: readonly string[];
  release(): Promise<void>;
}
