import { annotateShard, missingByShard, needsModels } from '../lib/pipeline/annotate-stage';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import type { StageModels } from '../lib/pipeline/stage-models';
import { Context } from '@temporalio/activity';
import { loadPlan } from '../lib/run/plan';
import { runActivity, shardActivity, whileHeartbeating, type ShardTask } from './adapter';

/**
 * GPU: a shard's missing annotations (captions, CLIP scores, clusters), with the worker's models. `stopping`: the
 * worker's shutdown signal — the stage commits at its next batch and fails retryably (workers/start.ts).
 */
export function annotateActivity(models: StageModels, stopping?: AbortSignal): (task: ShardTask) => Promise<StageSummary> {
  return (task) =>
    shardActivity('annotate', task, (plan, ctx) =>
      annotateShard(plan, task.index, (groups) => whileHeartbeating(ctx, models.forAnnotate(plan.config, groups)), stopping ? { ...ctx, stopping } : ctx),
    );
}

/**
 * CPU: which shards of a page lack some of the run's model annotations — the only ones the GPU stage is scheduled
 * for, so a run over annotated shards needs no GPU worker at all.
 */
export async function shardsToAnnotate(input: { runUri: string; start: number; end: number }): Promise<number[]> {
  return runActivity(async () => {
    const plan = await loadPlan(input.runUri);
    const missing = await missingByShard(plan.annotations, plan.shards.slice(input.start, input.end), () => Context.current().heartbeat());
    return missing.flatMap((m, k) => (needsModels(m) ? [input.start + k] : []));
  });
}
