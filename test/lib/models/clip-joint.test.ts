import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadClip } from '../../../lib/models/clip';
import { decodeModel, extractSubGraph } from '../../../lib/models/clip-joint';
import { cosine } from '../../../lib/models/similarity';
import { generateTinyModels, type TinyModelPaths } from '../../../lib/models/tiny/generate';
import type { ClipScorer, PixelTensor } from '../../../lib/models/types';
import { tempDir } from '../../helpers/paths';
import { loadRefusal } from './load-refusal';
import { maxAbsDiff } from './max-abs-diff';
import { copyFolder, editOnnx, graphOf, renameValue } from './onnx-edit';

const norm = (v: Float32Array): number => Math.hypot(...v);

function image(r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width: 300, height: 260, channels: 3, background: { r, g, b } } })
    .composite([{ input: { create: { width: 70, height: 50, channels: 3, background: { r: g, g: b, b: r } } }, left: 20, top: 90 }])
    .png()
    .toBuffer();
}

const TEXTS = ['a red square on a green field', 'two dogs playing in the snow', 'a man riding a wave on a surfboard', ''];
/** 200 words: far more than 75 BPE tokens. */
const LONG = Array.from({ length: 200 }, (_, i) => ['a', 'dog', 'and', 'cat', 'on', 'the', 'red', 'bus', 'near', 'tree'][i % 10]).join(' ');

