/**
 * The decode loop inside ONNX Runtime (lib/models/generation-graph): for each caption family, one run of the
 * generation graph gives exactly the JS loop's tokens on CPU fp32, over seeds, batch sizes and option sets — the
 * JS loop run by a second model loaded with `generation: 'js'`, since a graph-route model opens no session for
 * the per-step decoder (its weights are in the graph). The tiny decoders are Optimum-style merged graphs whose If
 * branches read outer values, so these runs also cover inlining nested subgraphs into the Loop body, and their
 * weights are referenced in their files rather than copied into the graph. Plus the route: forced JS loop, a
 * graph that cannot be built (JS loop with the reason, step decoder opened then), float16 I/O.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import { InputError } from '../../../lib/errors';
import type { CaptionModel } from '../../../lib/models/caption-model';
import { loadCaptionModel, loadCaptioner } from '../../../lib/models/captioner';
import { generateTokens, generateTokensJs } from '../../../lib/models/generation';
import * as ort from 'onnxruntime-node';
import { modelInterface } from '../../../lib/models/families/decoder-source';
import { GENERATION_ENV, readModel } from '../../../lib/models/generation-graph/graph-generator';
import { MIN_REFERENCE_BYTES } from '../../../lib/models/generation-graph/file-weights';
import { generateTinyModels } from '../../../lib/models/tiny/generate';
import type { CaptionOptions, PixelTensor } from '../../../lib/models/types';
import { randomPhoto } from '../../helpers/images';
import { TINY_MODELS, tempDir } from '../../helpers/paths';
import { copyFolder, editOnnx, float16Io, graphOf } from './onnx-edit';

const OPTION_SETS: Record<string, CaptionOptions> = {
  paper: PAPER_CAPTION_OPTIONS,
  greedy: { topK: 50, temperature: 0, minLength: 0, maxLength: 30 },
  penalty: { topK: 8, temperature: 1.2, minLength: 0, maxLength: 25, repetitionPenalty: 1.8 },
  'no top-k': { topK: 0, temperature: 0.9, minLength: 3, maxLength: 16, repetitionPenalty: 1 },
  'fixed length': { topK: 20, temperature: 1, minLength: 12, maxLength: 12, repetitionPenalty: 1.3 },
};

const FAMILIES = [
  ['vision-encoder-decoder', 'tiny-vit-gpt2'],
  ['florence2', 'tiny-florence2'],
  ['prefix-lm', 'tiny-blip2'],
] as const;

async function photos(model: CaptionModel, n: number): Promise<PixelTensor[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => model.preprocess(await randomPhoto(i))));
}

/** The files of a model folder's sessions only the JS loop steps with. */
const stepFiles = (dir: string, family: string): string[] =>
  ['decoder_model_merged', ...(family === 'vision-encoder-decoder' ? [] : ['embed_tokens'])].map((n) => path.join(dir, `onnx/${n}.onnx`));

