/**
 * The run's failure budget, workflow side (deterministic, plain data): whether the failed shards are past
 * `run.maxFailedShards` (turned into a count by the plan activity, lib/config/failure-budget.ts), and the
 * `FailureBudgetExceeded` failure that stops the run with a summary of what broke.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { PageResult, PlanResult } from './types';

export const FAILURE_BUDGET_EXCEEDED = 'FailureBudgetExceeded';

/** Failed shards of the run so far: this execution's and the ones kept from earlier executions. */
export function failedSoFar(plan: PlanResult, totals: PageResult): number {
  return (plan.failedBefore ?? 0) + totals.failedShards;
}

/** What is left of the budget, for a page to stop at; undefined when the plan set none (older executions). */
export function budgetLeft(plan: PlanResult, totals: PageResult): number | undefined {
  return plan.maxFailedShards === undefined ? undefined : Math.max(0, plan.maxFailedShards - failedSoFar(plan, totals));
}

export function overBudget(plan: PlanResult, totals: PageResult): boolean {
  return plan.maxFailedShards !== undefined && failedSoFar(plan, totals) > plan.maxFailedShards;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The non-retryable failure that ends a run past its budget: counts by stage and type, the first few shards. */
export function failureBudgetExceeded(runName: string, budgetSpec: unknown, plan: PlanResult, totals: PageResult): ApplicationFailure {
  const failed = failedSoFar(plan, totals);
  const byKind = Object.entries(totals.failuresByKind ?? {}).sort((a, b) => b[1] - a[1]);
  const spec = typeof budgetSpec === 'string' ? ` ("${budgetSpec}" of ${plan.shardCount} shards)` : '';
  const first = totals.failures.slice(0, 5);
  const message = [
    `run ${runName} stopped: ${failed} shards failed, more than run.maxFailedShards allows (${plan.maxFailedShards}${spec}).`,
    byKind.length ? `By stage and type: ${byKind.map(([k, n]) => `${k} ${n}`).join(' · ')}.` : '',
    plan.failedBefore ? `${plan.failedBefore} failed in an earlier execution and stay recorded.` : '',
    first.length ? `First: ${first.map((f) => `shard ${f.shard} ${f.stage} ${f.type}: ${clip(f.message, 160)}`).join('; ')}.` : '',
    `Every failure is recorded under ${plan.runUri}/failures/. Fix the shards (or raise run.maxFailedShards) and run ` +
      `\`recaption resume ${runName}\`: only the failed shards are retried.`,
  ]
    .filter(Boolean)
    .join('\n');
  return ApplicationFailure.create({
    type: FAILURE_BUDGET_EXCEEDED,
    message,
    nonRetryable: true,
    details: [{ failedShards: failed, maxFailedShards: plan.maxFailedShards, byKind: Object.fromEntries(byKind), first }],
  });
}
