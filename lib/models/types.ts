/** Contracts of the model runtime (lib/models). The pipeline depends on these, never on onnxruntime directly. */
import type { DecodedImage, DecodeOptions, ImageProcessorSpec } from './preprocess';

export type Device = 'cpu' | `cuda:${number}`;

export interface RuntimeOptions {
  /** `cpu` (default) or `cuda:N`. */
  device?: Device;
  /** ONNX file variant: `fp32` -> `name.onnx`, `fp16` -> `name_fp16.onnx`, `quantized` -> `name_quantized.onnx`. */
  dtype?: 'fp32' | 'fp16' | 'quantized';
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  /** ORT graph optimisation level (default `all`). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Folder for optimised graphs: the first load saves ORT's optimised model there (keyed by the model's bytes,
   * the ORT version, the execution provider and the level), later loads take it with optimisation disabled.
   */
  optimizedModelCache?: string;
}

export interface CaptionOptions {
  /** Top-K sampling; the paper (BLIP-2 release) uses 50. */
  topK: number;
  /** Sampling temperature; the paper uses 0.75. */
  temperature: number;
  /** Minimum new tokens before EOS may be sampled; the paper uses 5. */
  minLength: number;
  /** Maximum new tokens; the paper uses 40. */
  maxLength: number;
  /** Optional CTRL-style repetition penalty (1 = off). */
  repetitionPenalty?: number;
}


/** A model-ready image: CHW float32, already resized/cropped/normalised for one specific model. */
export interface PixelTensor {
  data: Float32Array;
  /** [3, height, width] */
  dims: [number, number, number];
  /** The same values as float16 bits, when they were made ahead for a model that takes float16 (prep threads). */
  half?: Uint16Array;
}

/**
 * How a model's image input is made, as plain data: what a preprocessing thread (lib/pipeline/prep-pool.ts) needs to
 * make the model's tensors without the model.
 */
export interface ImageRecipe {
  spec: ImageProcessorSpec;
  decode: DecodeOptions;
  /** [height, width] of the tensor */
  size: [number, number];
  /** element type of the model's pixel_values input */
  type: 'float32' | 'float16';
}

/** How a dual encoder's texts are tokenised, as plain data (see ImageRecipe): lib/models/text-batch.ts encodeTexts. */
export interface TextRecipe {
  /** model folder holding tokenizer.json (+ tokenizer_config.json) */
  dir: string;
  /** each text is truncated to this many tokens, special tokens kept */
  maxLength: number;
  /** rows padded to this length (SigLIP) instead of the batch's longest */
  padTo?: number;
}

/** Texts tokenised for a text tower: row-major int64 [batch, length], padded with the tokenizer's pad id. */
export interface TokenBatch {
  ids: BigInt64Array;
  /** 1 for real tokens, 0 for padding */
  mask: BigInt64Array;
  batch: number;
  length: number;
}

export interface ClipScorer {
  /** Folder the model was loaded from (for manifests). */
  readonly modelDir: string;
  /** Embedding width. */
  readonly dim: number;
  /** Decode + preprocess one encoded image exactly like the reference processor. Throws SampleError. */
  preprocess(image: Buffer): Promise<PixelTensor>;
  /** The same tensor from an image decoded once for several models (decodeImage). */
  preprocessDecoded(image: DecodedImage): Promise<PixelTensor>;
  /** L2-normalised image embeddings, one per input. */
  embedImages(pixels: PixelTensor[]): Promise<Float32Array[]>;
  /** L2-normalised text embeddings, one per input (text truncated to the model's context like the reference). */
  embedTexts(texts: string[]): Promise<Float32Array[]>;
  /** How this model's image tensors are made (preprocess), for preprocessing threads. */
  readonly imageRecipe: ImageRecipe;
  /** How this model's texts are tokenised, for preprocessing threads. */
  readonly textRecipe: TextRecipe;
  /** embedTexts of texts tokenised ahead with textRecipe (encodeTexts): the same embeddings. */
  embedTokens(tokens: TokenBatch): Promise<Float32Array[]>;
  release(): Promise<void>;
}

export interface Captioner {
  readonly modelDir: string;
  /** Family picked from config.json, e.g. `vision-encoder-decoder`. */
  readonly family: string;
  /** Decode + preprocess one encoded image for this captioner. Throws SampleError. */
  preprocess(image: Buffer): Promise<PixelTensor>;
  /** The same tensor from an image decoded once for several models (decodeImage). */
  preprocessDecoded(image: DecodedImage): Promise<PixelTensor>;
  /** How this captioner's image tensors are made (preprocess), for preprocessing threads. */
  readonly imageRecipe: ImageRecipe;
  /**
   * One caption per image. `seeds[i]` seeds row i's own RNG (the pipeline passes `${runSeed}:${uid}`), so a
   * sample's caption does not depend on the batch it lands in or on retries.
   */
  caption(pixels: PixelTensor[], seeds: string[], options: CaptionOptions): Promise<string[]>;
  /** How captions are generated, for logs: "generation in ONNX Runtime (Loop graph)" or the JS loop and why. */
  readonly generation?: string;
  release(): Promise<void>;
}
