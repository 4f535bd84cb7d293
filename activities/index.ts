/**
 * The activities, built by the worker (workers/): GPU workers register only the GPU stages, with the models they
 * load on their device; CPU workers the rest, which load no model. The names are those in recorded histories.
 */
import type { StageModels } from '../lib/pipeline/stage-models';
import { annotateActivity, shardsToAnnotate } from './annotate';
import { computeThresholds, finalizeRun, planRun, recordShardFailure } from './run';
import { selectShard } from './select';
import { writeShard } from './write';

export type { ShardTask } from './adapter';

/** `stopping`: aborted when the worker starts to shut down (running annotate stages checkpoint and hand over). */
export function createGpuActivities(models: StageModels, stopping?: AbortSignal) {
  return { annotateShard: annotateActivity(models, stopping) };
}

export function createCpuActivities() {
  return { planRun, shardsToAnnotate, computeThresholds, selectShard, writeShard, recordShardFailure, finalizeRun };
}

export type GpuActivities = ReturnType<typeof createGpuActivities>;
export type CpuActivities = ReturnType<typeof createCpuActivities>;
