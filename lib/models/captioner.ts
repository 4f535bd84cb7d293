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
import { describeRoute, type GenerationOptions } from './generation-graph/graph-generator';
import { ModelFolder } from './model-folder';
import type { DecodedImage, DecodeOptions } from './preprocess';
import { TextTokenizer } from './tokenizer';
import type { CaptionOptions, Captioner, PixelTensor, RuntimeOptions } from './types';

export interface LoadCaptionerOptions extends RuntimeOptions, DecodeOptions, GenerationOptions {
  /** Largest number of images decoded together (default 64); bigger inputs are split, with identical results. */
  maxBatchSize?: number;
  /** Florence-2 task token: `<CAPTION>` (default), `<DETAILED_CAPTION>` or `<MORE_DETAILED_CAPTION>`; others refused. */
  taskPrompt?: string;
  /** BLIP-2 (prefix-LM) text prompt the caption continues, e.g. "a photo of"; the caption excludes it. Default: none. */
  textPrompt?: string;
}

type PromptOption = 'taskPrompt' | 'textPrompt';

interface Family {
  load: (folder: ModelFolder, tokenizer: TextTokenizer, opts: LoadCaptionerOptions) => Promise<CaptionModel>;
  /** The prompt option this family reads; the other is refused rather than silently ignored. */
  prompt?: PromptOption;
}

/** Supported families by config.json model_type. */
const FAMILIES: Record<string, Family> = {
  'vision-encoder-decoder': { load: loadVisionEncoderDecoder },
  florence2: { load: loadFlorence2, prompt: 'taskPrompt' },
  'blip-2': { load: loadPrefixLm, prompt: 'textPrompt' },
};

const PROMPT_USERS: Record<PromptOption, string> = { taskPrompt: 'Florence-2', textPrompt: 'BLIP-2-style (prefix-LM)' };

/** Loads the family-level model (tokenizer, sessions, decoding state): the captioner's building block. */
export async function loadCaptionModel(dir: string, opts: LoadCaptionerOptions = {}): Promise<CaptionModel> {
  const folder = await ModelFolder.open(dir, opts.dtype);
  const { model_type } = await folder.readJson('config.json', z.object({ model_type: z.string() }));
  const family = FAMILIES[model_type];
  if (!family) {
    throw new InputError('BadModel', `${folder.display('config.json')}: model_type "${model_type}" is not supported for captioning (supported: ${Object.keys(FAMILIES).join(', ')})`);
  }
  for (const option of Object.keys(PROMPT_USERS) as PromptOption[]) {
    if (opts[option] !== undefined && family.prompt !== option) {
      throw new InputError('InvalidConfig', `${option} is for ${PROMPT_USERS[option]} captioners; ${folder.display('config.json')} is model_type "${model_type}"`);
    }
  }
  const tokenizer = await TextTokenizer.load(folder);
  return family.load(folder, tokenizer, opts);
}

export async function loadCaptioner(dir: string, opts: LoadCaptionerOptions = {}): Promise<Captioner> {
  const model = await loadCaptionModel(dir, opts);
  const maxBatch = opts.maxBatchSize ?? 64;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new InputError('InvalidConfig', `maxBatchSize must be a positive integer, got ${maxBatch}`);
  return {
    modelDir: model.modelDir,
    family: model.family,
    generation: describeRoute(model.generation),
    preprocess: (image: Buffer): Promise<PixelTensor> => model.preprocess(image),
    preprocessDecoded: (image: DecodedImage): Promise<PixelTensor> => model.preprocessDecoded(image),
    imageRecipe: model.imageRecipe,
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
