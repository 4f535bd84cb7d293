import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { InputError } from '../../../lib/errors';
import { getCachedModel, modelCacheKey, releaseCachedModels } from '../../../lib/models/cache';
import { loadCaptioner } from '../../../lib/models/captioner';
import { loadClip } from '../../../lib/models/clip';
import { onnxFileName, validateSession } from '../../../lib/models/model-folder';
import { createSession } from '../../../lib/models/session';
import { attr, encodeModel, GraphBuilder } from '../../../lib/onnx/graph-builder';
import { generateTinyModels, type TinyModelPaths } from '../../../lib/models/tiny/generate';
import { tempDir } from '../../helpers/paths';
import { loadRefusal } from './load-refusal';
import { copyFolder, editOnnx, graphOf, renameValue, setElemType } from './onnx-edit';

describe('model folders', () => {
  const root = tempDir('recaption-folder-');
  let models: TinyModelPaths;
  let n = 0;
  const copy = (from: string): Promise<string> => copyFolder(from, path.join(root, `copy-${n++}`));

  beforeAll(async () => {
    models = await generateTinyModels(path.join(root, 'models'));
  });
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  it('maps dtypes to the export file names', () => {
    expect(onnxFileName('text_model')).toBe('onnx/text_model.onnx');
    expect(onnxFileName('text_model', 'fp16')).toBe('onnx/text_model_fp16.onnx');
    expect(onnxFileName('decoder_model_merged', 'quantized')).toBe('onnx/decoder_model_merged_quantized.onnx');
  });

  it('refuses a folder that does not exist', async () => {
    const err = await loadRefusal(loadClip(path.join(root, 'nope')));
    expect(err.type).toBe('BadModel');
    expect(err.message).toContain(path.join(root, 'nope'));
  });

  it('refuses a missing file, naming it', async () => {
    for (const [base, rel, load] of [
      [models.clipDir, 'onnx/text_model.onnx', loadClip],
      [models.clipDir, 'tokenizer.json', loadClip],
      [models.captionerDir, 'onnx/decoder_model_merged.onnx', loadCaptioner],
      [models.captionerDir, 'preprocessor_config.json', loadCaptioner],
    ] as const) {
      const dir = await copy(base);
      await fs.rm(path.join(dir, rel));
      const err = await loadRefusal(load(dir));
      expect(err.type).toBe('BadModel');
      expect(err.message).toContain(path.join(dir, rel));
      expect(err.message).toMatch(/missing/);
    }
  });

  it('refuses a missing dtype variant, naming the expected file', async () => {
    const err = await loadRefusal(loadClip(models.clipDir, { dtype: 'quantized' }));
    expect(err.message).toContain('vision_model_quantized.onnx');
  });

  it('refuses renamed inputs and outputs, naming the file and the expected name', async () => {
    const cases: [string, string, string, string, typeof loadClip | typeof loadCaptioner][] = [
      [models.clipDir, 'onnx/vision_model.onnx', 'pixel_values', 'pixels', loadClip],
      [models.clipDir, 'onnx/text_model.onnx', 'text_embeds', 'embeds', loadClip],
      [models.captionerDir, 'onnx/decoder_model_merged.onnx', 'use_cache_branch', 'use_cache', loadCaptioner],
      [models.captionerDir, 'onnx/decoder_model_merged.onnx', 'present.1.value', 'present.1.v', loadCaptioner],
      [models.captionerDir, 'onnx/encoder_model.onnx', 'last_hidden_state', 'hidden', loadCaptioner],
    ];
    for (const [base, rel, from, to, load] of cases) {
      const dir = await copy(base);
      await editOnnx(path.join(dir, rel), (m) => renameValue(m, from, to));
      const err = await loadRefusal(load(dir));
      expect(err.type).toBe('BadModel');
      expect(err.message).toContain(path.join(dir, rel));
      expect(err.message).toContain(`'${from}'`);
    }
  });

  it('refuses wrong element types and ranks', async () => {
    const dir = await copy(models.clipDir);
    await editOnnx(path.join(dir, 'onnx/text_model.onnx'), (m) => setElemType(m, 'input_ids', onnx.TensorProto.DataType.INT32));
    const err = await loadRefusal(loadClip(dir));
    expect(err.message).toMatch(/text_model\.onnx: .*input 'input_ids' has type int32, expected int64/);

    const dir2 = await copy(models.clipDir);
    await editOnnx(path.join(dir2, 'onnx/vision_model.onnx'), (m) => {
      const input = graphOf(m).input.find((i) => i.name === 'pixel_values');
      input?.type?.tensorType?.shape?.dim?.pop();
    });
    // onnxruntime itself may reject the inconsistent graph; either way it is a BadModel naming the file.
    const err2 = await loadRefusal(loadClip(dir2));
    expect(err2.type).toBe('BadModel');
    expect(err2.message).toContain(path.join(dir2, 'onnx/vision_model.onnx'));
  });

  it('checks ranks and static sizes against the expected signature', async () => {
    const g = new GraphBuilder('wrong_ranks');
    const ids = g.input('input_ids', 'int64', ['batch', 'seq', 1]);
    g.output(g.node('Cast', [ids], { to: attr.int(1) }), 'text_embeds', 'float32', ['batch', 'seq', 1]);
    const pixels = g.input('pixel_values', 'float32', ['batch', 3, 112, 112]);
    g.output(g.node('Identity', [pixels]), 'image_embeds', 'float32', ['batch', 3, 112, 112]);
    const file = path.join(root, 'wrong_ranks.onnx');
    await fs.writeFile(file, encodeModel(g, 'test'));
    const session = await createSession(file, file);
    let message = '';
    try {
      validateSession(session, file, {
        inputs: [
          { name: 'input_ids', types: ['int64'], rank: 2 },
          { name: 'pixel_values', types: ['float32'], rank: 4, dims: { 1: 3, 2: 224, 3: 224 } },
        ],
        outputs: [{ name: 'text_embeds', types: ['float32'], rank: 2 }],
      });
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      message = (err as Error).message;
    }
    await session.release();
    expect(message).toContain(`${file}: `);
    expect(message).toContain("input 'input_ids' has rank 3 [batch, seq, 1], expected rank 2");
    expect(message).toContain("input 'pixel_values' has size 112 on axis 2, expected 224");
    expect(message).toContain("output 'text_embeds' has rank 3");
  });

  it('refuses a decoder whose cached layers disagree with config.json', async () => {
    const dir = await copy(models.captionerDir);
    const file = path.join(dir, 'config.json');
    const config = JSON.parse(await fs.readFile(file, 'utf8'));
    config.decoder.n_layer = 3;
    await fs.writeFile(file, JSON.stringify(config));
    const err = await loadRefusal(loadCaptioner(dir));
    expect(err.message).toMatch(/decoder_model_merged\.onnx: has 2 cached layers but config.json says 3/);
  });

  it('refuses invalid JSON and unsupported families', async () => {
    const dir = await copy(models.clipDir);
    await fs.writeFile(path.join(dir, 'preprocessor_config.json'), '{ not json');
    const err = await loadRefusal(loadClip(dir));
    expect(err.message).toContain(path.join(dir, 'preprocessor_config.json'));
    expect(err.message).toMatch(/not valid JSON/);

    const err2 = await loadRefusal(loadCaptioner(models.clipDir));
    expect(err2.message).toMatch(/model_type "clip" is not supported for captioning \(supported: vision-encoder-decoder, florence2, blip-2\)/);
  });

  it('reports CUDA as unavailable when the CUDA execution provider cannot be created', async () => {
    const bin = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const hasCudaProvider = ['bin/napi-v6/linux/x64', 'bin/napi-v3/linux/x64'].some((d) => existsSync(path.join(bin, d, 'libonnxruntime_providers_cuda.so')));
    if (hasCudaProvider) {
      // A machine with the CUDA provider: loading works (or fails for a reason that is not the provider).
      const clip = await loadClip(models.clipDir, { device: 'cuda:0' }).catch((e: unknown) => e);
      if (clip instanceof InputError) expect(clip.type).toBe('CudaUnavailable');
      else if (clip && typeof clip === 'object' && 'release' in clip) await (clip as { release(): Promise<void> }).release();
      return;
    }
    const err = await loadRefusal(loadClip(models.clipDir, { device: 'cuda:0' }));
    expect(err.type).toBe('CudaUnavailable');
    expect(err.message).toMatch(/cuda:0/);
    const bad = await loadRefusal(loadClip(models.clipDir, { device: 'gpu' as never }));
    expect(bad.type).toBe('InvalidConfig');
  });

  it('caches one load per key and retries failed loads', async () => {
    let loads = 0;
    const key = modelCacheKey('clip', models.clipDir, { device: 'cpu' });
    expect(key).toBe(modelCacheKey('clip', path.relative(process.cwd(), models.clipDir), { device: 'cpu' }));
    const [a, b] = await Promise.all([
      getCachedModel(key, () => (loads++, loadClip(models.clipDir))),
      getCachedModel(key, () => (loads++, loadClip(models.clipDir))),
    ]);
    expect(a).toBe(b);
    expect(loads).toBe(1);

    let attempts = 0;
    const flaky = (): Promise<string> => (++attempts === 1 ? Promise.reject(new Error('transient')) : Promise.resolve('ok'));
    await expect(getCachedModel('flaky', flaky)).rejects.toThrow('transient');
    await expect(getCachedModel('flaky', flaky)).resolves.toBe('ok');
    await releaseCachedModels();
  });
});
