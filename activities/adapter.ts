/**
 * The one bridge between Temporal and lib/: heartbeats with the progress offset, cancellation, and error
 * mapping — bad input (InputError) is recorded under the run's failures/ and thrown non-retryable with its
 * type; anything else is an infra error that Temporal retries with backoff.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { InputError } from '../lib/errors';
import type { StageContext } from '../lib/pipeline/context';
import { recordShardFailure } from '../lib/run/failures';
import { RunLayout } from '../lib/run/layout';
import { loadPlan, type RunPlan } from '../lib/run/plan';
import type { ShardStage } from '../lib/run/stages';
import { storageFor } from '../lib/storage';

export interface ShardTask {
  runUri: string;
  /** Index of the shard in the run's plan. */
  index: number;
}

export function stageContext(): StageContext {
  const ctx = Context.current();
  return {
    heartbeat: (processed, committed) => ctx.heartbeat(committed === undefined ? { processed } : { processed, committed }),
    signal: ctx.cancellationSignal,
    log: (m) => ctx.log.info(m),
  };
}

function toFailure(err: unknown): unknown {
  if (err instanceof InputError) return ApplicationFailure.nonRetryable(err.message, err.type);
  return err;
}

/** Run one shard stage as an activity. */
export async function shardActivity<T>(stage: ShardStage, task: ShardTask, fn: (plan: RunPlan, ctx: StageContext) => Promise<T>): Promise<T> {
  const ctx = stageContext();
  ctx.heartbeat(0);
  let plan: RunPlan | undefined;
  try {
    plan = await loadPlan(task.runUri);
    return await fn(plan, ctx);
  } catch (err) {
    if (err instanceof InputError && plan) {
      const shard = plan.shards[task.index]?.name ?? `#${task.index}`;
      await recordShardFailure(storageFor(task.runUri), new RunLayout(task.runUri), stage, { shard, type: err.type, message: err.message });
    }
    throw toFailure(err);
  }
}

/** Run one run-level stage as an activity. */
export async function runActivity<T>(fn: () => Promise<T>): Promise<T> {
  Context.current().heartbeat();
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err);
  }
}

/**
 * A quarter of the activity's heartbeat timeout (at most 10 s): a beat late by a busy event loop still lands in
 * time. The SDK throttles what it sends, so beating often costs nothing.
 */
function heartbeatEveryMs(): number {
  const timeout = Context.current().info.heartbeatTimeoutMs;
  return Math.max(100, Math.min(10_000, timeout ? timeout / 4 : 10_000));
}

/**
 * Keep heartbeating while a long step that cannot report progress runs (loading a multi-GB model can take
 * longer than the heartbeat timeout; the worker is alive, so the activity must not be retried elsewhere).
 */
export async function whileHeartbeating<T>(ctx: StageContext, work: Promise<T>, everyMs = heartbeatEveryMs()): Promise<T> {
  const timer = setInterval(() => ctx.heartbeat(0), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
