/**
 * Models are loaded once per worker process and reused by every activity (GPU workers keep them resident).
 *
 * Device: where a model runs is a property of the worker machine, not of the run. A worker started with
 * `--device` (setWorkerDevice) runs every model on that device, whatever the run config's `models.device` says;
 * a worker without it follows the run config (default cpu). Session options (threads, graph optimisation, the
 * optimised-model cache) come from the run config's `models.session`.
 *
 * The worker's start-up check (`recaption worker --config/--captioner/--clip`) loads models through the same
 * keys (modelSpecs + loadModel), so the activities find those sessions already loaded.
 */
import * as path from 'node:path';
import { configSchema, sessionSchema, type RunConfig } from '../lib/config/schema';
import { getCachedModel, loadCaptioner, loadClip, modelCacheKey, parseDevice } from '../lib/models';
import type { Captioner, ClipScorer, Device, RuntimeOptions } from '../lib/models/types';

let workerDevice: Device | undefined;

/** The device this worker process runs models on (`recaption worker --device`); undefined: as each run says. */
export function setWorkerDevice(device: Device | undefined): void {
  if (device !== undefined) parseDevice(device); // throws InvalidConfig on a malformed value
  workerDevice = device;
}

export function deviceFor(config: Pick<RunConfig, 'models'>): Device {
  return workerDevice ?? (config.models.device as Device);
}

export type ModelKind = 'captioner' | 'clip';

/** Everything that decides how one model loads; equal specs share one loaded model per process. */
export interface ModelSpec {
  kind: ModelKind;
  dir: string;
  options: RuntimeOptions & { maxPixels: number; resampler: 'sharp' | 'pillow'; taskPrompt?: string; textPrompt?: string };
}

/** The models section a spec is built from: a run config's, or one the worker assembles from its flags. */
export interface ModelsSection {
  captioner?: { path: string; dtype: NonNullable<RuntimeOptions['dtype']>; taskPrompt?: string; textPrompt?: string };
  clip?: { path: string; dtype: NonNullable<RuntimeOptions['dtype']> };
  device: string;
  /** absent in plans written before session options existed */
  session?: Partial<RunConfig['models']['session']>;
}

/** The run config's defaults for `image` and `models.session`, for models named outside a run config. */
export function defaultImageOptions(): RunConfig['image'] {
  return configSchema.shape.image.parse(undefined);
}

export function defaultSessionOptions(): RunConfig['models']['session'] {
  return { ...sessionSchema.parse({}), intraOpNumThreads: undefined };
}

export function modelSpecs(models: ModelsSection, image: RunConfig['image']): ModelSpec[] {
  const s = models.session ?? {};
  const common = {
    device: workerDevice ?? (models.device as Device),
    maxPixels: image.maxPixels,
    resampler: image.resampler,
    graphOptimizationLevel: s.graphOptimizationLevel ?? 'all',
    ...(s.intraOpNumThreads !== undefined ? { intraOpNumThreads: s.intraOpNumThreads } : {}),
    ...(s.interOpNumThreads !== undefined ? { interOpNumThreads: s.interOpNumThreads } : {}),
    // A local folder on the worker: relative paths are the worker's.
    ...(s.optimizedModelCache !== undefined ? { optimizedModelCache: path.resolve(s.optimizedModelCache) } : {}),
  };
  const specs: ModelSpec[] = [];
  for (const kind of ['captioner', 'clip'] as const) {
    const m = models[kind];
    if (!m) continue;
    // Caption prompts change what a captioner produces, so they are part of its spec (and cache key).
    const prompts = 'taskPrompt' in m || 'textPrompt' in m ? { ...(m.taskPrompt ? { taskPrompt: m.taskPrompt } : {}), ...(m.textPrompt ? { textPrompt: m.textPrompt } : {}) } : {};
    specs.push({ kind, dir: path.resolve(m.path), options: { ...common, dtype: m.dtype, ...prompts } });
  }
  return specs;
}

export function loadModel(spec: ModelSpec & { kind: 'captioner' }): Promise<Captioner>;
export function loadModel(spec: ModelSpec & { kind: 'clip' }): Promise<ClipScorer>;
export function loadModel(spec: ModelSpec): Promise<Captioner | ClipScorer>;
export function loadModel(spec: ModelSpec): Promise<Captioner | ClipScorer> {
  const key = modelCacheKey(spec.kind, spec.dir, spec.options);
  return spec.kind === 'captioner' ? getCachedModel(key, () => loadCaptioner(spec.dir, spec.options)) : getCachedModel(key, () => loadClip(spec.dir, spec.options));
}

function specOf(config: RunConfig, kind: ModelKind): ModelSpec {
  return modelSpecs({ ...config.models, captioner: kind === 'captioner' ? config.models.captioner : undefined, clip: kind === 'clip' ? config.models.clip : undefined }, config.image)[0]!;
}

export function captionerFor(config: RunConfig): Promise<Captioner> {
  return loadModel({ ...specOf(config, 'captioner'), kind: 'captioner' });
}

export function clipFor(config: RunConfig): Promise<ClipScorer> {
  return loadModel({ ...specOf(config, 'clip'), kind: 'clip' });
}
