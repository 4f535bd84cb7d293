/** Test images made on the fly (no binary fixtures): deterministic per seed. */
import sharp from 'sharp';
import { SeededRng } from '../../lib/models/rng';

/** A blurred random-pixel JPEG of a seed-dependent size: every seed gives a model a different input. */
export function randomPhoto(seed: number): Promise<Buffer> {
  const rng = new SeededRng(`photo:${seed}`);
  const width = 200 + seed * 17;
  const height = 180 + seed * 5;
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(rng.nextDouble() * 256);
  return sharp(raw, { raw: { width, height, channels: 3 } }).blur(3).jpeg().toBuffer();
}