describe('CLIP joint export (onnx/model.onnx)', () => {
  const root = tempDir('recaption-clip-joint-');
  let models: TinyModelPaths;
  let joint: ClipScorer;
  let split: ClipScorer;
  let pixels: PixelTensor[];
  let n = 0;
  const copy = (from: string): Promise<string> => copyFolder(from, path.join(root, `copy-${n++}`));

  beforeAll(async () => {
    models = await generateTinyModels(path.join(root, 'models'));
    joint = await loadClip(models.clipJointDir);
    split = await loadClip(models.clipDir);
    pixels = await Promise.all([image(200, 30, 30), image(20, 180, 40), image(90, 90, 250)].map(async (b) => joint.preprocess(await b)));
  });
  afterAll(async () => {
    await Promise.all([joint.release(), split.release()]);
    await fs.rm(root, { recursive: true, force: true });
  });

  it('gives the split export’s embeddings and cosines, L2-normalised', async () => {
    expect(joint.dim).toBe(32);
    expect(joint.modelDir).toBe(path.resolve(models.clipJointDir));
    const [ji, si, jt, st] = await Promise.all([joint.embedImages(pixels), split.embedImages(pixels), joint.embedTexts(TEXTS), split.embedTexts(TEXTS)]);
    for (const [a, b] of [...ji.map((v, i) => [v, si[i]!]), ...jt.map((v, i) => [v, st[i]!])] as const) {
      expect(a).toHaveLength(32);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
      expect(Math.abs(norm(a) - 1)).toBeLessThan(1e-5);
    }
    for (let i = 0; i < ji.length; i++) {
      for (let t = 0; t < jt.length; t++) expect(Math.abs(cosine(ji[i]!, jt[t]!) - cosine(si[i]!, st[t]!))).toBeLessThan(1e-5);
    }
    // the towers are not degenerate: different inputs, different embeddings
    expect(cosine(ji[0]!, ji[1]!)).toBeLessThan(0.9999);
    expect(cosine(jt[0]!, jt[1]!)).toBeLessThan(0.9999);
  });

  it('matches the whole joint graph: logits_per_image = exp(logit_scale) · our cosine', async () => {
    const file = path.join(models.clipJointDir, 'onnx/model.onnx');
    const model = onnx.ModelProto.decode(await fs.readFile(file));
    const scaleInit = graphOf(model).initializer.find((t) => t.name === 'logit_scale')!;
    const scale = Math.exp(new Float32Array(Uint8Array.from(scaleInit.rawData!).buffer)[0]!);
    expect(scale).toBeGreaterThan(10); // exp(2.6592) ≈ 14.29: a wrong scale cannot pass by accident

    const tokenizer = new Tokenizer(JSON.parse(await fs.readFile(path.join(models.clipJointDir, 'tokenizer.json'), 'utf8')), {});
    const eos = tokenizer.token_to_id('<|endoftext|>')!;
    const rows = TEXTS.map((t) => tokenizer.encode(t).ids);
    const len = Math.max(...rows.map((r) => r.length));
    const ids = rows.flatMap((r) => [...r, ...new Array<number>(len - r.length).fill(eos)]);
    const mask = rows.flatMap((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(len - r.length).fill(0)]);
    const px = new Float32Array(pixels.flatMap((p) => Array.from(p.data)));
    const session = await ort.InferenceSession.create(file);
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [TEXTS.length, len]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [TEXTS.length, len]),
      pixel_values: new ort.Tensor('float32', px, [pixels.length, 3, 224, 224]),
    });
    await session.release();
    expect(out['logits_per_image']!.dims).toEqual([pixels.length, TEXTS.length]);
    const logits = out['logits_per_image']!.data as Float32Array;
    const images = await joint.embedImages(pixels);
    const texts = await joint.embedTexts(TEXTS);
    for (let i = 0; i < pixels.length; i++) {
      for (let t = 0; t < TEXTS.length; t++) expect(Math.abs(logits[i * TEXTS.length + t]! - scale * cosine(images[i]!, texts[t]!))).toBeLessThan(1e-4);
    }
  });

  it('cuts the joint graph into towers that share nothing they do not need', async () => {
    const file = path.join(models.clipJointDir, 'onnx/model.onnx');
    const model = decodeModel(await fs.readFile(file), file);
    const total = graphOf(model).node.length;
    const img = extractSubGraph(model, ['image_embeds'], file);
    const txt = extractSubGraph(model, ['text_embeds'], file);
    expect(img.inputs.map((v) => v.name)).toEqual(['pixel_values']);
    expect(txt.inputs.map((v) => v.name)).toEqual(['input_ids', 'attention_mask']); // the mask really feeds the text tower
    const inits = (s: typeof img): string[] => (s.model.graph!.initializer ?? []).map((t) => t.name ?? '');
    expect(inits(img).some((name) => name.startsWith('text.'))).toBe(false);
    expect(inits(txt).some((name) => name.startsWith('vision.'))).toBe(false);
    expect(inits(img)).toContain('visual_projection.weight');
    expect(inits(txt)).not.toContain('logit_scale');
    const nodes = (s: typeof img): number => s.model.graph!.node!.length;
    expect(nodes(img) + nodes(txt)).toBeLessThan(total);
  });

  it('prefers the split files when both layouts are present', async () => {
    const dir = await copy(models.clipDir);
    await fs.writeFile(path.join(dir, 'onnx/model.onnx'), 'not an onnx graph'); // never read
    const both = await loadClip(dir);
    const [a] = await both.embedTexts([TEXTS[1]!]);
    const [b] = await split.embedTexts([TEXTS[1]!]);
    await both.release();
    expect(maxAbsDiff(a!, b!)).toBeLessThan(1e-6);
  });

  it('refuses a folder with neither layout, naming what it expected', async () => {
    const dir = await copy(models.clipJointDir);
    await fs.rm(path.join(dir, 'onnx/model.onnx'));
    const err = await loadRefusal(loadClip(dir));
    expect(err.type).toBe('BadModel');
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/onnx\/vision_model\.onnx \+ onnx\/text_model\.onnx \(split export\) or onnx\/model\.onnx \(joint export\)/);
  });

  it('refuses a joint model.onnx without image_embeds, naming the file', async () => {
    const dir = await copy(models.clipJointDir);
    const file = path.join(dir, 'onnx/model.onnx');
    await editOnnx(file, (m) => renameValue(m, 'image_embeds', 'image_features'));
    const err = await loadRefusal(loadClip(dir));
    expect(err.type).toBe('BadModel');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/missing output 'image_embeds' \(model has outputs: .*image_features/);
  });

  it('refuses a joint model.onnx whose pixel_values has the wrong rank, naming the file', async () => {
    const dir = await copy(models.clipJointDir);
    const file = path.join(dir, 'onnx/model.onnx');
    await editOnnx(file, (m) => {
      graphOf(m).input.find((i) => i.name === 'pixel_values')!.type!.tensorType!.shape!.dim!.pop();
    });
    const err = await loadRefusal(loadClip(dir));
    expect(err.type).toBe('BadModel');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/input 'pixel_values' has rank 3 .*expected rank 4/);
  });

  it('refuses a joint model.onnx whose text embedding is not the projection width', async () => {
    const dir = await copy(models.clipJointDir);
    const config = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8')) as { projection_dim: number };
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, projection_dim: 48 }));
    const err = await loadRefusal(loadClip(dir));
    expect(err.message).toContain(path.join(dir, 'onnx/model.onnx'));
    expect(err.message).toMatch(/output 'image_embeds' has size 32 on axis 1, expected 48/);
  });

  it('loads a joint graph whose weights live in external data (model.onnx_data)', async () => {
    const dir = await copy(models.clipJointDir);
    const file = path.join(dir, 'onnx/model.onnx');
    // What exporters write past protobuf's 2 GB limit: raw weights in one side file, addressed by offset.
    const chunks: Uint8Array[] = [];
    let offset = 0;
    await editOnnx(file, (m) => {
      for (const t of graphOf(m).initializer) {
        if (!t.rawData || t.rawData.length < 1024) continue;
        t.externalData = [
          { key: 'location', value: 'model.onnx_data' },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(t.rawData.length) },
        ];
        t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        chunks.push(Uint8Array.from(t.rawData));
        offset += t.rawData.length;
        t.rawData = new Uint8Array(0);
      }
    });
    await fs.writeFile(path.join(dir, 'onnx/model.onnx_data'), Buffer.concat(chunks));
    expect((await fs.stat(file)).size).toBeLessThan(offset / 10);
    const external = await loadClip(dir);
    const [a] = await external.embedImages(pixels.slice(0, 1));
    const [t] = await external.embedTexts([TEXTS[0]!]);
    await external.release();
    const [b] = await split.embedImages(pixels.slice(0, 1));
    const [u] = await split.embedTexts([TEXTS[0]!]);
    expect(maxAbsDiff(a!, b!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(t!, u!)).toBeLessThan(1e-5);
  });

  it('truncates a 200-word caption like the reference: BOS + first 75 tokens + EOS', async () => {
    const tokenizer = new Tokenizer(JSON.parse(await fs.readFile(path.join(models.clipJointDir, 'tokenizer.json'), 'utf8')), {});
    const content = tokenizer.encode(LONG, { add_special_tokens: false }).ids;
    expect(content.length).toBeGreaterThan(200);
    const reference = [tokenizer.token_to_id('<|startoftext|>')!, ...content.slice(0, 75), tokenizer.token_to_id('<|endoftext|>')!];
    // the reference-truncated ids, fed straight to the whole joint graph
    const session = await ort.InferenceSession.create(path.join(models.clipJointDir, 'onnx/model.onnx'));
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(reference.map(BigInt)), [1, 77]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(77).fill(1n), [1, 77]),
      pixel_values: new ort.Tensor('float32', pixels[0]!.data, [1, 3, 224, 224]),
    });
    await session.release();
    const [e] = await joint.embedTexts([LONG]);
    expect(maxAbsDiff(e!, out['text_embeds']!.data as Float32Array)).toBeLessThan(1e-5);
  });
});
