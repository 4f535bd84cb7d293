/** Public API of the model runtime. The pipeline imports from here, never from onnxruntime directly. */
export * from './types';
export { loadClip, type LoadClipOptions } from './clip';
export { loadCaptioner, loadCaptionModel, type LoadCaptionerOptions } from './captioner';
export type { CaptionModel, DecodeState, StepResult } from './caption-model';
export { generateTokens, generateTokensJs } from './generation';
export { describeRoute, GENERATION_ENV, type GenerationMode, type GenerationOptions, type GenerationRoute } from './generation-graph/graph-generator';
export { nextToken, validateCaptionOptions } from './sampling';
export { SeededRng } from './rng';
export { cosine, clipScore, l2NormalizeInPlace } from './similarity';
export { getCachedModel, releaseCachedModels, modelCacheKey } from './cache';
export { ModelFolder, onnxFileName, validateSession, type SessionSignature, type TensorSpec } from './model-folder';
export { createSession, sessionOptions, parseDevice } from './session';
export { resampleLikePil, PIL_FILTERS, type PilFilter } from './resample';
export {
  preprocessImage,
  decodeImage,
  preprocessDecoded,
  decodeRgb,
  resizeRgb,
  parseImageProcessor,
  loadImageProcessor,
  stackPixels,
  pyRound,
  shortestEdgeSize,
  centerCropOffset,
  DEFAULT_MAX_PIXELS,
  type DecodedImage,
  type DecodeOptions,
  type ImageProcessorSpec,
} from './preprocess';
export { TextTokenizer } from './tokenizer';
