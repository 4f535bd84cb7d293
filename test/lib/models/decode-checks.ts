/**
 * Test helper: checks every caption family must pass, whatever its cache layout: caption lengths within the
 * options' bounds, the KV cache giving what a no-cache recompute gives, and rows leaving the batch leaving the
 * others' results unchanged.
 */
import type { CaptionModel, StepResult } from '../../../lib/models/caption-model';
import { generateTokens } from '../../../lib/models/generation';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { CaptionOptions, PixelTensor } from '../../../lib/models/types';
import { maxAbsDiff } from './max-abs-diff';

/**
 * Decodes 24 rows (`pixels` repeated) with the paper's options, then within 12-15 tokens, then exactly 7: every
 * row within its bounds and free of EOS. Rows end at EOS at varied points, so the paper's bounds are exercised:
 * some row is shorter than maxLength and there are more than `distinctLengths` different lengths.
 */
export async function expectLengthBounds(model: CaptionModel, pixels: PixelTensor[], distinctLengths: number): Promise<void> {
  const seeds = Array.from({ length: 24 }, (_, i) => `len-${i}`);
  const many = seeds.map((_, i) => pixels[i % pixels.length]!);
  const paper = await generateTokens(model, many, seeds, PAPER_CAPTION_OPTIONS);
  const lengths = paper.map((t) => t.length);
  for (const n of lengths) {
    expect(n).toBeGreaterThanOrEqual(PAPER_CAPTION_OPTIONS.minLength);
    expect(n).toBeLessThanOrEqual(PAPER_CAPTION_OPTIONS.maxLength);
  }
  expect(Math.min(...lengths)).toBeLessThan(PAPER_CAPTION_OPTIONS.maxLength);
  expect(new Set(lengths).size).toBeGreaterThan(distinctLengths);
  for (const t of paper) for (const id of t) expect(model.eosIds).not.toContain(id);

  const tight: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, minLength: 12, maxLength: 15 };
  for (const t of await generateTokens(model, many, seeds, tight)) {
    expect(t.length).toBeGreaterThanOrEqual(12);
    expect(t.length).toBeLessThanOrEqual(15);
    for (const id of t) expect(model.eosIds).not.toContain(id);
  }
  const exact: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, minLength: 7, maxLength: 7 };
  for (const t of await generateTokens(model, many.slice(0, 5), seeds.slice(0, 5), exact)) expect(t).toHaveLength(7);
}

/**
 * Steps `tokens` (one row per image of `batch`, all of one length) through the KV cache and checks each step's
 * logits against the whole sequence so far (prompt + the first t tokens) fed at once with an empty cache
 * (use_cache_branch = false). `check` sees each recompute as well.
 */
export async function expectCacheMatchesRecompute(model: CaptionModel, batch: PixelTensor[], tokens: number[][], check?: (full: StepResult, t: number) => void): Promise<void> {
  const prompt = model.promptIds;
  const n = tokens[0]!.length;
  const cached = await model.begin(batch);
  let step = await cached.step(batch.map(() => [...prompt]));
  for (let t = 0; t < n; t++) {
    const full = await (await model.begin(batch)).step(tokens.map((row) => [...prompt, ...row.slice(0, t)]));
    expect(full.vocab).toBe(step.vocab);
    expect(maxAbsDiff(step.logits, full.logits)).toBeLessThan(1e-4);
    check?.(full, t);
    if (t < n - 1) step = await cached.step(tokens.map((row) => [row[t]!]));
  }
}

/**
 * Decodes images 0-2 together (prompt, then `third` for each row), drops row 1, feeds `fourth` to the other two,
 * and compares their logits with image 2 decoded alone: a finished row must leave every cache cleanly.
 */
export async function expectKeepRowsIsolation(model: CaptionModel, pixels: PixelTensor[], third: [number, number, number], fourth: [number, number]): Promise<void> {
  const prompt = [...model.promptIds];
  const cached = await model.begin(pixels.slice(0, 3));
  await cached.step([prompt, prompt, prompt]);
  const three = await cached.step(third.map((t) => [t]));
  cached.keepRows([0, 2]);
  expect(cached.rows).toBe(2);
  const two = await cached.step(fourth.map((t) => [t]));

  const ref = await model.begin([pixels[2]!]);
  await ref.step([prompt]);
  const v = three.vocab;
  expect(maxAbsDiff(three.logits.subarray(2 * v, 3 * v), (await ref.step([[third[2]]])).logits)).toBeLessThan(1e-4);
  expect(maxAbsDiff(two.logits.subarray(v, 2 * v), (await ref.step([[fourth[1]]])).logits)).toBeLessThan(1e-4);
}
