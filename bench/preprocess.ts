/**
 * Decode + OpenAI-CLIP preprocessing throughput (images/s) on sharp, as ratios against references measured in the
 * same run on the same images: Pillow + NumPy making the same tensors (bench/pillow_preprocess.py, when a python3
 * with both is available), and sharp's bare decode to raw RGB (the floor any preprocessing pays).
 *
 * Fair comparison: the same JPEG files, the same float32 [3, 224, 224] tensors (checked here on the first images:
 * max and mean |difference| in uint8 levels), the same reference transform. Two settings:
 *   single core  one image at a time, sharp with one libvips thread; images per CPU-second of the whole process
 *                (getrusage: every thread counts), which a busy machine distorts less than wall time.
 *   all cores    wall-clock images/s: ours with the score stage's concurrency (a batch of 64 in flight, libuv's
 *                threads, sharp's default libvips threads) against a multiprocessing pool of one Pillow process
 *                per core whose workers return only a checksum (no tensor crosses a pipe: generous to Pillow).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { parseImageProcessor, preprocessImage } from '../lib/models/preprocess';

const CLIP_PREPROCESSOR = {
  image_processor_type: 'CLIPImageProcessor',
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
/** The score stage preprocesses a whole batch at once (score.batchSize defaults to 64). */
const IN_FLIGHT = 64;
/** Tensors compared with Pillow's, to show both sides make the same thing. */
const COMPARED = 16;

async function makeImages(n: number): Promise<Buffer[]> {
  // img2dataset-like JPEGs: a spread of sizes and aspect ratios around DataComp's typical 512 px.
  const sizes = [[512, 384], [640, 480], [384, 512], [800, 600], [512, 512], [1024, 683]] as const;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const [w, h] = sizes[i % sizes.length]!;
    const noise = Buffer.alloc(w * h * 3);
    let s = i * 2654435761;
    for (let p = 0; p < noise.length; p++) noise[p] = ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) & 0xff;
    out.push(await sharp(noise, { raw: { width: w, height: h, channels: 3 } }).blur(2).jpeg({ quality: 90 }).toBuffer());
  }
  return out;
}

interface Rate {
  /** wall-clock images/s */
  ips: number;
  /** images per CPU-second of this process */
  cpuIps: number;
}

async function measure(images: Buffer[], concurrency: number, fn: (b: Buffer) => Promise<unknown>): Promise<Rate> {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < images.length) await fn(images[next++]!);
    }),
  );
  const cpu = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ips: images.length / wall, cpuIps: images.length / ((cpu.user + cpu.system) / 1e6) };
}

interface PillowResult {
  single: Rate;
  processes: number;
  pool: number;
  /** our tensors against Pillow's on the first images, in uint8 levels */
  maxLevels: number;
  meanLevels: number;
}

function pythonWithPillow(): boolean {
  return spawnSync('python3', ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
}

/** A little-endian float32 .npy (format 1.0). */
function readNpyFloat32(file: string): Float32Array {
  const buf = readFileSync(file);
  const start = 10 + buf.readUInt16LE(8);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
}

async function pillowReference(images: Buffer[], spec: ReturnType<typeof parseImageProcessor>): Promise<PillowResult | null> {
  if (!pythonWithPillow()) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-img-'));
  try {
    images.forEach((b, i) => writeFileSync(path.join(dir, `${i}.jpg`), b));
    const args = [path.join(__dirname, 'pillow_preprocess.py'), dir, '--processes', String(os.availableParallelism()), '--dump', String(COMPARED), dir];
    const r = spawnSync('python3', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pillow_preprocess.py failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim()) as Record<string, number>;
    let maxLevels = 0;
    let sumLevels = 0;
    for (let i = 0; i < COMPARED; i++) {
      const theirs = readNpyFloat32(path.join(dir, `${i}.jpg.npy`));
      const ours = (await preprocessImage(images[i]!, spec)).data;
      const plane = ours.length / 3;
      for (let j = 0; j < ours.length; j++) {
        const levels = Math.round(Math.abs(ours[j]! - theirs[j]!) * 255 * spec.normalize!.std[Math.floor(j / plane)]!);
        maxLevels = Math.max(maxLevels, levels);
        sumLevels += levels;
      }
    }
    return {
      single: { ips: out.single_images_per_s!, cpuIps: out.single_images_per_cpu_s! },
      processes: out.processes!,
      pool: out.pool_images_per_s!,
      maxLevels,
      meanLevels: sumLevels / (COMPARED * 3 * 224 * 224),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PreprocessBench {
  images: number;
  cores: number;
  ours: { single: Rate; all: number };
  decodeOnly: number;
  pillow: PillowResult | null;
}

export async function benchPreprocess(n = 300): Promise<PreprocessBench> {
  const images = await makeImages(n);
  const spec = parseImageProcessor(CLIP_PREPROCESSOR, 'bench CLIP preprocessor');
  const threads = sharp.concurrency();
  await measure(images.slice(0, 20), IN_FLIGHT, (b) => preprocessImage(b, spec)); // warm-up
  sharp.concurrency(1);
  const single = await measure(images, 1, (b) => preprocessImage(b, spec));
  sharp.concurrency(threads);
  const all = await measure(images, IN_FLIGHT, (b) => preprocessImage(b, spec));
  const decodeOnly = await measure(images, IN_FLIGHT, (b) => sharp(b).removeAlpha().raw().toBuffer());
  return { images: n, cores: os.availableParallelism(), ours: { single, all: all.ips }, decodeOnly: decodeOnly.ips, pillow: await pillowReference(images, spec) };
}

/** The lines `npm run bench` prints for this benchmark. */
export function formatPreprocess(r: PreprocessBench): string {
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : 'n/a');
  const f = (v: number | undefined, unit = 'images/s') => (v === undefined ? 'n/a (python3 with PIL + numpy not found)' : `${v.toFixed(1)} ${unit}`);
  const p = r.pillow;
  return [
    `decode + CLIP preprocessing, ${r.images} JPEGs (384–1024 px) into float32 [3, 224, 224]:`,
    p ? `  same tensors as Pillow on the first ${COMPARED}: max |Δ| ${p.maxLevels} uint8 levels, mean ${p.meanLevels.toFixed(3)}` : '',
    `  single core, images per CPU-second:`,
    `    sharp (ours)              ${f(r.ours.single.cpuIps)}   (wall ${r.ours.single.ips.toFixed(1)} images/s)`,
    `    Pillow + NumPy (ref)      ${f(p?.single.cpuIps)}   (wall ${p ? p.single.ips.toFixed(1) : 'n/a'} images/s)   ours / Pillow = ${ratio(r.ours.single.cpuIps, p?.single.cpuIps)} (goal ≥ 2×)`,
    `  all ${r.cores} cores, wall clock:`,
    `    sharp (ours, ${IN_FLIGHT} in flight)  ${f(r.ours.all)}`,
    `    Pillow + NumPy, ${p?.processes ?? r.cores} processes ${f(p?.pool)}   ours / Pillow = ${ratio(r.ours.all, p?.pool)} (goal ≥ 2×)`,
    `    sharp decode only (floor)   ${f(r.decodeOnly)}   ours / decode-only = ${ratio(r.ours.all, r.decodeOnly)}`,
  ]
    .filter((line) => line !== '')
    .join('\n');
}
