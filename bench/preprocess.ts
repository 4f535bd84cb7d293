/**
 * Benchmark (a): decode + preprocessing on sharp, tensors per CPU-second, against Pillow + NumPy making the same
 * tensors from the same JPEG files (bench/pillow_preprocess.py, when a python3 with both is available; without one the
 * Pillow side prints n/a and ours still runs). Two workloads, each as the reference does it:
 *   one tensor   OpenAI CLIP's (224 shortest side bicubic, center crop, normalise): preprocessImage;
 *   two tensors  CLIP's and the captioner's (ViT-GPT2's ViTImageProcessor: 224 x 224 bilinear, mean = std = 0.5) from
 *                ONE decode per image: decodeImage, then preprocessDecoded per model — what the annotate stage does.
 * on two image sets: web-sized JPEGs (384–1024 px, around DataComp's 512) and large ones (1024–2048 px, unresized web
 * photos). The headline "preprocessing ratio" is ours / Pillow in tensors per CPU-second, two tensors from one
 * decode, web-sized set.
 *
 * Fair comparison: same files, same float32 [3, 224, 224] tensors (compared on the first images: max and mean |Δ| in
 * uint8 levels), one image at a time on both sides, sharp with one libvips thread (sharp.concurrency(1)), Pillow in
 * one process. CPU time is the whole process's (process.cpuUsage on ours: libuv's and libvips's threads count;
 * time.process_time in Python), which a busy machine distorts less than wall time. Rounds are interleaved — ours, then
 * Pillow's (a long-lived python3 that runs a round when asked), alternating which goes first — after a warm-up, and
 * medians reported with the spread of the per-round ratios (the noise).
 * Also one wall-clock line for all cores: ours with IN_FLIGHT samples in flight and sharp's default threads, against a
 * multiprocessing pool of one Pillow process per core whose workers return only a checksum (generous to Pillow).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { decodeImage, parseImageProcessor, preprocessDecoded, preprocessImage, type ImageProcessorSpec } from '../lib/models/preprocess';
import type { PixelTensor } from '../lib/models/types';
import { median } from './timing';

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
/** nlpconnect/vit-gpt2-image-captioning's (and the tiny test captioner's) preprocessor_config.json. */
const VIT_PREPROCESSOR = {
  image_processor_type: 'ViTImageProcessor',
  do_resize: true,
  size: { height: 224, width: 224 },
  resample: 2,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
};
/** The annotate stage prepares a whole batch at once (score.batchSize defaults to 64). */
const IN_FLIGHT = 64;
/** Images whose tensors are compared with Pillow's, to show both sides make the same thing. */
const COMPARED = 16;

export interface PreprocessOptions {
  /** web-sized JPEGs (default 120) */
  images?: number;
  /** large JPEGs (default 18) */
  largeImages?: number;
  /** timed rounds per side after a warm-up (default 5) */
  runs?: number;
}

/** img2dataset-like JPEGs: a spread of sizes and aspect ratios around DataComp's typical 512 px. */
const WEB_SIZES = [[512, 384], [640, 480], [384, 512], [800, 600], [512, 512], [1024, 683]] as const;
/** Unresized web photos (bench/decode-once.ts's large set). */
const LARGE_SIZES = [[1024, 768], [1280, 960], [1536, 1024], [2048, 1536], [1200, 1600], [1536, 2048]] as const;

async function makeImages(n: number, sizes: readonly (readonly [number, number])[] = WEB_SIZES): Promise<Buffer[]> {
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

type Workload = 'one' | 'two';

interface Specs {
  clip: ImageProcessorSpec;
  vit: ImageProcessorSpec;
}

function ours(specs: Specs, workload: Workload): (image: Buffer) => Promise<PixelTensor[]> {
  if (workload === 'one') return async (image) => [await preprocessImage(image, specs.clip)];
  return async (image) => {
    const decoded = await decodeImage(image);
    return Promise.all([preprocessDecoded(decoded, specs.clip), preprocessDecoded(decoded, specs.vit)]);
  };
}

/** One round of ours: CPU seconds per image (whole process), `concurrency` images in flight. */
async function ourRound(images: Buffer[], fn: (image: Buffer) => Promise<unknown>, concurrency = 1): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < images.length) await fn(images[next++]!);
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  return { cpu: (cpu.user + cpu.system) / 1e6 / images.length, wall: wall / images.length };
}

