/** Test images made on the fly (no binary fixtures): deterministic per seed. */
import sharp from 'sharp';
import type { CaptionModel } from '../../lib/models/caption-model';
import { loadCaptioner, loadCaptionModel } from '../../lib/models/captioner';
import { SeededRng } from '../../lib/models/rng';
import type { Captioner, PixelTensor } from '../../lib/models/types';

/** A blurred random-pixel JPEG of a seed-dependent size: every seed gives a model a different input. */
export function randomPhoto(seed: number): Promise<Buffer> {
  const rng = new SeededRng(`photo:${seed}`);
  const width = 200 + seed * 17;
  const height = 180 + seed * 5;
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(rng.nextDouble() * 256);
  return sharp(raw, { raw: { width, height, channels: 3 } }).blur(3).jpeg().toBuffer();
}

/** A captioner and its family-level model loaded from `dir`, with `images` random photos preprocessed for it. */
export async function openCaptioner(dir: string, images = 6): Promise<{ captioner: Captioner; model: CaptionModel; pixels: PixelTensor[] }> {
  const captioner = await loadCaptioner(dir);
  const model = await loadCaptionModel(dir);
  const pixels = await Promise.all(Array.from({ length: images }, async (_, i) => captioner.preprocess(await randomPhoto(i))));
  return { captioner, model, pixels };
}
