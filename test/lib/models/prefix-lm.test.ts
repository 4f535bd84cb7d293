import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import { loadCaptioner, loadCaptionModel, type LoadCaptionerOptions } from '../../../lib/models/captioner';
import { generateTokens } from '../../../lib/models/generation';
import { SeededRng } from '../../../lib/models/rng';
import { nextToken } from '../../../lib/models/sampling';
import { tinyBlip2Files, tinyBlip2VisionEncoder } from '../../../lib/models/tiny/blip2-model';
import { WeightInit } from '../../../lib/models/tiny/layers';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { Captioner, CaptionOptions, PixelTensor } from '../../../lib/models/types';
import { tinyCaptioner } from './captioner-fixture';
import { expectCacheMatchesRecompute, expectKeepRowsIsolation, expectLengthBounds } from './decode-checks';
import { maxAbsDiff } from './max-abs-diff';
import { loadRefusal } from './load-refusal';
import { copyFolder, editOnnx, float16Io } from './onnx-edit';


const greedy = (o: Partial<CaptionOptions> = {}): CaptionOptions => ({ ...PAPER_CAPTION_OPTIONS, topK: 1, ...o });

/** The refusal of a broken folder: always a BadModel. */
async function loadError(p: Promise<{ release(): Promise<void> }>): Promise<InputError> {
  const err = await loadRefusal(p);
  expect(err).toBeInstanceOf(InputError);
  expect(err.type).toBe('BadModel');
  return err;
}

