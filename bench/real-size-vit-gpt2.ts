/**
 * A real-size random-weight ViT-GPT2 (ViT-base encoder, GPT-2 124M decoder with cross-attention, vocabulary
 * 50,257) in Optimum's layout, made by the tiny-model generator at real dimensions: what benchmark (c′) times
 * when no exported checkpoint is at hand (bench/export_real_size.py needs torch). Same graph structure, I/O
 * names and FLOPs per token as the real export; the captions are gibberish, which a throughput figure ignores.
 *
 *   npx tsx bench/real-size-vit-gpt2.ts [--out DIR]     (default .cache/models; ~1 GB, written once)
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SeededRng } from '../lib/models/rng';
import { WeightInit } from '../lib/models/tiny/layers';
import { REAL_SIZE_VIT_GPT2_DIMS, tinyVitGpt2Files } from '../lib/models/tiny/vit-gpt2-model';

export const REAL_SIZE_DIR = 'real-vit-gpt2';
const STAMP = 'recaption-real-size.json';
const VERSION = 1;

/** The folder, generated on first use (a temporary folder renamed into place). */
export async function ensureRealSizeVitGpt2(outDir: string): Promise<string> {
  const dir = path.resolve(outDir, REAL_SIZE_DIR);
  const stamp = await fs.readFile(path.join(dir, STAMP), 'utf8').then((t) => JSON.parse(t) as { version: number }, () => undefined);
  if (stamp?.version === VERSION) return dir;
  process.stderr.write(`generating a real-size random-weight ViT-GPT2 into ${dir} (once, ~1 GB)...\n`);
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  const files = tinyVitGpt2Files(new WeightInit(new SeededRng('real-vit-gpt2:0')), REAL_SIZE_VIT_GPT2_DIMS);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(tmp, rel)), { recursive: true });
    await fs.writeFile(path.join(tmp, rel), content);
  }
  await fs.writeFile(path.join(tmp, STAMP), JSON.stringify({ version: VERSION, dims: REAL_SIZE_VIT_GPT2_DIMS }));
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return dir;
}

// The file-name check keeps this entry point quiet when bundled into another program (bench/gpu's bench.js).
if (require.main === module && /real-size-vit-gpt2\.[jt]s$/.test(process.argv[1] ?? '')) {
  const at = process.argv.indexOf('--out');
  ensureRealSizeVitGpt2(at > 0 ? process.argv[at + 1]! : path.join(__dirname, '..', '.cache', 'models'))
    .then((dir) => process.stdout.write(`${dir}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
