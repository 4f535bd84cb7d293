/**
 * `recaption worker` refuses broken models and an unusable device at start: the real CLI in a child process,
 * no Temporal server anywhere (TEMPORAL_ADDRESS points at a closed port), exit code 2 and a message naming the
 * file and the problem. Plus, in process: the start-up check loads through the same keys the activities use,
 * and the worker's --device wins over a run's models.device.
 */
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { StageModels } from '../../lib/pipeline/stage-models';
import { defaultImageOptions, loadModel, modelSpecs } from '../../lib/models/specs';
import { parseConfig } from '../../lib/config/load';
import { releaseCachedModels } from '../../lib/models/cache';
import { runCli } from '../helpers/cli';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';
import { copyFolder, editOnnx, renameValue } from '../lib/models/onnx-edit';

// Nothing listens on port 1: a worker that got past its checks fails to connect (exit 1), never reaches a server.
const NO_SERVER = { TEMPORAL_ADDRESS: '127.0.0.1:1', TEMPORAL_NAMESPACE: 'default' };
const GPU_ONLY = ['--queues', 'gpu', '--gpu-queue', 'worker-start-test'];
const TIMEOUT = 300_000;

const root = tempDir('recaption-worker-start-');
let n = 0;
const copy = (from: string): Promise<string> => copyFolder(from, path.join(root, `m${n++}`));
afterAll(() => fs.rm(root, { recursive: true, force: true }));

/** Exit 2, the message on stderr, and no sign of a Temporal connection attempt. */
function expectRefused(r: { code: number | null; stderr: string }, ...parts: (string | RegExp)[]): void {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2 });
  for (const p of parts) expect(r.stderr).toEqual(expect.stringMatching(typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p));
  expect(r.stderr).not.toMatch(/recaption worker:|tcp connect error|ConnectError/);
}

function writeRunConfig(captioner: string, clip: string): string {
  const file = path.join(root, `run-${n++}.yaml`);
  writeFileSync(
    file,
    stringify({
      run: { name: 'worker-start' },
      input: { uri: path.join(root, 'in') },
      output: { uri: path.join(root, 'out') },
      strategy: { preset: 'raw' },
      models: { captioner: { path: captioner }, clip: { path: clip } },
    }),
  );
  return file;
}