describe('captioner (prefix-LM, BLIP-2 layout)', () => {
  const fx = tinyCaptioner('blip2Dir', 'recaption-prefix-lm-');

  it('is picked by model_type "blip-2", starts at BOS and ends at the newline token like BLIP-2 OPT', () => {
    expect(fx.captioner.family).toBe('prefix-lm');
    expect(fx.captioner.modelDir).toBe(path.resolve(fx.dir));
    expect(fx.model.promptIds).toEqual([fx.model.tokenizer.tokenToId('</s>')]);
    expect(fx.model.eosIds).toEqual([fx.model.tokenizer.tokenToId('\u010a')]);
    expect(fx.pixels[0]!.dims).toEqual([3, 224, 224]);
  });

  it('is generated deterministically: seed 0 rebuilds the folder byte for byte', async () => {
    const files = tinyBlip2Files(new WeightInit(new SeededRng('tiny-blip2:0')));
    for (const [rel, content] of Object.entries(files)) expect((await fs.readFile(path.join(fx.dir, rel))).equals(Buffer.from(content))).toBe(true);
    const other = tinyBlip2Files(new WeightInit(new SeededRng('tiny-blip2:7')));
    expect(Buffer.from(other['onnx/decoder_model_merged.onnx']!).equals(Buffer.from(files['onnx/decoder_model_merged.onnx']!))).toBe(false);
  });

  it('conditions the LM on the image prefix', async () => {
    const state = await fx.model.begin(fx.pixels);
    const { logits, vocab } = await state.step(fx.pixels.map(() => [...fx.model.promptIds]));
    for (let i = 1; i < fx.pixels.length; i++) expect(maxAbsDiff(logits.subarray(0, vocab), logits.subarray(i * vocab, (i + 1) * vocab))).toBeGreaterThan(0.1);
    const tokens = await generateTokens(fx.model, fx.pixels, fx.pixels.map(() => 'same'), greedy({ minLength: 10, maxLength: 10 }));
    expect(new Set(tokens.map((t) => t.join(' '))).size).toBeGreaterThanOrEqual(4);
  });

  it('writes word captions, deterministic per seed and the same alone or in a batch of 5', async () => {
    const seeds = ['run:a', 'run:b', 'run:c', 'run:d', 'run:e'];
    const batch = await fx.captioner.caption(fx.pixels.slice(0, 5), seeds, PAPER_CAPTION_OPTIONS);
    const alone: string[] = [];
    for (let i = 0; i < 5; i++) alone.push(...(await fx.captioner.caption([fx.pixels[i]!], [seeds[i]!], PAPER_CAPTION_OPTIONS)));
    expect(batch).toEqual(alone);
    expect(await fx.captioner.caption(fx.pixels.slice(0, 5), seeds, PAPER_CAPTION_OPTIONS)).toEqual(batch);
    // Other companions and order.
    const mixed = await fx.captioner.caption([fx.pixels[5]!, fx.pixels[3]!, fx.pixels[1]!], ['x', seeds[3]!, seeds[1]!], PAPER_CAPTION_OPTIONS);
    expect(mixed.slice(1)).toEqual([batch[3], batch[1]]);
    for (const c of batch) expect(c).toMatch(/^[a-z]+( [a-z]+)*$/);

    const many = await fx.captioner.caption(new Array<PixelTensor>(8).fill(fx.pixels[1]!), Array.from({ length: 8 }, (_, i) => `seed-${i}`), PAPER_CAPTION_OPTIONS);
    expect(new Set(many).size).toBeGreaterThanOrEqual(7);
  });

  it('respects min/max length in tokens, rows ending at EOS at varied points', async () => {
    await expectLengthBounds(fx.model, fx.pixels, 5);
  });

  it('decodes the same tokens through the KV cache as recomputing prefix + sequence without cache', async () => {
    const batch = fx.pixels.slice(0, 3);
    const n = 12;
    const o = greedy({ minLength: n, maxLength: n });
    const tokens = await generateTokens(fx.model, batch, ['kv:0', 'kv:1', 'kv:2'], o);
    expect(tokens.map((t) => t.length)).toEqual([n, n, n]);
    const prompt = fx.model.promptIds;
    // The recompute feeds image features + prompt + the first t tokens at once; greedy picks each row's token.
    await expectCacheMatchesRecompute(fx.model, batch, tokens, (full, t) =>
      tokens.forEach((row, r) => {
        const logits = full.logits.subarray(r * full.vocab, (r + 1) * full.vocab);
        const history = [...prompt, ...row.slice(0, t)];
        expect(nextToken(logits, { history, generated: t, eosIds: fx.model.eosIds, rng: new SeededRng('unused') }, o)).toBe(row[t]);
      }),
    );
  });

  it('keeps per-row results when finished rows leave the batch and its cache', async () => {
    await expectKeepRowsIsolation(fx.model, fx.pixels, [50, 60, 70], [80, 90]);
  });

  it('continues an optional text prompt (BOS + prompt tokens after the image)', async () => {
    const prompted = await loadCaptionModel(fx.dir, { textPrompt: 'a photo of' });
    try {
      const content = fx.model.tokenizer.encodeOne('a photo of');
      expect(prompted.promptIds[0]).toBe(fx.model.promptIds[0]);
      expect(prompted.promptIds).toEqual(content[0] === fx.model.promptIds[0] ? content : [fx.model.promptIds[0], ...content]);
      expect(prompted.promptIds.length).toBeGreaterThan(2);
      const seeds = ['p:0', 'p:1', 'p:2', 'p:3'];
      const plain = await generateTokens(fx.model, fx.pixels.slice(0, 4), seeds, greedy());
      const withPrompt = await generateTokens(prompted, fx.pixels.slice(0, 4), seeds, greedy());
      const differs = plain.filter((t, i) => JSON.stringify(t) !== JSON.stringify(withPrompt[i])).length;
      expect(differs).toBeGreaterThanOrEqual(3);
      // Batch independence holds with a prompt too.
      expect(await generateTokens(prompted, [fx.pixels[2]!], [seeds[2]!], greedy())).toEqual([withPrompt[2]]);
    } finally {
      await prompted.release();
    }
    const viaCaptioner = await loadCaptioner(fx.dir, { textPrompt: 'a photo of' });
    const caps = await viaCaptioner.caption(fx.pixels.slice(0, 2), ['c:0', 'c:1'], PAPER_CAPTION_OPTIONS);
    await viaCaptioner.release();
    for (const c of caps) expect(c.length).toBeGreaterThan(0);
  });

  it('runs _fp16 exports whose inputs and outputs are float16', async () => {
    const half = await copyFolder(fx.dir, path.join(fx.scratch, 'fp16'));
    for (const name of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
      await editOnnx(path.join(half, `onnx/${name}.onnx`), float16Io, path.join(half, `onnx/${name}_fp16.onnx`));
      await fs.rm(path.join(half, `onnx/${name}.onnx`));
    }
    const fp16 = await loadCaptionModel(half, { dtype: 'fp16' });
    try {
      const batch = fx.pixels.slice(0, 2);
      const a = await fx.model.begin(batch);
      const b = await fp16.begin(batch);
      for (const feed of [[[...fx.model.promptIds], [...fx.model.promptIds]], [[60], [70]], [[80], [90]]]) {
        const [x, y] = [await a.step(feed), await b.step(feed)];
        expect(maxAbsDiff(x.logits, y.logits)).toBeLessThan(0.05);
      }
      a.keepRows([1]);
      b.keepRows([1]);
      expect(maxAbsDiff((await a.step([[100]])).logits, (await b.step([[100]])).logits)).toBeLessThan(0.05);
      const caps = await generateTokens(fp16, batch, ['h:0', 'h:1'], PAPER_CAPTION_OPTIONS);
      for (const t of caps) expect(t.length).toBeGreaterThanOrEqual(PAPER_CAPTION_OPTIONS.minLength);
    } finally {
      await fp16.release();
    }
  });

  describe('refuses broken folders at load, naming the file', () => {
    const variant = async (name: string, edit: (d: string) => Promise<void>): Promise<string> => {
      const d = await copyFolder(fx.dir, path.join(fx.scratch, name));
      await edit(d);
      return d;
    };
    const editConfig = (d: string, change: (c: { text_config: Record<string, unknown> } & Record<string, unknown>) => void): Promise<void> =>
      fs.readFile(path.join(d, 'config.json'), 'utf8').then(async (t) => {
        const c = JSON.parse(t) as { text_config: Record<string, unknown> } & Record<string, unknown>;
        change(c);
        await fs.writeFile(path.join(d, 'config.json'), JSON.stringify(c));
      });
    const load = (d: string, opts: LoadCaptionerOptions = {}): Promise<Captioner> => loadCaptioner(d, opts);

    it('missing embed_tokens', async () => {
      const d = await variant('no-embed', (x) => fs.rm(path.join(x, 'onnx/embed_tokens.onnx')));
      const err = await loadError(load(d));
      expect(err.message).toContain(path.join(d, 'onnx/embed_tokens.onnx'));
      expect(err.message).toMatch(/missing/);
    });

    it('an image side whose LM hidden size differs from the decoder', async () => {
      const d = await variant('narrow-image', (x) => fs.writeFile(path.join(x, 'onnx/vision_encoder.onnx'), tinyBlip2VisionEncoder(new WeightInit(new SeededRng('narrow')), 48)));
      const err = await loadError(load(d));
      expect(err.message).toContain(path.join(d, 'onnx/vision_encoder.onnx'));
      expect(err.message).toMatch(/image_features' is 48 wide .* 64-wide/);
    });

    it('a config whose LM hidden size or layer count disagrees with the decoder', async () => {
      const wide = await variant('wide-config', (x) => editConfig(x, (c) => Object.assign(c.text_config, { hidden_size: 80, word_embed_proj_dim: 80 })));
      const err = await loadError(load(wide));
      expect(err.message).toContain(path.join(wide, 'onnx/decoder_model_merged.onnx'));
      expect(err.message).toMatch(/inputs_embeds' is 64 wide .* 80-wide .*word_embed_proj_dim/);

      const deep = await variant('deep-config', (x) => editConfig(x, (c) => Object.assign(c.text_config, { num_hidden_layers: 3 })));
      expect((await loadError(load(deep))).message).toMatch(/decoder_model_merged\.onnx: has 2 cached layers but .* says 3/);
    });

    it('a BLIP-2 with an encoder-decoder LM (flan-t5)', async () => {
      const t5 = await variant('t5', (x) => editConfig(x, (c) => Object.assign(c, { use_decoder_only_language_model: false })));
      expect((await loadError(load(t5))).message).toContain(path.join(t5, 'config.json'));
    });
  });
});
