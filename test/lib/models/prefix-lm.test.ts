import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import type { CaptionModel } from '../../../lib/models/caption-model';
import { loadCaptioner, loadCaptionModel, type LoadCaptionerOptions } from '../../../lib/models/captioner';
import { generateTokens } from '../../../lib/models/generation';
import { SeededRng } from '../../../lib/models/rng';
import { nextToken } from '../../../lib/models/sampling';
import { tinyBlip2Files, tinyBlip2VisionEncoder } from '../../../lib/models/tiny/blip2-model';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import { WeightInit } from '../../../lib/models/tiny/layers';
import { PAPER_CAPTION_OPTIONS, type Captioner, type CaptionOptions, type PixelTensor } from '../../../lib/models/types';
import { tempDir, TINY_MODELS } from '../../helpers/paths';
import { copyFolder, editOnnx, float16Io } from './onnx-edit';
import { openCaptioner } from '../../helpers/images';


const greedy = (o: Partial<CaptionOptions> = {}): CaptionOptions => ({ ...PAPER_CAPTION_OPTIONS, topK: 1, ...o });
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

async function loadError(p: Promise<unknown>): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).type).toBe('BadModel');
  return err as InputError;
}

describe('captioner (prefix-LM, BLIP-2 layout)', () => {
  const root = tempDir('recaption-prefix-lm-');
  let dir: string;
  let captioner: Captioner;
  let model: CaptionModel;
  let pixels: PixelTensor[];

  beforeAll(async () => {
    dir = (await generateTinyModels(TINY_MODELS)).blip2Dir;
    ({ captioner, model, pixels } = await openCaptioner(dir));
  });
  afterAll(async () => {
    await captioner.release();
    await model.release();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('is picked by model_type "blip-2", starts at BOS and ends at the newline token like BLIP-2 OPT', () => {
    expect(captioner.family).toBe('prefix-lm');
    expect(captioner.modelDir).toBe(path.resolve(dir));
    expect(model.promptIds).toEqual([model.tokenizer.tokenToId('</s>')]);
    expect(model.eosIds).toEqual([model.tokenizer.tokenToId('\u010a')]);
    expect(pixels[0]!.dims).toEqual([3, 224, 224]);
  });

  it('is generated deterministically: seed 0 rebuilds the folder byte for byte', async () => {
    const files = tinyBlip2Files(new WeightInit(new SeededRng('tiny-blip2:0')));
    for (const [rel, content] of Object.entries(files)) expect((await fs.readFile(path.join(dir, rel))).equals(Buffer.from(content))).toBe(true);
    const other = tinyBlip2Files(new WeightInit(new SeededRng('tiny-blip2:7')));
    expect(Buffer.from(other['onnx/decoder_model_merged.onnx']!).equals(Buffer.from(files['onnx/decoder_model_merged.onnx']!))).toBe(false);
  });

  it('conditions the LM on the image prefix', async () => {
    const state = await model.begin(pixels);
    const { logits, vocab } = await state.step(pixels.map(() => [...model.promptIds]));
    for (let i = 1; i < pixels.length; i++) expect(maxAbsDiff(logits.subarray(0, vocab), logits.subarray(i * vocab, (i + 1) * vocab))).toBeGreaterThan(0.1);
    const tokens = await generateTokens(model, pixels, pixels.map(() => 'same'), greedy({ minLength: 10, maxLength: 10 }));
    expect(new Set(tokens.map((t) => t.join(' '))).size).toBeGreaterThanOrEqual(4);
  });

  it('writes word captions, deterministic per seed and the same alone or in a batch of 5', async () => {
    const seeds = ['run:a', 'run:b', 'run:c', 'run:d', 'run:e'];
    const batch = await captioner.caption(pixels.slice(0, 5), seeds, PAPER_CAPTION_OPTIONS);
    const alone: string[] = [];
    for (let i = 0; i < 5; i++) alone.push(...(await captioner.caption([pixels[i]!], [seeds[i]!], PAPER_CAPTION_OPTIONS)));
    expect(batch).toEqual(alone);
    expect(await captioner.caption(pixels.slice(0, 5), seeds, PAPER_CAPTION_OPTIONS)).toEqual(batch);
    // Other companions and order.
    const mixed = await captioner.caption([pixels[5]!, pixels[3]!, pixels[1]!], ['x', seeds[3]!, seeds[1]!], PAPER_CAPTION_OPTIONS);
    expect(mixed.slice(1)).toEqual([batch[3], batch[1]]);
    for (const c of batch) expect(c).toMatch(/^[a-z]+( [a-z]+)*$/);

    const many = await captioner.caption(new Array<PixelTensor>(8).fill(pixels[1]!), Array.from({ length: 8 }, (_, i) => `seed-${i}`), PAPER_CAPTION_OPTIONS);
    expect(new Set(many).size).toBeGreaterThanOrEqual(7);
  });

  it('respects min/max length in tokens, rows ending at EOS at varied points', async () => {
    const seeds = Array.from({ length: 24 }, (_, i) => `len-${i}`);
    const many = seeds.map((_, i) => pixels[i % pixels.length]!);
    const lengths = (await generateTokens(model, many, seeds, PAPER_CAPTION_OPTIONS)).map((t) => t.length);
    for (const n of lengths) {
      expect(n).toBeGreaterThanOrEqual(PAPER_CAPTION_OPTIONS.minLength);
      expect(n).toBeLessThanOrEqual(PAPER_CAPTION_OPTIONS.maxLength);
    }
    expect(Math.min(...lengths)).toBeLessThan(PAPER_CAPTION_OPTIONS.maxLength);
    expect(new Set(lengths).size).toBeGreaterThan(5);

    for (const t of await generateTokens(model, many, seeds, { ...PAPER_CAPTION_OPTIONS, minLength: 12, maxLength: 15 })) {
      expect(t.length).toBeGreaterThanOrEqual(12);
      expect(t.length).toBeLessThanOrEqual(15);
      for (const id of t) expect(model.eosIds).not.toContain(id);
    }
    for (const t of await generateTokens(model, many.slice(0, 5), seeds.slice(0, 5), { ...PAPER_CAPTION_OPTIONS, minLength: 7, maxLength: 7 })) expect(t).toHaveLength(7);
  });

  it('decodes the same tokens through the KV cache as recomputing prefix + sequence without cache', async () => {
    const batch = pixels.slice(0, 3);
    const n = 12;
    const o = greedy({ minLength: n, maxLength: n });
    const tokens = await generateTokens(model, batch, ['kv:0', 'kv:1', 'kv:2'], o);
    expect(tokens.map((t) => t.length)).toEqual([n, n, n]);
    const prompt = model.promptIds;

    const cached = await model.begin(batch);
    let step = await cached.step(batch.map(() => [...prompt]));
    for (let t = 0; t < n; t++) {
      // Image features + prompt + the first t tokens, all fed at once with an empty cache.
      const fresh = await model.begin(batch);
      const full = await fresh.step(tokens.map((row) => [...prompt, ...row.slice(0, t)]));
      expect(full.vocab).toBe(step.vocab);
      expect(maxAbsDiff(step.logits, full.logits)).toBeLessThan(1e-4);
      tokens.forEach((row, r) => {
        const logits = full.logits.subarray(r * full.vocab, (r + 1) * full.vocab);
        const history = [...prompt, ...row.slice(0, t)];
        expect(nextToken(logits, { history, generated: t, eosIds: model.eosIds, rng: new SeededRng('unused') }, o)).toBe(row[t]);
      });
      if (t < n - 1) step = await cached.step(tokens.map((row) => [row[t]!]));
    }
  });

  it('keeps per-row results when finished rows leave the batch and its cache', async () => {
    const prompt = [...model.promptIds];
    const cached = await model.begin(pixels.slice(0, 3));
    await cached.step([prompt, prompt, prompt]);
    const three = await cached.step([[50], [60], [70]]);
    cached.keepRows([0, 2]);
    expect(cached.rows).toBe(2);
    const two = await cached.step([[80], [90]]);

    const ref = await model.begin([pixels[2]!]);
    await ref.step([prompt]);
    const v = three.vocab;
    expect(maxAbsDiff(three.logits.subarray(2 * v, 3 * v), (await ref.step([[70]])).logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(two.logits.subarray(v, 2 * v), (await ref.step([[90]])).logits)).toBeLessThan(1e-4);
  });

  it('continues an optional text prompt (BOS + prompt tokens after the image)', async () => {
    const prompted = await loadCaptionModel(dir, { textPrompt: 'a photo of' });
    try {
      const content = model.tokenizer.encodeOne('a photo of');
      expect(prompted.promptIds[0]).toBe(model.promptIds[0]);
      expect(prompted.promptIds).toEqual(content[0] === model.promptIds[0] ? content : [model.promptIds[0], ...content]);
      expect(prompted.promptIds.length).toBeGreaterThan(2);
      const seeds = ['p:0', 'p:1', 'p:2', 'p:3'];
      const plain = await generateTokens(model, pixels.slice(0, 4), seeds, greedy());
      const withPrompt = await generateTokens(prompted, pixels.slice(0, 4), seeds, greedy());
      const differs = plain.filter((t, i) => JSON.stringify(t) !== JSON.stringify(withPrompt[i])).length;
      expect(differs).toBeGreaterThanOrEqual(3);
      // Batch independence holds with a prompt too.
      expect(await generateTokens(prompted, [pixels[2]!], [seeds[2]!], greedy())).toEqual([withPrompt[2]]);
    } finally {
      await prompted.release();
    }
    const viaCaptioner = await loadCaptioner(dir, { textPrompt: 'a photo of' });
    const caps = await viaCaptioner.caption(pixels.slice(0, 2), ['c:0', 'c:1'], PAPER_CAPTION_OPTIONS);
    await viaCaptioner.release();
    for (const c of caps) expect(c.length).toBeGreaterThan(0);
  });

  it('runs _fp16 exports whose inputs and outputs are float16', async () => {
    const half = await copyFolder(dir, path.join(root, 'fp16'));
    for (const name of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
      await editOnnx(path.join(half, `onnx/${name}.onnx`), float16Io, path.join(half, `onnx/${name}_fp16.onnx`));
      await fs.rm(path.join(half, `onnx/${name}.onnx`));
    }
    const fp16 = await loadCaptionModel(half, { dtype: 'fp16' });
    try {
      const batch = pixels.slice(0, 2);
      const a = await model.begin(batch);
      const b = await fp16.begin(batch);
      for (const feed of [[[...model.promptIds], [...model.promptIds]], [[60], [70]], [[80], [90]]]) {
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
      const d = await copyFolder(dir, path.join(root, name));
      await edit(d);
      return d;
    };
    const editConfig = (d: string, change: (c: { text_config: Record<string, unknown> } & Record<string, unknown>) => void): Promise<void> =>
      fs.readFile(path.join(d, 'config.json'), 'utf8').then(async (t) => {
        const c = JSON.parse(t) as { text_config: Record<string, unknown> } & Record<string, unknown>;
        change(c);
        await fs.writeFile(path.join(d, 'config.json'), JSON.stringify(c));
      });
    const load = (d: string, opts: LoadCaptionerOptions = {}): Promise<unknown> => loadCaptioner(d, opts);

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
