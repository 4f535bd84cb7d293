/**
 * Session options from config, and the optimised-model cache: created on first load, taken by later loads with
 * the same results, and never taken once the model's bytes change. Real onnxruntime-node sessions throughout.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { parseConfig } from '../../../lib/config/load';
import { loadClip } from '../../../lib/models/clip';
import { optimizedCacheEntry } from '../../../lib/models/optimized-cache';
import { createSession, sessionOptions } from '../../../lib/models/session';
import { encodeModel, GraphBuilder } from '../../../lib/onnx/graph-builder';
import { TINY_CLIP, tempDir } from '../../helpers/paths';

/** y = x · (a + b): ORT's constant folding turns a + b into one initializer, so the optimised graph differs. */
function foldableModel(scale: number): Uint8Array {
  const g = new GraphBuilder('foldable');
  const x = g.input('x', 'float32', ['batch', 4]);
  const a = g.weight('a', [4, 3], Float32Array.from({ length: 12 }, (_, i) => (i + 1) * scale));
  const b = g.weight('b', [4, 3], Float32Array.from({ length: 12 }, (_, i) => 0.5 - i * 0.25));
  g.output(g.node('MatMul', [x, g.node('Add', [a, b])]), 'y', 'float32', ['batch', 3]);
  return encodeModel(g, 'session-options test');
}

const X = new ort.Tensor('float32', Float32Array.from([1, -2, 3, 0.5, 0, 1, 2, 3]), [2, 4]);

async function run(file: string, opts: Parameters<typeof createSession>[2]): Promise<number[]> {
  const session = await createSession(file, file, opts);
  try {
    return Array.from((await session.run({ x: X }))['y']!.data as Float32Array);
  } finally {
    await session.release();
  }
}