describe.each(FAMILIES)('generation graph (%s)', (family, folder) => {
  const dir = path.join(TINY_MODELS, folder);
  let model: CaptionModel;
  /** the same folder on the JS loop: the reference, and what a graph-route model does not hold */
  let js: CaptionModel;
  let pixels: PixelTensor[];
  beforeAll(async () => {
    await generateTinyModels(TINY_MODELS);
    model = await loadCaptionModel(dir, { generation: 'graph' });
    js = await loadCaptionModel(dir, { generation: 'js' });
    pixels = await photos(model, 6);
  });
  afterAll(() => Promise.all([model.release(), js.release()]));

  it('is the route the model loads with, holding no session only the JS loop uses', () => {
    expect(model.family).toBe(family);
    expect(model.generation).toEqual({ kind: 'graph' });
    expect(model.generateInGraph).toBeDefined();
    const decoder = path.join(dir, 'onnx/decoder_model_merged.onnx');
    expect(model.openSessions).toContain(`${decoder} generation graph`);
    for (const f of stepFiles(dir, family)) expect(model.openSessions).not.toContain(f);
    expect(js.generateInGraph).toBeUndefined();
    for (const f of stepFiles(dir, family)) expect(js.openSessions).toContain(f);
    expect(js.openSessions.some((f) => f.endsWith('generation graph'))).toBe(false);
  });

  it.each(Object.keys(OPTION_SETS))('gives the JS loop\'s tokens exactly (%s)', async (name) => {
    const o = OPTION_SETS[name]!;
    const lengths: number[] = [];
    for (const [batch, seedBase] of [[1, 'one'], [2, 'two'], [6, 'six'], [6, 'other']] as const) {
      const px = pixels.slice(0, batch);
      const seeds = px.map((_, i) => `${seedBase}:${i}`);
      const graph = await generateTokens(model, px, seeds, o);
      expect(graph).toEqual(await generateTokens(js, px, seeds, o));
      for (const row of graph) {
        expect(row.length).toBeGreaterThanOrEqual(o.minLength);
        expect(row.length).toBeLessThanOrEqual(o.maxLength);
      }
      lengths.push(...graph.map((r) => r.length));
    }
    // Rows of one batch finish at different steps: the finished rows' masking is exercised.
    if (o.temperature > 0 && o.minLength < o.maxLength) expect(new Set(lengths).size).toBeGreaterThan(1);
  });

  it('gives a row the same tokens in any batch, and different seeds different tokens', async () => {
    const o = OPTION_SETS['paper']!;
    const seeds = pixels.map((_, i) => `batch:${i}`);
    const all = await generateTokens(model, pixels, seeds, o);
    expect(await generateTokens(model, [pixels[4]!, pixels[1]!], [seeds[4]!, seeds[1]!], o)).toEqual([all[4], all[1]]);
    const same = await generateTokens(model, [pixels[0]!, pixels[0]!, pixels[0]!], ['a', 'b', 'c'], o);
    expect(new Set(same.map((r) => r.join())).size).toBeGreaterThan(1);
  });

  it('has opened no step session by generating, and opens them when the JS loop is run on it anyway', async () => {
    for (const f of stepFiles(dir, family)) expect(model.openSessions).not.toContain(f);
    const o = OPTION_SETS['paper']!;
    const seeds = ['lazy:0', 'lazy:1'];
    const viaJs = await generateTokensJs(model, pixels.slice(0, 2), seeds, o);
    for (const f of stepFiles(dir, family)) expect(model.openSessions).toContain(f);
    expect(viaJs).toEqual(await generateTokens(model, pixels.slice(0, 2), seeds, o));
  });

  it('reads the decoder\'s interface from its file as a session reports it', async () => {
    const file = path.join(dir, 'onnx/decoder_model_merged.onnx');
    const session = await ort.InferenceSession.create(file);
    try {
      const declared = modelInterface((await readModel(file)).model);
      expect(declared.inputNames).toEqual(session.inputNames);
      expect(declared.outputNames).toEqual(session.outputNames);
      expect(declared.inputMetadata).toEqual(session.inputMetadata);
      expect(declared.outputMetadata).toEqual(session.outputMetadata);
    } finally {
      await session.release();
    }
  });

  it('leaves the weights in the model files: the graph references them', async () => {
    const file = path.join(dir, 'onnx/decoder_model_merged.onnx');
    const { model: decoded } = await readModel(file);
    const inits = decoded.graph?.initializer ?? [];
    const external = inits.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(external.length).toBeGreaterThan(0);
    // Every initializer big enough to be worth a reference is one; what stays inline is small, and copied out of
    // the file's buffer (a view would keep all of it alive with the decoded model).
    const bytes = await fs.readFile(file);
    for (const t of inits) {
      if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) continue;
      expect(t.rawData?.length ?? 0).toBeLessThan(MIN_REFERENCE_BYTES);
      expect(t.rawData?.buffer.byteLength ?? 0).toBeLessThan(bytes.length);
    }
    // Each reference is the initializer's own bytes in the file.
    const original = onnx.ModelProto.decode(bytes).graph!.initializer!;
    for (const t of external) {
      const where = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      expect(where['location']).toBe('decoder_model_merged.onnx');
      const ref = bytes.subarray(Number(where['offset']), Number(where['offset']) + Number(where['length']));
      expect(Buffer.from(ref).equals(Buffer.from(original.find((o) => o.name === t.name)!.rawData!))).toBe(true);
    }
  });
});

describe('generation graph inlining', () => {
  it.each(['tiny-vit-gpt2', 'tiny-florence2'])('is exercised on a decoder whose If branches read outer values (%s)', async (folder) => {
    // Optimum's merged decoders switch on use_cache_branch with If; the equality tests above run these decoders.
    const model = onnx.ModelProto.decode(await fs.readFile(path.join(TINY_MODELS, folder, 'onnx/decoder_model_merged.onnx')));
    const outer = new Set([...graphOf(model).input.map((v) => v.name), ...graphOf(model).node.flatMap((n) => n.output)]);
    const ifs = graphOf(model).node.filter((n) => n.opType === 'If');
    expect(ifs.length).toBeGreaterThan(0);
    const reads = ifs.flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.g?.node ?? []).flatMap((m) => m.input ?? [])));
    expect(reads.some((r) => outer.has(r))).toBe(true);
  });
});

