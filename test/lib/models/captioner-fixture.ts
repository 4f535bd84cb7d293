/**
 * Test helper: a describe block's captioner over one tiny caption model. Before the block's tests it loads the
 * captioner, the family-level model and six preprocessed random photos; after them it releases both and removes
 * the block's scratch folder.
 */
import { promises as fs } from 'node:fs';
import type { CaptionModel } from '../../../lib/models/caption-model';
import { generateTinyModels, type TinyModelPaths } from '../../../lib/models/tiny/generate';
import type { Captioner, PixelTensor } from '../../../lib/models/types';
import { openCaptioner } from '../../helpers/images';
import { TINY_MODELS, tempDir } from '../../helpers/paths';

export interface CaptionerFixture {
  /** the model folder */
  dir: string;
  captioner: Captioner;
  model: CaptionModel;
  pixels: PixelTensor[];
  /** a temporary folder for edited copies of the model, removed after the block */
  scratch: string;
}

/**
 * Registers the block's beforeAll/afterAll and returns the fixture they fill. The model comes from the shared
 * tiny models, or with `generateInScratch` is generated afresh into the scratch folder.
 */
export function tinyCaptioner(which: keyof Pick<TinyModelPaths, 'captionerDir' | 'florence2Dir' | 'blip2Dir'>, scratchPrefix: string, opts: { generateInScratch?: boolean } = {}): CaptionerFixture {
  const fx = { scratch: tempDir(scratchPrefix) } as CaptionerFixture;
  beforeAll(async () => {
    fx.dir = (await generateTinyModels(opts.generateInScratch ? fx.scratch : TINY_MODELS))[which];
    Object.assign(fx, await openCaptioner(fx.dir));
  });
  afterAll(async () => {
    await fx.captioner.release();
    await fx.model.release();
    await fs.rm(fx.scratch, { recursive: true, force: true });
  });
  return fx;
}
