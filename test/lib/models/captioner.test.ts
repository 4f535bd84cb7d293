import path from 'node:path';
import { InputError } from '../../../lib/errors';
import { loadCaptioner } from '../../../lib/models/captioner';
import { generateTokens } from '../../../lib/models/generation';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { CaptionOptions, PixelTensor } from '../../../lib/models/types';
import { tinyCaptioner } from './captioner-fixture';
import { expectCacheMatchesRecompute, expectKeepRowsIsolation, expectLengthBounds } from './decode-checks';


describe('captioner (vision-encoder-decoder)', () => {
  // Generated afresh: this block also covers generating into an empty folder.
  const fx = tinyCaptioner('captionerDir', 'recaption-cap-', { generateInScratch: true });

  it('reports its family and folder', () => {
    expect(fx.captioner.family).toBe('vision-encoder-decoder');
    expect(fx.captioner.modelDir).toBe(path.resolve(fx.dir));
  });

  it('gives a sample the same caption whatever batch it lands in', async () => {
    const seeds = ['run:a', 'run:b', 'run:c', 'run:d'];
    const batch = await fx.captioner.caption(fx.pixels.slice(0, 4), seeds, PAPER_CAPTION_OPTIONS);
    const single: string[] = [];
    for (let i = 0; i < 4; i++) single.push(...(await fx.captioner.caption([fx.pixels[i]!], [seeds[i]!], PAPER_CAPTION_OPTIONS)));
    expect(batch).toEqual(single);
    // Other companions and order, and a batch split by maxBatchSize.
    const mixed = await fx.captioner.caption([fx.pixels[5]!, fx.pixels[2]!, fx.pixels[4]!, fx.pixels[0]!], ['x', seeds[2]!, 'y', seeds[0]!], PAPER_CAPTION_OPTIONS);
    expect([mixed[3], mixed[1]]).toEqual([batch[0], batch[2]]);
    const small = await loadCaptioner(fx.dir, { maxBatchSize: 3 });
    expect(await small.caption(fx.pixels.slice(0, 4), seeds, PAPER_CAPTION_OPTIONS)).toEqual(batch);
    await small.release();
    for (const c of batch) expect(c.length).toBeGreaterThan(0);
  });

  it('gives different captions for different seeds', async () => {
    const seeds = Array.from({ length: 8 }, (_, i) => `seed-${i}`);
    const captions = await fx.captioner.caption(new Array<PixelTensor>(8).fill(fx.pixels[1]!), seeds, PAPER_CAPTION_OPTIONS);
    expect(new Set(captions).size).toBeGreaterThanOrEqual(7);
    expect(await fx.captioner.caption([fx.pixels[1]!], ['seed-3'], PAPER_CAPTION_OPTIONS)).toEqual([captions[3]]);
  });

  it('respects min/max length in tokens and stops rows at EOS independently', async () => {
    await expectLengthBounds(fx.model, fx.pixels, 3);
  });

  it('produces the same logits through the KV cache as over the full sequence without cache', async () => {
    const batch = fx.pixels.slice(0, 3);
    const tokens = await generateTokens(fx.model, batch, ['kv:0', 'kv:1', 'kv:2'], { ...PAPER_CAPTION_OPTIONS, minLength: 8, maxLength: 8 });
    await expectCacheMatchesRecompute(fx.model, batch, tokens);
  });

  it('keeps per-row results when finished rows leave the batch', async () => {
    await expectKeepRowsIsolation(fx.model, fx.pixels, [5, 6, 7], [8, 9]);
  });

  it('is greedy and seed-independent at temperature 0', async () => {
    const greedy: CaptionOptions = { ...PAPER_CAPTION_OPTIONS, temperature: 0 };
    const a = await fx.captioner.caption([fx.pixels[0]!, fx.pixels[0]!], ['one', 'two'], greedy);
    expect(a[0]).toBe(a[1]);
  });

  it('refuses invalid options and mismatched inputs', async () => {
    await expect(fx.captioner.caption([fx.pixels[0]!], ['s'], { ...PAPER_CAPTION_OPTIONS, minLength: 50, maxLength: 40 })).rejects.toBeInstanceOf(InputError);
    await expect(fx.captioner.caption([fx.pixels[0]!], ['s'], { ...PAPER_CAPTION_OPTIONS, topK: -1 })).rejects.toThrow(/topK/);
    await expect(fx.captioner.caption([fx.pixels[0]!], [], PAPER_CAPTION_OPTIONS)).rejects.toThrow(/seeds/);
    expect(await fx.captioner.caption([], [], PAPER_CAPTION_OPTIONS)).toEqual([]);
  });

  it('applies the repetition penalty', async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => `rep-${i}`);
    const imgs = seeds.map((_, i) => fx.pixels[i % fx.pixels.length]!);
    const repeats = (rows: number[][]): number => rows.reduce((n, r) => n + r.length - new Set(r).size, 0);
    const plain = await generateTokens(fx.model, imgs, seeds, { ...PAPER_CAPTION_OPTIONS, minLength: 20, maxLength: 20 });
    const penalised = await generateTokens(fx.model, imgs, seeds, { ...PAPER_CAPTION_OPTIONS, minLength: 20, maxLength: 20, repetitionPenalty: 3 });
    expect(repeats(penalised)).toBeLessThan(repeats(plain));
  });
});