function pythonWithPillow(): boolean {
  try {
    return spawnSync('python3', ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
  } catch {
    return false;
  }
}

/** A long-lived `pillow_preprocess.py --serve`: one round per request, timed in Python. */
class PillowServer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static start(dir: string): PillowServer {
    const child = spawn('python3', [path.join(__dirname, 'pillow_preprocess.py'), dir, '--serve']);
    child.stderr.setEncoding('utf8');
    let stderr = '';
    child.stderr.on('data', (s: string) => (stderr += s));
    child.on('exit', (code) => {
      if (code) process.stderr.write(`pillow_preprocess.py exited ${code}: ${stderr}\n`);
    });
    return new PillowServer(child);
  }

  /** CPU seconds per image of one round. */
  async round(workload: Workload): Promise<{ cpu: number; wall: number }> {
    this.child.stdin.write(`${workload}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error('pillow_preprocess.py ended early');
    const r = JSON.parse(line.value) as { images: number; cpu_s: number; wall_s: number };
    return { cpu: r.cpu_s / r.images, wall: r.wall_s / r.images };
  }

  stop(): void {
    this.child.stdin.end('quit\n');
  }
}

/** A little-endian float32 .npy (format 1.0). */
function readNpyFloat32(file: string): Float32Array {
  const buf = readFileSync(file);
  const start = 10 + buf.readUInt16LE(8);
  return new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
}

/** Our tensors against Pillow's on the first images, in uint8 levels of each model's normalisation. */
async function compareTensors(images: Buffer[], specs: Specs, dir: string): Promise<Record<'clip' | 'vit', { max: number; mean: number }>> {
  const r = spawnSync('python3', [path.join(__dirname, 'pillow_preprocess.py'), dir, '--dump', String(COMPARED), dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pillow_preprocess.py --dump failed: ${r.stderr}`);
  const out = { clip: { max: 0, mean: 0 }, vit: { max: 0, mean: 0 } };
  for (let i = 0; i < COMPARED; i++) {
    const decoded = await decodeImage(images[i]!);
    for (const name of ['clip', 'vit'] as const) {
      const spec = specs[name];
      const theirs = readNpyFloat32(path.join(dir, `${i}.${name}.npy`));
      const mine = (await preprocessDecoded(decoded, spec)).data;
      const plane = mine.length / 3;
      for (let j = 0; j < mine.length; j++) {
        const levels = Math.round(Math.abs(mine[j]! - theirs[j]!) * 255 * spec.normalize!.std[Math.floor(j / plane)]!);
        out[name].max = Math.max(out[name].max, levels);
        out[name].mean += levels / (COMPARED * mine.length);
      }
    }
  }
  return out;
}

interface SideRounds {
  /** median CPU milliseconds per image */
  cpu_ms: number;
  /** median wall milliseconds per image (one at a time) */
  wall_ms: number;
}

export interface WorkloadResult {
  ours: SideRounds;
  pillow: SideRounds | null;
  /** Pillow CPU / ours CPU per image = ours / Pillow in tensors per CPU-second (median of the rounds) */
  ratio: number | null;
  /** lowest and highest per-round ratio (round r of ours against round r of Pillow): the noise */
  ratio_range: [number, number] | null;
}

export interface SetResult {
  name: string;
  images: number;
  one: WorkloadResult;
  two: WorkloadResult;
}

export interface PreprocessBench {
  runs: number;
  cores: number;
  /** the web-sized set (the headline), then the large one */
  sets: SetResult[];
  /** ours vs Pillow's tensors on the web set's first images, uint8 levels */
  same: Record<'clip' | 'vit', { max: number; mean: number }> | null;
  /** all cores, wall clock, two tensors, web set: images/s */
  all: { ours: number; pillow: number | null; processes: number };
}

function summarise(o: { cpu: number; wall: number }[], p: { cpu: number; wall: number }[] | null): WorkloadResult {
  const side = (xs: { cpu: number; wall: number }[]): SideRounds => ({ cpu_ms: median(xs.map((x) => x.cpu)) * 1e3, wall_ms: median(xs.map((x) => x.wall)) * 1e3 });
  if (!p) return { ours: side(o), pillow: null, ratio: null, ratio_range: null };
  const perRound = o.map((x, i) => p[i]!.cpu / x.cpu);
  return { ours: side(o), pillow: side(p), ratio: median(p.map((x) => x.cpu)) / median(o.map((x) => x.cpu)), ratio_range: [Math.min(...perRound), Math.max(...perRound)] };
}

/** Both workloads on one image set, ours and Pillow's rounds interleaved. */
async function benchSet(name: string, images: Buffer[], dir: string, specs: Specs, runs: number, python: boolean): Promise<SetResult> {
  const pillow = python ? PillowServer.start(dir) : null;
  const rounds: Record<Workload, { ours: { cpu: number; wall: number }[]; pillow: { cpu: number; wall: number }[] }> = { one: { ours: [], pillow: [] }, two: { ours: [], pillow: [] } };
  const threads = sharp.concurrency();
  sharp.concurrency(1);
  try {
    for (const w of ['one', 'two'] as const) await ourRound(images.slice(0, 10), ours(specs, w)); // warm-up
    for (let r = 0; r < runs; r++) {
      for (const w of ['one', 'two'] as const) {
        // Interleaved, alternating which side goes first, so drift on a busy machine lands on both.
        const oursFirst = r % 2 === 0;
        if (!oursFirst && pillow) rounds[w].pillow.push(await pillow.round(w));
        rounds[w].ours.push(await ourRound(images, ours(specs, w)));
        if (oursFirst && pillow) rounds[w].pillow.push(await pillow.round(w));
      }
    }
  } finally {
    sharp.concurrency(threads);
    pillow?.stop();
  }
  return { name, images: images.length, one: summarise(rounds.one.ours, pillow && rounds.one.pillow), two: summarise(rounds.two.ours, pillow && rounds.two.pillow) };
}

export async function benchPreprocess(opts: PreprocessOptions = {}): Promise<PreprocessBench> {
  const runs = opts.runs ?? 5;
  const specs: Specs = { clip: parseImageProcessor(CLIP_PREPROCESSOR, 'bench CLIP preprocessor'), vit: parseImageProcessor(VIT_PREPROCESSOR, 'bench ViT preprocessor') };
  const python = pythonWithPillow();
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-img-'));
  try {
    const sets = [
      { name: 'web-sized JPEGs (384–1024 px)', images: await makeImages(opts.images ?? 120) },
      { name: 'large JPEGs (1024–2048 px)', images: await makeImages(opts.largeImages ?? 18, LARGE_SIZES) },
    ].map((set, i) => {
      const dir = path.join(root, String(i));
      mkdirSync(dir);
      set.images.forEach((b, j) => writeFileSync(path.join(dir, `${j}.jpg`), b));
      return { ...set, dir };
    });
    const results: SetResult[] = [];
    for (const set of sets) results.push(await benchSet(set.name, set.images, set.dir, specs, runs, python));
    const web = sets[0]!;
    const same = python ? await compareTensors(web.images, specs, web.dir) : null;
    const two = ours(specs, 'two');
    await ourRound(web.images.slice(0, 20), two, IN_FLIGHT);
    const allOurs = 1 / (await ourRound(web.images, two, IN_FLIGHT)).wall;
    let allPillow: number | null = null;
    if (python) {
      const r = spawnSync('python3', [path.join(__dirname, 'pillow_preprocess.py'), web.dir, '--pool', String(os.availableParallelism())], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`pillow_preprocess.py --pool failed: ${r.stderr}`);
      allPillow = (JSON.parse(r.stdout.trim()) as { images_per_s: number }).images_per_s;
    }
    return { runs, cores: os.availableParallelism(), sets: results, same, all: { ours: allOurs, pillow: allPillow, processes: os.availableParallelism() } };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The lines `npm run bench` prints for this benchmark. */
export function formatPreprocess(r: PreprocessBench): string {
  const na = 'n/a (python3 with PIL + numpy not found)';
  const ms = (v: number) => `${v.toFixed(2).padStart(6)} ms`;
  const x = (w: WorkloadResult) => (w.ratio === null ? na : `${w.ratio.toFixed(2)}× (rounds ${w.ratio_range![0].toFixed(2)}–${w.ratio_range![1].toFixed(2)})`);
  const side = (w: WorkloadResult) =>
    `ours ${ms(w.ours.cpu_ms)}, Pillow + NumPy ${w.pillow ? ms(w.pillow.cpu_ms) : 'n/a'} CPU per image`;
  const s = r.same;
  return [
    `(a) decode + preprocessing into float32 [3, 224, 224], one image at a time, sharp on 1 thread, median of ${r.runs} interleaved rounds, tensors per CPU-second ours / Pillow:`,
    ...(s ? [`  same tensors as Pillow (first ${COMPARED} web-sized): CLIP max |Δ| ${s.clip.max} levels (mean ${s.clip.mean.toFixed(3)}), ViT max |Δ| ${s.vit.max} (mean ${s.vit.mean.toFixed(3)})`] : []),
    ...r.sets.flatMap((set, i) => [
      `  ${set.name}, ${set.images} images:`,
      `    one tensor (CLIP)                          ${x(set.one)}   ${side(set.one)}`,
      `    two tensors (CLIP + ViT-GPT2), one decode  ${x(set.two)}   ${side(set.two)}${i === 0 ? '   <- preprocessing ratio (goal ≥ 1.5×)' : ''}`,
    ]),
    `  all ${r.cores} cores, wall clock, two tensors, web-sized: ours (${IN_FLIGHT} in flight) ${r.all.ours.toFixed(1)} images/s, Pillow (${r.all.processes} processes) ${r.all.pillow === null ? na : `${r.all.pillow.toFixed(1)} images/s, ours / Pillow = ${(r.all.ours / r.all.pillow).toFixed(2)}×`}`,
  ].join('\n');
}
