/** CPU run-level stages: plan, thresholds, finalize. */
import { parseConfig } from '../lib/config/load';
import { finalizeRun as finalizeStage, type RunSummaryData } from '../lib/pipeline/finalize-stage';
import { loadPlan, planRun as planStage } from '../lib/pipeline/plan';
import { computeThresholds as thresholdsStage, encodeThreshold } from '../lib/pipeline/thresholds-stage';
import { ruleOf } from '../lib/strategies/presets';
import { runActivity, stageContext } from './adapter';
import type { PlanResult } from '../workflows/types';

export async function planRun(input: { config: unknown }): Promise<PlanResult> {
  return runActivity(async () => {
    // Re-validate: the workflow input is plain JSON and may come from any client.
    const config = parseConfig(input.config, 'workflow input');
    const plan = await planStage(config);
    ruleOf(config.strategy);
    return { runUri: plan.runUri, shardCount: plan.shards.length, configHash: plan.configHash, preset: config.strategy.preset };
  });
}

/** Thresholds as JSON-safe values (±Infinity as "inf"/"-inf"). */
export async function computeThresholds(input: { runUri: string }): Promise<Record<string, number | string>> {
  return runActivity(async () => {
    const t = await thresholdsStage(await loadPlan(input.runUri), stageContext());
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, encodeThreshold(v)]));
  });
}

export async function finalizeRun(input: { runUri: string }): Promise<RunSummaryData> {
  return runActivity(async () => finalizeStage(await loadPlan(input.runUri), stageContext()));
}
