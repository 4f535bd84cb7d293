import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadClip } from '../../../lib/models/clip';
import { ModelFolder } from '../../../lib/models/model-folder';
import { clipScore, cosine } from '../../../lib/models/similarity';
import { TextTokenizer } from '../../../lib/models/tokenizer';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import type { ClipScorer } from '../../../lib/models/types';
import { tempDir } from '../../helpers/paths';
import { editOnnx, float16Io } from './onnx-edit';

const norm = (v: Float32Array): number => Math.hypot(...v);
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

function image(r: number, g: number, b: number, width = 320, height = 240): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .composite([{ input: { create: { width: 60, height: 60, channels: 3, background: { r: b, g: r, b: g } } }, left: 30, top: 40 }])
    .jpeg()
    .toBuffer();
}

describe('CLIP scorer', () => {
  const root = tempDir('recaption-clip-');
  let clipDir: string;
  let clip: ClipScorer;

  beforeAll(async () => {
    clipDir = (await generateTinyModels(root)).clipDir;
    clip = await loadClip(clipDir);
  });
  afterAll(async () => {
    await clip.release();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('returns unit-norm embeddings of the projection width', async () => {
    expect(clip.dim).toBe(32);
    expect(clip.modelDir).toBe(path.resolve(clipDir));
    const pixels = await Promise.all([image(200, 30, 30), image(20, 180, 40)].map(async (b) => clip.preprocess(await b)));
    const images = await clip.embedImages(pixels);
    const texts = await clip.embedTexts(['a red square', 'a photo of a dog on a beach', '']);
    for (const e of [...images, ...texts]) {
      expect(e).toHaveLength(32);
      expect(norm(e)).toBeCloseTo(1, 5);
    }
    expect(cosine(images[0]!, images[1]!)).toBeLessThan(0.9999);
    expect(cosine(texts[0]!, texts[1]!)).toBeLessThan(0.9999);
  });

  it('is padding-invariant: a text embeds the same alone and next to a longer text', async () => {
    const [alone] = await clip.embedTexts(['a cat sitting on a table']);
    const [batched] = await clip.embedTexts(['a cat sitting on a table', 'a very long caption about many things '.repeat(6)]);
    expect(maxAbsDiff(alone!, batched!)).toBeLessThan(1e-5);

    // Straight at the ONNX text tower: extra EOS padding after the first EOS leaves text_embeds unchanged.
    const tokenizer = await TextTokenizer.load(await ModelFolder.open(clipDir));
    const ids = tokenizer.encodeOne('a man riding a wave');
    const session = await ort.InferenceSession.create(path.join(clipDir, 'onnx/text_model.onnx'));
    const run = async (row: number[]): Promise<Float32Array> => {
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(row.map(BigInt)), [1, row.length]) });
      return out['text_embeds']!.data as Float32Array;
    };
    const padded = [...ids, ...new Array<number>(9).fill(tokenizer.padId)];
    expect(maxAbsDiff(await run(ids), await run(padded))).toBeLessThan(1e-5);
    await session.release();
  });

  it('truncates long texts to the 77-token context keeping EOS last, like the reference', async () => {
    const tokenizer = await TextTokenizer.load(await ModelFolder.open(clipDir));
    const long = 'a dog and a cat on a red bus '.repeat(20);
    const ids = tokenizer.encodeOne(long, 77);
    const full = tokenizer.encodeOne(long);
    expect(full.length).toBeGreaterThan(77);
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(full[0]); // <|startoftext|>
    expect(ids[76]).toBe(full[full.length - 1]); // <|endoftext|>
    expect(ids.slice(0, 76)).toEqual(full.slice(0, 76));
    const [e] = await clip.embedTexts([long]);
    expect(norm(e!)).toBeCloseTo(1, 5);
  });

  it('gives the same image embedding alone or in a batch, across batch splits', async () => {
    const pixels = await Promise.all([image(1, 2, 3), image(250, 120, 0), image(9, 99, 199), image(60, 60, 60)].map(async (b) => clip.preprocess(await b)));
    const batched = await clip.embedImages(pixels);
    const small = await loadClip(clipDir, { maxBatchSize: 3 });
    const split = await small.embedImages(pixels);
    await small.release();
    for (let i = 0; i < pixels.length; i++) {
      const [alone] = await clip.embedImages([pixels[i]!]);
      expect(maxAbsDiff(alone!, batched[i]!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(split[i]!, batched[i]!)).toBeLessThan(1e-5);
    }
  });

  it('runs _fp16 exports whose inputs and outputs are float16', async () => {
    for (const name of ['vision_model', 'text_model']) {
      await editOnnx(path.join(clipDir, `onnx/${name}.onnx`), float16Io, path.join(clipDir, `onnx/${name}_fp16.onnx`));
    }
    const half = await loadClip(clipDir, { dtype: 'fp16' });
    const pixels = [await clip.preprocess(await image(200, 30, 30))];
    const [a] = await clip.embedImages(pixels);
    const [b] = await half.embedImages(pixels);
    const [ta] = await clip.embedTexts(['two dogs playing']);
    const [tb] = await half.embedTexts(['two dogs playing']);
    await half.release();
    expect(cosine(a!, b!)).toBeGreaterThan(0.999);
    expect(cosine(ta!, tb!)).toBeGreaterThan(0.999);
    expect(norm(b!)).toBeCloseTo(1, 5);
  });

  it('computes CLIPScore as 2.5 * max(cos, 0)', () => {
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 1], [2, 2])).toBeCloseTo(1, 12);
    expect(cosine([0, 0], [1, 2])).toBe(0);
    expect(clipScore(0.3)).toBeCloseTo(0.75, 12);
    expect(clipScore(-0.2)).toBe(0);
    expect(() => cosine([1], [1, 2])).toThrow(/length/);
  });
});