describe('recaption worker start-up checks', () => {
  it(
    'refuses a CLIP folder missing onnx/text_model.onnx, naming the file',
    async () => {
      const dir = await copy(TINY_CLIP);
      await fs.rm(path.join(dir, 'onnx/text_model.onnx'));
      const r = await runCli(['worker', ...GPU_ONLY, '--clip', dir], NO_SERVER);
      expectRefused(r, path.join(dir, 'onnx/text_model.onnx'), /missing/);
    },
    TIMEOUT,
  );

  it(
    'refuses a decoder with a renamed input, naming the file and the input',
    async () => {
      const dir = await copy(TINY_CAPTIONER);
      const file = path.join(dir, 'onnx/decoder_model_merged.onnx');
      await editOnnx(file, (m) => renameValue(m, 'use_cache_branch', 'use_cache'));
      const r = await runCli(['worker', ...GPU_ONLY, '--captioner', dir, '--clip', TINY_CLIP], NO_SERVER);
      expectRefused(r, `${file}: `, "missing input 'use_cache_branch'", 'use_cache');
      // The good CLIP model was checked too (every model is tried, so all problems show at once).
      expect(r.stderr).toMatch(/clip .*tiny-clip .*loaded and checked/);
    },
    TIMEOUT,
  );

  it(
    "refuses a tokenizer larger than the model's vocabulary, naming tokenizer.json (models from a run config)",
    async () => {
      const dir = await copy(TINY_CAPTIONER);
      const tokFile = path.join(dir, 'tokenizer.json');
      const tok = JSON.parse(await fs.readFile(tokFile, 'utf8'));
      tok.added_tokens.push({ id: 456, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      await fs.writeFile(tokFile, JSON.stringify(tok));
      const r = await runCli(['worker', ...GPU_ONLY, '--config', writeRunConfig(dir, TINY_CLIP)], NO_SERVER);
      expectRefused(r, `${tokFile}: does not match the model`, "ids up to 456 but the model's vocabulary has 456 entries");
    },
    TIMEOUT,
  );

  it(
    'refuses --dtype fp16 when the fp16 files are not there, naming the expected file',
    async () => {
      const r = await runCli(['worker', ...GPU_ONLY, '--clip', TINY_CLIP, '--dtype', 'fp16'], NO_SERVER);
      expectRefused(r, /vision_model_fp16\.onnx|text_model_fp16\.onnx/, /dtype fp16/);
    },
    TIMEOUT,
  );

  it(
    '--device cuda:0 is probed at start, without any model',
    async () => {
      const r = await runCli(['worker', ...GPU_ONLY, '--device', 'cuda:0'], NO_SERVER);
      const ortBin = path.dirname(require.resolve('onnxruntime-node/package.json'));
      const hasProvider = ['bin/napi-v6/linux/x64', 'bin/napi-v3/linux/x64'].some((d) => existsSync(path.join(ortBin, d, 'libonnxruntime_providers_cuda.so')));
      if (hasProvider) {
        // A machine with the CUDA provider installed: the probe passes and the worker goes on to connect.
        expect(r.stderr).toContain('device cuda:0 works');
        return;
      }
      expectRefused(r, 'cuda:0 is unavailable', 'CUDA execution provider', 'libonnxruntime_providers_cuda.so', 'README "GPU"');
      const bad = await runCli(['worker', ...GPU_ONLY, '--device', 'gpu0'], NO_SERVER);
      expectRefused(bad, '--device: device must be "cpu" or "cuda:N"');
    },
    TIMEOUT,
  );

  it(
    'passes good models and only then connects to Temporal',
    async () => {
      const r = await runCli(['worker', ...GPU_ONLY, '--config', writeRunConfig(TINY_CAPTIONER, TINY_CLIP)], NO_SERVER);
      expect(r.stderr).toMatch(/captioner .*tiny-vit-gpt2 \(fp32, cpu\) loaded and checked/);
      expect(r.stderr).toMatch(/captioner .*tiny-vit-gpt2: generation in ONNX Runtime \(Loop graph\)/);
      expect(r.stderr).toMatch(/clip .*tiny-clip \(fp32, cpu\) loaded and checked/);
      // No server: the connection fails, which is not bad input.
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/127\.0\.0\.1:1|connect/i);
    },
    TIMEOUT,
  );
});

describe('worker runtime and the activities', () => {
  afterEach(async () => {
    await releaseCachedModels();
  });

  const config = (device: string) =>
    parseConfig(
      { run: { name: 'r' }, input: { uri: '/in' }, output: { uri: '/out' }, strategy: { preset: 'raw' }, models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP }, device } },
      'test',
    );

  it('activities get the models the start-up check loaded', async () => {
    const c = config('cpu');
    const [captionerSpec, clipSpec] = modelSpecs(c.models, c.image);
    const preloaded = [await loadModel(captionerSpec!), await loadModel(clipSpec!)];
    const models = new StageModels();
    expect(await models.captioner(c)).toBe(preloaded[0]);
    expect(await models.clip(c)).toBe(preloaded[1]);
    // --captioner/--clip with the defaults: the same keys as a run config that keeps the defaults.
    const fromFlags = modelSpecs({ device: 'cpu', session: { graphOptimizationLevel: 'all' }, captioner: { path: TINY_CAPTIONER, dtype: 'fp32' } }, defaultImageOptions());
    expect(await loadModel(fromFlags[0]!)).toBe(preloaded[0]);
  });

  it("the worker's --device wins over the run's models.device", async () => {
    const c = config('cuda:3');
    expect(new StageModels().specs(c).map((s) => s.options.device)).toEqual(['cuda:3', 'cuda:3']);
    const onCpu = new StageModels('cpu');
    expect(onCpu.specs(c).map((s) => s.options.device)).toEqual(['cpu', 'cpu']);
    expect(onCpu.deviceFor(c)).toBe('cpu');
    // A run configured for cuda:3 runs on this worker's CPU.
    expect((await onCpu.clip(c)).dim).toBe(32);
    expect(() => new StageModels('gpu' as never)).toThrow(/must be "cpu" or "cuda:N"/);
  });
});
