/** CPU run-level stages: plan, thresholds, finalize. */
import { parseConfig } from '../lib/config/load';
import { finalizeRun as finalizeStage, type RunSummaryData } from '../lib/pipeline/finalize-stage';
import { planRun as planStage } from '../lib/pipeline/plan-stage';
import { failureBudget } from '../lib/config/failure-budget';
import { recordShardFailure as recordFailure, retryFailedShards, type RetryPlan } from '../lib/run/failures';
import { RunLayout } from '../lib/run/layout';
import { loadPlan, type RunPlan } from '../lib/run/plan';
import type { RunConfig } from '../lib/config/schema';
import type { ShardStage } from '../lib/run/stages';
import { storageFor } from '../lib/storage';
import { computeThresholds as thresholdsStage, encodeThreshold } from '../lib/pipeline/thresholds-stage';
import { ruleOf } from '../lib/strategies/presets';
import { runActivity, stageContext } from './adapter';

/** What the run workflow keeps of the plan: where the run lives, how many shards it has, whether any annotation is needed. */
export interface PlanResult {
  runUri: string;
  shardCount: number;
  /** The strategy needs model annotations (captions, CLIP scores, clusters): the annotate phase runs. */
  annotate: boolean;
  /** Failed shards this execution may have and still complete (run.maxFailedShards as a count); absent: no limit. */
  maxFailedShards?: number;
  /** Failures of earlier executions that stay recorded (lib/run/failures.ts RetryPlan.keep): they count against it. */
  failedBefore?: number;
  /** Failed shards of earlier executions this one retries (their records were cleared). */
  retried?: number;
}

export async function planRun(input: { config: unknown }): Promise<PlanResult> {
  return runActivity(async () => {
    // Re-validate: the workflow input is plain JSON and may come from any client.
    const config = parseConfig(input.config, 'workflow input');
    ruleOf(config.strategy); // a rule that cannot be built fails here, before any shard work
    const plan = await planStage(config);
    // A new execution retries the shards that failed before (planRun runs once per execution, at its start).
    const retry = await retryFailedShards(storageFor(plan.runUri), new RunLayout(plan.runUri));
    return planResult(plan, config, retry);
  });
}

/** What the run workflow learns of its plan (small: it crosses Temporal). */
export function planResult(plan: RunPlan, config: RunConfig, retry: Pick<RetryPlan, 'keep' | 'retry'>): PlanResult {
  return {
    runUri: plan.runUri,
    shardCount: plan.shards.length,
    annotate: plan.annotations.compute.length > 0,
    // This execution's config, not the plan's: a resumed run may raise the budget.
    maxFailedShards: failureBudget(config.run.maxFailedShards, plan.shards.length),
    failedBefore: retry.keep.length,
    retried: retry.retry.length,
  };
}

/** Thresholds as JSON-safe values (±Infinity as "inf"/"-inf"). */
export async function computeThresholds(input: { runUri: string }): Promise<Record<string, number | string>> {
  return runActivity(async () => {
    const t = await thresholdsStage(await loadPlan(input.runUri), stageContext());
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, encodeThreshold(v)]));
  });
}

/**
 * A shard stage that failed for good (bad input, or retries used up) is recorded under failures/, whatever stage it
 * hit, so finalize accounts for the shard and the manifest lists it.
 */
export async function recordShardFailure(input: { runUri: string; index: number; stage: ShardStage; type: string; message: string }): Promise<void> {
  return runActivity(async () => {
    const plan = await loadPlan(input.runUri);
    const shard = plan.shards[input.index]?.name ?? `#${input.index}`;
    await recordFailure(storageFor(input.runUri), new RunLayout(input.runUri), input.stage, { shard, type: input.type, message: input.message });
  });
}

export async function finalizeRun(input: { runUri: string }): Promise<RunSummaryData> {
  return runActivity(async () => finalizeStage(await loadPlan(input.runUri), stageContext()));
}
