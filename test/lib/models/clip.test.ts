import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadClip } from '../../../lib/models/clip';
import { ModelFolder } from '../../../lib/models/model-folder';
import { clipScore, cosine } from '../../../lib/models/similarity';
import { TextTokenizer } from '../../../lib/models/tokenizer';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import type { ClipScorer } from '../../../lib/models/types';
import { tempDir } from '../../helpers/paths';
import { maxAbsDiff } from './max-abs-diff';
import { copyFolder, editOnnx, float16Io, renameValue } from './onnx-edit';

const norm = (v: Float32Array): number => Math.hypot(...v);

/** One row of ids straight through a text tower ONNX file, L2-normalised like the scorer's output. */
async function runTextTower(file: string, ids: number[], output = 'text_embeds'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
  await session.release();
  const v = Float32Array.from(out[output]!.data as Float32Array);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

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

  it('embeds a 200-word caption exactly as its reference-truncated ids (BOS + first 75 tokens + EOS)', async () => {
    const words = ['a', 'dog', 'and', 'cat', 'on', 'the', 'red', 'bus', 'near', 'tree'];
    const caption = Array.from({ length: 200 }, (_, i) => words[i % words.length]).join(' ');
    // Reference ids built from the raw tokenizer, independently of TextTokenizer.encodeOne.
    const raw = new Tokenizer(JSON.parse(await fs.readFile(path.join(clipDir, 'tokenizer.json'), 'utf8')), {});
    const content = raw.encode(caption, { add_special_tokens: false }).ids;
    expect(content.length).toBeGreaterThan(75);
    const reference = [raw.token_to_id('<|startoftext|>')!, ...content.slice(0, 75), raw.token_to_id('<|endoftext|>')!];
    const direct = await runTextTower(path.join(clipDir, 'onnx/text_model.onnx'), reference);
    const [e] = await clip.embedTexts([caption]);
    expect(maxAbsDiff(e!, direct)).toBeLessThan(1e-5);
    // and the cut really is at 75: a caption differing only after token 75 embeds the same
    const [same] = await clip.embedTexts([`${caption} zebra giraffe`]);
    expect(maxAbsDiff(e!, same!)).toBeLessThan(1e-6);
  });

  it('SigLIP folders truncate at the 64-token context when config.json leaves max_position_embeddings to the default', async () => {
    // tiny-clip dressed as a SigLIP split export: pooler_output outputs, model_type siglip, no max_position_embeddings
    const dir = await copyFolder(clipDir, path.join(root, 'siglip-like'));
    await editOnnx(path.join(dir, 'onnx/vision_model.onnx'), (m) => renameValue(m, 'image_embeds', 'pooler_output'));
    await editOnnx(path.join(dir, 'onnx/text_model.onnx'), (m) => renameValue(m, 'text_embeds', 'pooler_output'));
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as { text_config: Record<string, unknown> };
    delete config.text_config['max_position_embeddings'];
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'siglip' }));
    const tokConfig = JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokConfig, model_max_length: 64 }));
    const siglip = await loadClip(dir);
    const caption = 'a dog and a cat on the red bus near the tree '.repeat(10);
    const raw = new Tokenizer(JSON.parse(await fs.readFile(path.join(dir, 'tokenizer.json'), 'utf8')), {});
    const content = raw.encode(caption, { add_special_tokens: false }).ids;
    const eos = raw.token_to_id('<|endoftext|>')!;
    const [e] = await siglip.embedTexts([caption]);
    await siglip.release();
    const direct = await runTextTower(path.join(dir, 'onnx/text_model.onnx'), [raw.token_to_id('<|startoftext|>')!, ...content.slice(0, 62), eos], 'pooler_output');
    expect(maxAbsDiff(e!, direct)).toBeLessThan(1e-5);
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
