/**
 * A real-size random-weight ViT-GPT2 (ViT-base encoder, GPT-2 124M decoder with cross-attention, vocabulary
 * 50,257) in Optimum's layout, made by the tiny-model generator at real dimensions: what benchmark (c′) times
 * when no exported checkpoint is at hand. Same graph structure, I/O names and FLOPs per token as the real
 * export; the captions are gibberish, which a throughput figure ignores.
 *
 *   npx tsx bench/real-size-vit-gpt2.ts [--out DIR]     (default .cache/models; ~1 GB, written once)
 */
import { SeededRng } from '../lib/models/rng';
import { WeightInit } from '../lib/models/tiny/layers';
import { REAL_SIZE_VIT_GPT2_DIMS, tinyVitGpt2Files } from '../lib/models/tiny/vit-gpt2-model';
import { ensureModel, smokeVitGpt2 } from '../lib/models/tiny/generate';
import { generateFromCommandLine } from './real-size-model';

const REAL_SIZE_DIR = 'real-vit-gpt2';

/** The folder, generated on first use (by the tiny models' generator, at real dimensions). */
export function ensureRealSizeVitGpt2(outDir: string): Promise<string> {
  return ensureModel(outDir, REAL_SIZE_DIR, 0, false, () => tinyVitGpt2Files(new WeightInit(new SeededRng('real-vit-gpt2:0')), REAL_SIZE_VIT_GPT2_DIMS), smokeVitGpt2);
}

// The file-name check keeps this entry point quiet when bundled into another program (bench/gpu's bench.js).
if (require.main === module && /real-size-vit-gpt2\.[jt]s$/.test(process.argv[1] ?? '')) generateFromCommandLine(ensureRealSizeVitGpt2);
