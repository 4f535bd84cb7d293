export {
  generateSampleData,
  type CorruptKind,
  type SampleDataOptions,
  type SampleDataShard,
  type SampleDataSummary,
  type SampleTruth,
} from './generate';
export { captionFor, CAPTION_KIND_WEIGHTS, type CaptionKind } from './captions';
export { describeScene, randomScene, sceneSvg, COLOURS, SHAPE_KINDS, WORDS, type Scene, type Shape, type ColourName, type ShapeKind } from './scenes';
export { deterministicUid, Rng } from './random';
