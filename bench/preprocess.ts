/**
 * Decode + OpenAI-CLIP preprocessing throughput (images/s) on sharp, as ratios against references measured
 * in the same run on the same images: sharp's bare decode to raw RGB (the floor: what any preprocessing costs
 * at least), and Pillow + NumPy doing the same preprocessing when a python3 with both is available.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { parseImageProcessor, preprocessImage } from '../lib/models/preprocess';

const CLIP_PREPROCESSOR = {
  do_resize: true,
  size: { shortest_edge: 224 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 224, width: 224 },
  do_normalize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  do_convert_rgb: true,
};

async function makeImages(n: number): Promise<Buffer[]> {
  // img2dataset-like JPEGs: a spread of sizes and aspect ratios around DataComp's typical 512 px.
  const sizes = [[512, 384], [640, 480], [384, 512], [800, 600], [512, 512], [1024, 683]];
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const [w, h] = sizes[i % sizes.length];
    const noise = Buffer.alloc(w * h * 3);
    let s = i * 2654435761;
    for (let p = 0; p < noise.length; p++) noise[p] = ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) & 0xff;
    out.push(await sharp(noise, { raw: { width: w, height: h, channels: 3 } }).blur(2).jpeg({ quality: 90 }).toBuffer());
  }
  return out;
}

async function timeIt(images: Buffer[], concurrency: number, fn: (b: Buffer) => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < images.length) await fn(images[next++]);
    }),
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return images.length / s;
}

function pillowReference(images: Buffer[]): number | null {
  const probe = spawnSync('python3', ['-c', 'import PIL, numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-img-'));
  images.forEach((b, i) => writeFileSync(path.join(dir, `${i}.jpg`), b));
  const r = spawnSync('python3', [path.join(__dirname, 'pillow_preprocess.py'), dir], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return Number(JSON.parse(r.stdout.trim()).images_per_s);
}

export async function benchPreprocess(n = 300): Promise<Record<string, number | null>> {
  const images = await makeImages(n);
  const spec = parseImageProcessor(CLIP_PREPROCESSOR as never, 'bench CLIP preprocessor');
  const conc = Math.max(2, os.availableParallelism());
  await timeIt(images.slice(0, 20), conc, (b) => preprocessImage(b, spec)); // warm-up
  const decodeOnly = await timeIt(images, conc, (b) => sharp(b).removeAlpha().raw().toBuffer());
  const ours = await timeIt(images, conc, (b) => preprocessImage(b, spec));
  const pillow = pillowReference(images);
  return { images: n, sharp_preprocess_ips: ours, sharp_decode_only_ips: decodeOnly, pillow_numpy_ips: pillow };
}
