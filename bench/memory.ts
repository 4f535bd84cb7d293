/**
 * Bounded memory of the GPU stages on big shards of large images: the caption stage runs (tiny captioner) on a
 * small and on a large shard of the same large JPEGs, each in a fresh process, and the peak RSS of the two is
 * compared. Streaming the tar and holding at most two batches (lib/pipeline/batches.ts) should make the ratio
 * ≈ 1 whatever the shard size; anything that buffered the shard would grow with it.
 *
 *   npx tsx bench/memory.ts [--small 500] [--large 4000] [--size 2048x1536]
 */
import { execFile } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { parseConfig } from '../lib/config/load';
import { WebDatasetWriter } from '../lib/formats/webdataset';
import { loadCaptioner } from '../lib/models';
import { generateTinyModels } from '../lib/models/tiny/generate';
import { annotateShard } from '../lib/pipeline/annotate-stage';
import { planRun } from '../lib/pipeline/plan-stage';

const run = promisify(execFile);

export interface MemoryResult {
  width: number;
  height: number;
  jpegBytes: number;
  small: { samples: number; peakRssMiB: number; seconds: number };
  large: { samples: number; peakRssMiB: number; seconds: number };
  /** peak RSS large / small: ≈ 1 when memory does not grow with the shard */
  ratio: number;
}

/** A smooth, large JPEG: full decode cost per pixel, small on disk, so big shards stay cheap to store. */
async function largeJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${seed * 37},70%,40%)"/><stop offset="1" stop-color="hsl(${seed * 91},60%,70%)"/></linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 3}" cy="${height / 2}" r="${height / 4}" fill="hsl(${seed * 53},80%,50%)"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

async function writeShard(dir: string, samples: number, images: Buffer[]): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const writer = new WebDatasetWriter(createWriteStream(path.join(dir, '00000000.tar')));
  for (let i = 0; i < samples; i++) {
    const key = String(i).padStart(9, '0');
    await writer.write({ key, files: { jpg: images[i % images.length]!, txt: Buffer.from(`a photo number ${i}`), json: Buffer.from(JSON.stringify({ key, caption: `a photo number ${i}` })) } });
  }
  await writer.close();
}

/** Child: annotate one shard with captions (the GPU stage of a `synthetic` run) and print the process's peak RSS. */
async function child(input: string, output: string, captionerDir: string, clipDir: string): Promise<void> {
  const config = parseConfig(
    {
      run: { name: 'mem', seed: 0 },
      input: { uri: input, requireUid: false }, // bench shards carry no DataComp uids
      output: { uri: output },
      strategy: { preset: 'synthetic' },
      models: { captioner: { path: captionerDir }, clip: { path: clipDir } },
      caption: { batchSize: 16, minLength: 2, maxLength: 2 },
    },
    'bench',
  );
  const plan = await planRun(config);
  const captioner = await loadCaptioner(captionerDir);
  const t0 = performance.now();
  const summary = await annotateShard(plan, 0, async () => ({ captioner, clip: null, centroids: null }));
  const seconds = (performance.now() - t0) / 1000;
  await captioner.release();
  // resourceUsage().maxRSS is in KiB on Linux.
  process.stdout.write(`${JSON.stringify({ samples: summary.samples, peakRssMiB: process.resourceUsage().maxRSS / 1024, seconds })}\n`);
}

export async function benchMemory(opts: { small?: number; large?: number; width?: number; height?: number } = {}): Promise<MemoryResult> {
  const small = opts.small ?? 500;
  const large = opts.large ?? 4000;
  const width = opts.width ?? 2048;
  const height = opts.height ?? 1536;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'recaption-mem-'));
  try {
    const models = await generateTinyModels(path.resolve('.cache/models'));
    const images = await Promise.all([0, 1, 2, 3].map((s) => largeJpeg(width, height, s)));
    const measure = async (n: number) => {
      const input = path.join(root, `in-${n}`);
      await writeShard(input, n, images);
      const { stdout } = await run(process.execPath, [...process.execArgv, __filename, '--child', input, path.join(root, `out-${n}`), models.captionerDir, models.clipDir], {
        maxBuffer: 1 << 20,
      });
      await fs.rm(input, { recursive: true, force: true });
      return JSON.parse(stdout.trim().split('\n').pop()!) as { samples: number; peakRssMiB: number; seconds: number };
    };
    const s = await measure(small);
    const l = await measure(large);
    return { width, height, jpegBytes: images[0]!.byteLength, small: s, large: l, ratio: l.peakRssMiB / s.peakRssMiB };
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

if (require.main === module && /memory\.[jt]s$/.test(process.argv[1] ?? '')) {
  if (process.argv[2] === '--child') {
    const [input, output, captionerDir, clipDir] = process.argv.slice(3);
    void child(input!, output!, captionerDir!, clipDir!);
  } else {
    const [w, h] = flag('--size', '2048x1536').split('x').map(Number);
    void benchMemory({ small: Number(flag('--small', '500')), large: Number(flag('--large', '4000')), width: w, height: h }).then((r) => {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    });
  }
}
