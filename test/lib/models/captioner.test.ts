import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import type { CaptionModel } from '../../../lib/models/caption-model';
import { loadCaptioner } from '../../../lib/models/captioner';
import { generateTokens } from '../../../lib/models/generation';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import { PAPER_CAPTION_OPTIONS, type Captioner, type CaptionOptions, type PixelTensor } from '../../../lib/models/types';
import { tempDir } from '../../helpers/paths';
import { openCaptioner } from '../../helpers/images';


describe('captioner (vision-encoder-decoder)', () => {
  const root = tempDir('recaption-cap-');
  let dir: string;
  let captioner: Captioner;
  let model: CaptionModel;
  let pixels: PixelTensor[];

  beforeAll(async () => {
    dir = (await generateTinyModels(root)).captionerDir;
    ({ captioner, model, pixels } = await openCaptioner(dir));
  });
  afterAll(async () => {
    await captioner.release();
    await model.release();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('reports its family and folder', () => {
    expect(captioner.family).toBe('vision-encoder-decoder');
    expect(captioner.modelDir).toBe(path.resolve(dir));
  });

  it('gives a sample the same caption whatever batch it lands in', async () => {
    const seeds = ['run:a', 'run:b', 'run:c', 'run:d'];
    const batch = await captioner.caption(pixels.slice(0, 4), seeds, PAPER_CAPTION_OPTIONS);
    const single: string[] = [];
    for (let i = 0; i < 4; i++) single.push(...(await captioner.caption([pixels[i]!], [seeds[i]!], PAPER_CAPTION_OPTIONS)));
    expect(batch).toEqual(single);
    // Other companions and order, and a batch split by maxBatchSize.
    const mixed = await captioner.caption([pixels[5]!, pixels[2]!, pixels[4]!, pixels[0]!], ['x', seeds[2]!, 'y', seeds[0]!], PAPER_CAPTION_OPTIONS);
    expect([mixed[3], mixed[1]]).toEqual([batch[0], batch[2]]);
    const small = await loadCaptioner(dir, { maxBatchSize: 3 });
    expect(await small.caption(pixels.slice(0, 4), seeds, PAPER_CAPTION_OPTIONS)).toEqual(batch);
    await small.release();
    for (const c of batch) expect(c.length).toBeGreaterThan(0);
  });

  it('gives different captions for different seeds', async () => {
    const seeds = Array.from({ length: 8 }, (_, i) => `seed-${i}`);
    const captions = await captioner.caption(new Array<PixelTensor>(8).fill(pixels[1]!), seeds, PAPER_CAPTION_OPTIONS);
    expect(new Set(captions).size).toBeGreaterThanOrEqual(7);
    expect(await captioner.caption([pixels[1]!], ['seed-3'], PAPER_CAPTION_OPTIONS)).toEqual([captions[3]]);
  });

  it('respects min/max length in tokens and stops rows at EOS independently', async () => {
    const seeds = Array.from({ length: 24 }, (_, i) => `len-${i}`);
    const many = seeds.map((_, i) => pixels[i % pixels.length]!);
    const paper = await generateTokens(model, many, seeds, PAPER_CAPTION_OPTIONS);
    const lengths = paper.map((t) => t.length);
    for (const n of lengths) {
      expect(n).toBeGreaterThanOrEqual(PAPER_CAPTION_OPTIONS.minLength);
      expect(n).toBeLessThanOrEqual(PAPER_CAPTION_OPTIONS.maxLength);
    }
    // The tiny model ends rows at EOS at varied points, so both bounds are exercised.
    expect(Math.min(...lengths)).toBeLessThan(PAPER_CAPTION_OPTIONS.maxLength);
    expect(new Set(lengths).size).toBeGreaterThan(3);
    for (const t of paper) for (const id of t) expect(model.eosIds).not.toContain(id);

    const tight: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, minLength: 12, maxLength: 15 };
    for (const t of await generateTokens(model, many, seeds, tight)) {
      expect(t.length).toBeGreaterThanOrEqual(12);
      expect(t.length).toBeLessThanOrEqual(15);
    }
    const exact: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, minLength: 7, maxLength: 7 };
    for (const t of await generateTokens(model, many.slice(0, 5), seeds.slice(0, 5), exact)) expect(t).toHaveLength(7);
  });

  it('produces the same logits through the KV cache as over the full sequence without cache', async () => {
    const batch = pixels.slice(0, 3);
    const tokens = await generateTokens(model, batch, ['kv:0', 'kv:1', 'kv:2'], { ...PAPER_CAPTION_OPTIONS, minLength: 8, maxLength: 8 });
    const prompt = model.promptIds;

    const cached = await model.begin(batch);
    let step = await cached.step(batch.map(() => [...prompt]));
    for (let t = 0; t < 8; t++) {
      // Full sequence prompt + first t tokens, fed at once with an empty cache (use_cache_branch = false).
      const fresh = await model.begin(batch);
      const full = await fresh.step(tokens.map((row) => [...prompt, ...row.slice(0, t)]));
      expect(full.vocab).toBe(step.vocab);
      let maxDiff = 0;
      for (let i = 0; i < step.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(step.logits[i]! - full.logits[i]!));
      expect(maxDiff).toBeLessThan(1e-4);
      if (t < 7) step = await cached.step(tokens.map((row) => [row[t]!]));
    }
  });

  it('keeps per-row results when finished rows leave the batch', async () => {
    const cached = await model.begin(pixels.slice(0, 3));
    await cached.step([[...model.promptIds], [...model.promptIds], [...model.promptIds]]);
    const three = await cached.step([[5], [6], [7]]);
    cached.keepRows([0, 2]);
    expect(cached.rows).toBe(2);
    const two = await cached.step([[8], [9]]);

    const ref = await model.begin([pixels[2]!]);
    await ref.step([[...model.promptIds]]);
    const single = await ref.step([[7]]);
    const v = three.vocab;
    const rowDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    expect(rowDiff(three.logits.subarray(2 * v, 3 * v), single.logits)).toBeLessThan(1e-4);
    const after = await ref.step([[9]]);
    expect(rowDiff(two.logits.subarray(v, 2 * v), after.logits)).toBeLessThan(1e-4);
  });

  it('is greedy and seed-independent at temperature 0', async () => {
    const greedy: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, temperature: 0 };
    const a = await captioner.caption([pixels[0]!, pixels[0]!], ['one', 'two'], greedy);
    expect(a[0]).toBe(a[1]);
  });

  it('refuses invalid options and mismatched inputs', async () => {
    await expect(captioner.caption([pixels[0]!], ['s'], { ...PAPER_CAPTION_OPTIONS, minLength: 50, maxLength: 40 })).rejects.toBeInstanceOf(InputError);
    await expect(captioner.caption([pixels[0]!], ['s'], { ...PAPER_CAPTION_OPTIONS, topK: -1 })).rejects.toThrow(/topK/);
    await expect(captioner.caption([pixels[0]!], [], PAPER_CAPTION_OPTIONS)).rejects.toThrow(/seeds/);
    expect(await captioner.caption([], [], PAPER_CAPTION_OPTIONS)).toEqual([]);
  });

  it('applies the repetition penalty', async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => `rep-${i}`);
    const imgs = seeds.map((_, i) => pixels[i % pixels.length]!);
    const repeats = (rows: number[][]): number => rows.reduce((n, r) => n + r.length - new Set(r).size, 0);
    const plain = await generateTokens(model, imgs, seeds, { ...PAPER_CAPTION_OPTIONS, minLength: 20, maxLength: 20 });
    const penalised = await generateTokens(model, imgs, seeds, { ...PAPER_CAPTION_OPTIONS, minLength: 20, maxLength: 20, repetitionPenalty: 3 });
    expect(repeats(penalised)).toBeLessThan(repeats(plain));
  });
});