const onnxFiles = async (dir: string): Promise<string[]> => (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.onnx')).sort();
const opTypes = async (file: string): Promise<string[]> => onnx.ModelProto.decode(await fs.readFile(file)).graph!.node!.map((n) => String(n.opType));

describe('session options', () => {
  const root = tempDir('recaption-session-');
  afterAll(() => fs.rm(root, { recursive: true, force: true }));

  /** foldableModel(1) written as `name`/model.onnx, a cache folder `cacheName` for it, and its uncached results. */
  const foldableOnDisk = async (name: string, cacheName: string): Promise<{ file: string; cache: string; reference: number[] }> => {
    const dir = path.join(root, name);
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'model.onnx');
    await fs.writeFile(file, foldableModel(1));
    return { file, cache: path.join(root, cacheName), reference: await run(file, {}) };
  };

  it('maps runtime options onto ORT session options', () => {
    expect(sessionOptions({})).toMatchObject({ executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    const o = sessionOptions({ device: 'cuda:1', intraOpNumThreads: 3, interOpNumThreads: 2, graphOptimizationLevel: 'basic', optimizedModelCache: '/c' });
    expect(o).toMatchObject({ executionProviders: [{ name: 'cuda', deviceId: 1 }], intraOpNumThreads: 3, interOpNumThreads: 2, graphOptimizationLevel: 'basic' });
    expect(o).not.toHaveProperty('optimizedModelFilePath');
  });

  it('reads models.session from config, with models.intraOpNumThreads as a deprecated alias', () => {
    const base = { run: { name: 'r' }, input: { uri: '/in' }, output: { uri: '/out' }, strategy: { preset: 'raw' } };
    const models = { captioner: { path: '/c' }, clip: { path: '/d' } };
    expect(parseConfig({ ...base, models }, 'c').models.session).toEqual({ graphOptimizationLevel: 'all' });
    const full = parseConfig({ ...base, models: { ...models, session: { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'extended', optimizedModelCache: '/cache' } } }, 'c');
    expect(full.models.session).toEqual({ intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'extended', optimizedModelCache: '/cache' });
    const alias = parseConfig({ ...base, models: { ...models, intraOpNumThreads: 4 } }, 'c');
    expect(alias.models.session.intraOpNumThreads).toBe(4);
    expect(alias.models).not.toHaveProperty('intraOpNumThreads');
    // Re-parsing a parsed config (plans store them) is stable.
    expect(parseConfig(JSON.parse(JSON.stringify(alias)), 'again').models).toEqual(alias.models);
    expect(() => parseConfig({ ...base, models: { ...models, intraOpNumThreads: 4, session: { intraOpNumThreads: 2 } } }, 'c')).toThrow(/models\.intraOpNumThreads: deprecated alias/);
    expect(() => parseConfig({ ...base, models: { ...models, session: { graphOptimizationLevel: 'max' } } }, 'c')).toThrow(/models\.session\.graphOptimizationLevel/);
  });

  it('creates, reuses and invalidates the optimised-model cache', async () => {
    const { file, cache, reference } = await foldableOnDisk('foldable', 'cache');

    // First load: writes the optimised graph under its key (no temp files left), same results.
    expect(await run(file, { optimizedModelCache: cache })).toEqual(reference);
    const [cached, ...rest] = await onnxFiles(cache);
    expect(rest).toEqual([]);
    expect(cached).toMatch(/^model\.[0-9a-f]{24}\.onnx$/);
    expect(await fs.readdir(cache)).toEqual([cached]);
    const cachedFile = path.join(cache, cached!);
    // It is the optimised graph: a + b is folded away.
    expect(await opTypes(file)).toContain('Add');
    expect(await opTypes(cachedFile)).not.toContain('Add');
    const entry = await optimizedCacheEntry(cache, file, { ep: 'cpu', level: 'all' });
    expect(entry).toEqual({ file: cachedFile, hit: true });

    // Second load: takes the cached file (not rewritten), same results.
    const before = await fs.stat(cachedFile);
    expect(await run(file, { optimizedModelCache: cache })).toEqual(reference);
    const after = await fs.stat(cachedFile);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.ino).toBe(before.ino);
    expect(await onnxFiles(cache)).toEqual([cached]);

    // Proof that the load reads the cached graph: plant a different model under the key and it is what runs.
    await fs.copyFile(cachedFile, `${cachedFile}.bak`);
    await fs.writeFile(cachedFile, foldableModel(3));
    expect(await run(file, { optimizedModelCache: cache })).not.toEqual(reference);
    await fs.rename(`${cachedFile}.bak`, cachedFile);

    // Another level or device is another key.
    expect((await optimizedCacheEntry(cache, file, { ep: 'cpu', level: 'basic' })).file).not.toBe(cachedFile);
    expect((await optimizedCacheEntry(cache, file, { ep: 'cuda', level: 'all' })).file).not.toBe(cachedFile);

    // The model changes: a new key, the stale graph is not taken, results follow the new model.
    await fs.writeFile(file, foldableModel(2));
    const changed = await run(file, {});
    expect(changed).not.toEqual(reference);
    expect(await run(file, { optimizedModelCache: cache })).toEqual(changed);
    const files = await onnxFiles(cache);
    expect(files).toHaveLength(2);
    expect(files).toContain(cached);
  });

  it('rebuilds a damaged cache file and skips the cache when optimisation is disabled', async () => {
    const { file, cache, reference } = await foldableOnDisk('damaged', 'cache-damaged');
    const { file: cachedFile } = await optimizedCacheEntry(cache, file, { ep: 'cpu', level: 'all' });
    await fs.mkdir(cache, { recursive: true });
    await fs.writeFile(cachedFile, 'not an onnx model');
    expect(await run(file, { optimizedModelCache: cache })).toEqual(reference);
    expect(await opTypes(cachedFile)).not.toContain('Add');

    const none = path.join(root, 'cache-none');
    expect(await run(file, { optimizedModelCache: none, graphOptimizationLevel: 'disabled' })).toEqual(reference);
    expect(await onnxFiles(none)).toEqual([]);
  });

  it('gives identical CLIP embeddings from cached graphs', async () => {
    const cache = path.join(root, 'cache-clip');
    const texts = ['a photo of a cat', 'two dogs on a beach'];
    const plain = await loadClip(TINY_CLIP);
    const want = await plain.embedTexts(texts);
    await plain.release();
    for (let round = 0; round < 2; round++) {
      const clip = await loadClip(TINY_CLIP, { optimizedModelCache: cache });
      const got = await clip.embedTexts(texts);
      await clip.release();
      expect(got.map((e) => Array.from(e))).toEqual(want.map((e) => Array.from(e)));
      const files = await onnxFiles(cache);
      expect(files).toHaveLength(2);
      expect(files.some((f) => f.startsWith('text_model.')) && files.some((f) => f.startsWith('vision_model.'))).toBe(true);
    }
  });
});
