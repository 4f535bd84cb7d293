import { annotateShard, missingAnnotations } from '../lib/pipeline/annotate-stage';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import type { StageModels } from '../lib/pipeline/stage-models';
import { Context } from '@temporalio/activity';
import { loadPlan } from '../lib/run/plan';
import { runActivity, shardActivity, whileHeartbeating, type ShardTask } from './adapter';

/** GPU: a shard's missing annotations (captions, CLIP scores, clusters), with the worker's models. */
export function annotateActivity(models: StageModels): (task: ShardTask) => Promise<StageSummary> {
  return (task) =>
    shardActivity('annotate', task, (plan, ctx) => annotateShard(plan, task.index, (groups) => whileHeartbeating(ctx, models.forAnnotate(plan.config, groups)), ctx));
}

/**
 * CPU: which shards of a page lack some of the run's model annotations — the only ones the GPU stage is scheduled
 * for, so a run over annotated shards needs no GPU worker at all.
 */
export async function shardsToAnnotate(input: { runUri: string; start: number; end: number }): Promise<number[]> {
  return runActivity(async () => {
    const plan = await loadPlan(input.runUri);
    const todo: number[] = [];
    // A few dozen existence checks at a time: a page of 1,000 shards is a few thousand object lookups.
    for (let from = input.start; from < input.end; from += 32) {
      const indexes = Array.from({ length: Math.min(32, input.end - from) }, (_, k) => from + k);
      const missing = await Promise.all(indexes.map((i) => missingAnnotations(plan, plan.shards[i]!, plan.annotations.compute)));
      indexes.forEach((i, k) => missing[k]!.some((g) => g !== 'samples') && todo.push(i));
      Context.current().heartbeat();
    }
    return todo;
  });
}