describe('generation route', () => {
  const scratch = tempDir('recaption-gen-graph-');
  afterAll(() => fs.rm(scratch, { recursive: true, force: true }));

  it('takes the JS loop when forced, by option or by environment, and says so', async () => {
    const dir = path.join(TINY_MODELS, 'tiny-vit-gpt2');
    const forced = await loadCaptionModel(dir, { generation: 'js' });
    expect(forced.generation).toEqual({ kind: 'js', reason: 'forced by generation option' });
    expect(forced.generateInGraph).toBeUndefined();
    expect(forced.openSessions).toContain(path.join(dir, 'onnx/decoder_model_merged.onnx'));
    await forced.release();
    process.env[GENERATION_ENV] = 'js';
    try {
      const captioner = await loadCaptioner(dir);
      expect(captioner.generation).toBe(`generation in the JS loop (forced by ${GENERATION_ENV})`);
      await captioner.release();
      process.env[GENERATION_ENV] = 'sometimes';
      await expect(loadCaptionModel(dir)).rejects.toThrow(new RegExp(`${GENERATION_ENV}: expected one of auto, graph, js`));
    } finally {
      delete process.env[GENERATION_ENV];
    }
    const auto = await loadCaptioner(dir);
    expect(auto.generation).toBe('generation in ONNX Runtime (Loop graph)');
    await auto.release();
  });

  it('falls back to the JS loop, with the reason, when the graph cannot be built', async () => {
    // A sparse initializer (ORT densifies it at load; the inliner does not take them).
    const dir = await copyFolder(path.join(TINY_MODELS, 'tiny-vit-gpt2'), path.join(scratch, 'sparse'));
    await editOnnx(path.join(dir, 'onnx/decoder_model_merged.onnx'), (m) => {
      graphOf(m).sparseInitializer = [
        onnx.SparseTensorProto.create({
          dims: [4],
          values: onnx.TensorProto.create({ name: 'unused_sparse', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [1] }),
          indices: onnx.TensorProto.create({ name: 'unused_sparse_indices', dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [2] }),
        }),
      ];
    });

    const model = await loadCaptionModel(dir);
    try {
      expect(model.generation.kind).toBe('js');
      expect(model.generation.kind === 'js' && model.generation.reason).toMatch(/decoder_model_merged\.onnx: graph .* has sparse initializers/);
      // The fallback opened the step decoder at load.
      expect(model.openSessions).toEqual([path.join(dir, 'onnx/encoder_model.onnx'), path.join(dir, 'onnx/decoder_model_merged.onnx')]);
      const px = await photos(model, 2);
      const tokens = await generateTokens(model, px, ['f:0', 'f:1'], OPTION_SETS['paper']!);
      expect(tokens.map((t) => t.length >= 5)).toEqual([true, true]);
    } finally {
      await model.release();
    }
    await expect(loadCaptionModel(dir, { generation: 'graph' })).rejects.toThrow(InputError);
    await expect(loadCaptionModel(dir, { generation: 'graph' })).rejects.toThrow(/cannot generate in ONNX Runtime: .*sparse initializers/);
  });

  it('runs float16 exports in the graph (casts inside it) with the JS loop\'s tokens', async () => {
    const half = await copyFolder(path.join(TINY_MODELS, 'tiny-blip2'), path.join(scratch, 'fp16'));
    for (const name of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
      await editOnnx(path.join(half, `onnx/${name}.onnx`), float16Io, path.join(half, `onnx/${name}_fp16.onnx`));
      await fs.rm(path.join(half, `onnx/${name}.onnx`));
    }
    const fp16 = await loadCaptionModel(half, { dtype: 'fp16', generation: 'graph' });
    const fp16Js = await loadCaptionModel(half, { dtype: 'fp16', generation: 'js' });
    try {
      const px = await photos(fp16, 4);
      const seeds = px.map((_, i) => `h:${i}`);
      for (const o of [OPTION_SETS['paper']!, OPTION_SETS['greedy']!]) {
        expect(await generateTokens(fp16, px, seeds, o)).toEqual(await generateTokens(fp16Js, px, seeds, o));
      }
    } finally {
      await Promise.all([fp16.release(), fp16Js.release()]);
    }
  });
});
