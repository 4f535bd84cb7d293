/**
 * A real-size random-weight CLIP ViT-B/32 (vision 12 x 768, patch 32, 224 px; text 12 x 512, context 77, vocabulary
 * 49,408; projection 512) in the split layout, made by the tiny-model generator at real dimensions: what benchmark
 * (d) times when no export is at hand. Same graph structure, I/O names and FLOPs per image and text as the real
 * export; the embeddings are random, which a throughput figure ignores.
 *
 *   npx tsx bench/real-size-clip.ts [--out DIR]     (default .cache/models; ~0.6 GB, written once)
 */
import { SeededRng } from '../lib/models/rng';
import { WeightInit } from '../lib/models/tiny/layers';
import { REAL_SIZE_CLIP_DIMS, tinyClipFiles } from '../lib/models/tiny/clip-model';
import { ensureModel, smokeClip } from '../lib/models/tiny/generate';
import { generateFromCommandLine } from './real-size-model';

const REAL_SIZE_CLIP_DIR = 'real-clip-vit-b32';

/** The folder, generated on first use (by the tiny models' generator, at real dimensions). */
export function ensureRealSizeClip(outDir: string): Promise<string> {
  return ensureModel(outDir, REAL_SIZE_CLIP_DIR, 0, false, () => tinyClipFiles(new WeightInit(new SeededRng('real-clip-vit-b32:0')), REAL_SIZE_CLIP_DIMS), smokeClip);
}

// The file-name check keeps this entry point quiet when bundled into another program (bench/gpu's bench.js).
if (require.main === module && /real-size-clip\.[jt]s$/.test(process.argv[1] ?? '')) generateFromCommandLine(ensureRealSizeClip);
