/**
 * Model specs: everything that decides how one model loads — folder, dtype, device, session options, image
 * options, prompts. Equal specs share one loaded model per process (./cache.ts), so the models a worker loads and
 * checks at start (`recaption worker --config/--captioner/--clip`) are the very sessions its activities use.
 *
 * Device: where a model runs belongs to the worker machine. A worker's `--device` is passed in as `device` and
 * wins over the run config's `models.device`; without it, each run's setting applies (default cpu).
 */
import * as path from 'node:path';
import { configSchema, sessionSchema, type RunConfig } from '../config/schema';
import { getCachedModel, modelCacheKey } from './cache';
import { loadCaptioner } from './captioner';
import { loadClip } from './clip';
import type { Captioner, ClipScorer, Device, RuntimeOptions } from './types';

export type ModelKind = 'captioner' | 'clip';

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

/** The specs of the section's models, on `device` when given (the worker's), else on the section's device. */
export function modelSpecs(models: ModelsSection, image: RunConfig['image'], device?: Device): ModelSpec[] {
  const s = models.session ?? {};
  const common = {
    device: device ?? (models.device as Device),
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

/** The model of a spec, loaded once per process. */
export function loadModel(spec: ModelSpec & { kind: 'captioner' }): Promise<Captioner>;
export function loadModel(spec: ModelSpec & { kind: 'clip' }): Promise<ClipScorer>;
export function loadModel(spec: ModelSpec): Promise<Captioner | ClipScorer>;
export function loadModel(spec: ModelSpec): Promise<Captioner | ClipScorer> {
  const key = modelCacheKey(spec.kind, spec.dir, spec.options);
  return spec.kind === 'captioner' ? getCachedModel(key, () => loadCaptioner(spec.dir, spec.options)) : getCachedModel(key, () => loadClip(spec.dir, spec.options));
}
