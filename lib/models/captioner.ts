/**
 * Captioner loading: the family comes from config.json's model_type, each family builds a CaptionModel, and the
 * shared batched loop (generation.ts) turns it into the Captioner contract.
 */
import { z } from 'zod';
import { InputError } from '../errors';
import type { CaptionModel } from './caption-model';
import { loadFlorence2 } from './families/florence2';
import { loadPrefixLm } from './families/prefix-lm';
import { loadVisionEncoderDecoder } from './families/vision-encoder-decoder';
import { generateTokens } from './generation';
import { ModelFolder } from './model-folder';
import type { DecodeOptions } from './preprocess';
import { TextTokenizer } from './tokenizer';
import type { CaptionOptions, Captioner, PixelTensor, RuntimeOptions } from './types';

export interface LoadCaptionerOptions extends RuntimeOptions, DecodeOptions {
  /** Largest number of images decoded together (default 64); bigger inputs are split, with identical results. */
  maxBatchSize?: number;
  /** Florence-2 task token: `<CAPTION>` (default), `<DETAILED_CAPTION>` or `<MORE_DETAILED_CAPTION>`; others refused. */
  taskPrompt?: string;
  /** BLIP-2 (prefix-LM) text prompt the caption continues, e.g. "a photo of"; the caption excludes it. Default: none. */
  textPrompt?: string;
}

type FamilyLoader = (folder: ModelFolder, tokenizer: TextTokenizer, opts: LoadCaptionerOptions) => Promise<CaptionModel>;

/** Supported families by config.json model_type. */
const FAMILIES: Record<string, FamilyLoader> = {
  'vision-encoder-decoder': loadVisionEncoderDecoder,
  florence2: loadFlorence2,
  'blip-2': loadPrefixLm,
};

/** Loads the family-level model (tokenizer, sessions, decoding state): the captioner's building block. */
export async function loadCaptionModel(dir: string, opts: LoadCaptionerOptions = {}): Promise<CaptionModel> {
  const folder = await ModelFolder.open(dir, opts.dtype);
  const { model_type } = await folder.readJson('config.json', z.object({ model_type: z.string() }));
  const loader = FAMILIES[model_type];
  if (!loader) {
    throw new InputError('BadModel', `${folder.display('config.json')}: model_type "${model_type}" is not supported for captioning (supported: ${Object.keys(FAMILIES).join(', ')})`);
  }
  // A prompt the family cannot use would be silently ignored: refuse it instead.
  if (opts.taskPrompt !== undefined && model_type !== 'florence2') {
    throw new InputError('InvalidConfig', `taskPrompt is for Florence-2 captioners; ${folder.display('config.json')} is model_type "${model_type}"`);
  }
  if (opts.textPrompt !== undefined && model_type !== 'blip-2') {
    throw new InputError('InvalidConfig', `textPrompt is for BLIP-2-style (prefix-LM) captioners; ${folder.display('config.json')} is model_type "${model_type}"`);
  }
  const tokenizer = await TextTokenizer.load(folder);
  return loader(folder, tokenizer, opts);
}

export async function loadCaptioner(dir: string, opts: LoadCaptionerOptions = {}): Promise<Captioner> {
  const model = await loadCaptionModel(dir, opts);
  const maxBatch = opts.maxBatchSize ?? 64;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new InputError('InvalidConfig', `maxBatchSize must be a positive integer, got ${maxBatch}`);
  return {
    modelDir: model.modelDir,
    family: model.family,
    preprocess: (image: Buffer): Promise<PixelTensor> => model.preprocess(image),
    async caption(pixels: PixelTensor[], seeds: string[], options: CaptionOptions): Promise<string[]> {
      if (pixels.length !== seeds.length) throw new Error(`caption: ${pixels.length} images but ${seeds.length} seeds`);
      const captions: string[] = [];
      for (let i = 0; i < pixels.length; i += maxBatch) {
        const tokens = await generateTokens(model, pixels.slice(i, i + maxBatch), seeds.slice(i, i + maxBatch), options);
        captions.push(...tokens.map((ids) => model.tokenizer.decode(ids)));
      }
      return captions;
    },
    release: () => model.release(),
  };
}
