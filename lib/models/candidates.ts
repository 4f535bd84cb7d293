/**
 * N caption candidates per image (the paper's multi-caption experiments, and best-of-N by CLIP score).
 * Candidate k of a sample is sampled with its own seed, so candidate 0 is exactly the caption a one-candidate
 * run gives, and every candidate is independent of the batch it lands in.
 */
import type { Captioner, CaptionOptions, PixelTensor } from './types';

/** Seed of candidate k: candidate 0 keeps the sample's seed, so `candidates: 1` runs are unchanged. */
export function candidateSeed(sampleSeed: string, k: number): string {
  return k === 0 ? sampleSeed : `${sampleSeed}#${k}`;
}

/**
 * `n` captions per image, `result[i][k]` for image i and candidate k. The n rows of an image go through the
 * captioner together, so one batched decode serves all candidates (the image side runs once per row).
 */
export async function captionCandidates(
  captioner: Captioner,
  pixels: readonly PixelTensor[],
  seeds: readonly string[],
  n: number,
  options: CaptionOptions,
): Promise<string[][]> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`captionCandidates: n must be a positive integer, got ${n}`);
  if (pixels.length !== seeds.length) throw new Error(`captionCandidates: ${pixels.length} images but ${seeds.length} seeds`);
  const rowsPixels: PixelTensor[] = [];
  const rowsSeeds: string[] = [];
  pixels.forEach((p, i) => {
    for (let k = 0; k < n; k++) {
      rowsPixels.push(p);
      rowsSeeds.push(candidateSeed(seeds[i]!, k));
    }
  });
  const flat = rowsPixels.length ? await captioner.caption(rowsPixels, rowsSeeds, options) : [];
  return pixels.map((_, i) => flat.slice(i * n, (i + 1) * n));
}

/** Index of the best candidate by score (the first on ties, so the choice is deterministic). */
export function bestCandidate(scores: readonly number[]): number {
  let best = 0;
  for (let k = 1; k < scores.length; k++) if (scores[k]! > scores[best]!) best = k;
  return best;
}
