/**
 * A real-size random-weight CLIP ViT-B/32 (vision 12 x 768, patch 32, 224 px; text 12 x 512, context 77, vocabulary
 * 49,408; projection 512) in the split layout, made by the tiny-model generator at real dimensions: what benchmark
 * (d) times when no export is at hand (bench/export_real_size.py needs torch). Same graph structure, I/O names and
 * FLOPs per image and text as the real export; the embeddings are random, which a throughput figure ignores.
 *
 *   npx tsx bench/real-size-clip.ts [--out DIR]     (default .cache/models; ~0.6 GB, written once)
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SeededRng } from '../lib/models/rng';
import { WeightInit } from '../lib/models/tiny/layers';
import { REAL_SIZE_CLIP_DIMS, tinyClipFiles } from '../lib/models/tiny/clip-model';

export const REAL_SIZE_CLIP_DIR = 'real-clip-vit-b32';
const STAMP = 'recaption-real-size.json';
const VERSION = 1;

/** The folder, generated on first use (a temporary folder renamed into place). */
export async function ensureRealSizeClip(outDir: string): Promise<string> {
  const dir = path.resolve(outDir, REAL_SIZE_CLIP_DIR);
  const stamp = await fs.readFile(path.join(dir, STAMP), 'utf8').then((t) => JSON.parse(t) as { version: number }, () => undefined);
  if (stamp?.version === VERSION) return dir;
  process.stderr.write(`generating a real-size random-weight CLIP ViT-B/32 into ${dir} (once, ~0.6 GB)...\n`);
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  const files = tinyClipFiles(new WeightInit(new SeededRng('real-clip-vit-b32:0')), REAL_SIZE_CLIP_DIMS);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(tmp, rel)), { recursive: true });
    await fs.writeFile(path.join(tmp, rel), content);
  }
  await fs.writeFile(path.join(tmp, STAMP), JSON.stringify({ version: VERSION, dims: REAL_SIZE_CLIP_DIMS }));
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return dir;
}

if (require.main === module) {
  const at = process.argv.indexOf('--out');
  ensureRealSizeClip(at > 0 ? process.argv[at + 1]! : path.join(__dirname, '..', '.cache', 'models'))
    .then((dir) => process.stdout.write(`${dir}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
