/**
 * One activity interceptor, installed by the worker builder on every worker, that knows which stage an activity
 * is: it puts `run`, `stage` and `shard` on every log line the activity writes (the SDK adds `attempt`), logs a
 * line when a shard stage starts and ends, and feeds the worker's metrics from the stage's StageSummary. Stage
 * names come from lib/run/stages.ts, so a new stage is labelled without a change here.
 *
 * The SDK's own "Activity started" line (DEBUG) is written before the activity's arguments exist, so it carries
 * the stage and attempt but not yet the run and shard.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import { loadPlan } from '../lib/run/plan';
import { STAGE_ACTIVITY, type ShardStage } from '../lib/run/stages';
import type { WorkerMetrics } from './metrics';

/** The shard stage an activity type runs, from lib/run/stages.ts STAGE_ACTIVITY. */
export function stageOfActivity(activityType: string): ShardStage | undefined {
  return (Object.entries(STAGE_ACTIVITY) as Array<[ShardStage, string]>).find(([, name]) => name === activityType)?.[0];
}

/** run and shard names of a shard task `{ runUri, index }` (from the run's plan, cached per process). */
async function taskNames(task: unknown): Promise<{ run?: string; shard?: string }> {
  const t = task as { runUri?: unknown; index?: unknown; config?: { run?: { name?: unknown } } } | undefined;
  if (typeof t?.config?.run?.name === 'string') return { run: t.config.run.name }; // planRun: the plan is not there yet
  if (typeof t?.runUri !== 'string') return {};
  const shardIndex = typeof t.index === 'number' ? t.index : undefined;
  try {
    const plan = await loadPlan(t.runUri);
    return { run: plan.runName, ...(shardIndex !== undefined ? { shard: plan.shards[shardIndex]?.name ?? `#${shardIndex}` } : {}) };
  } catch {
    // No plan to read: the activity itself reports why; the log still says where.
    return { run: t.runUri, ...(shardIndex !== undefined ? { shard: `#${shardIndex}` } : {}) };
  }
}

function failureType(err: unknown): string {
  if (err instanceof CancelledFailure) return 'Cancelled';
  if (err instanceof ApplicationFailure) return err.type ?? 'ApplicationFailure';
  return err instanceof Error ? err.name : 'Error';
}

export function stageInterceptor(metrics?: WorkerMetrics): ActivityInterceptorsFactory {
  return (ctx: Context) => {
    const stage = stageOfActivity(ctx.info.activityType);
    const attributes: Record<string, unknown> = stage ? { stage } : {};
    return {
      inbound: {
        async execute(input, next) {
          const finished = metrics?.activityStarted(ctx.info.taskQueue);
          try {
            Object.assign(attributes, await taskNames(input.args[0]));
            if (!stage) return await next(input);
            ctx.log.info(`${stage} ${attributes.shard} started`);
            const started = performance.now();
            try {
              const summary = (await next(input)) as StageSummary;
              const seconds = (performance.now() - started) / 1000;
              metrics?.stageFinished(stage, summary, seconds);
              const what = summary.failedEarlier ? 'skipped (failed in an earlier stage)' : summary.skipped ? 'already committed' : `${summary.samples} samples, ${summary.failed} failed`;
              ctx.log.info(`${stage} ${summary.shard} done: ${what} in ${seconds.toFixed(1)}s`, { samples: summary.samples, failed: summary.failed, skipped: summary.skipped, durationMs: Math.round(seconds * 1000) });
              return summary;
            } catch (err) {
              const type = failureType(err);
              metrics?.stageFailed(stage, type);
              // The SDK logs a failure (WARN) but a cancellation only at DEBUG: this line says how every stage ended.
              ctx.log.info(`${stage} ${attributes.shard} failed: ${type}`, { failure: type, durationMs: Math.round(performance.now() - started) });
              throw err;
            }
          } finally {
            finished?.();
          }
        },
      },
      outbound: {
        getLogAttributes: (input, next) => next({ ...input, ...attributes }),
      },
    };
  };
}
