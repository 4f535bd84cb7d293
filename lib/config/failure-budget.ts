/**
 * `run.maxFailedShards`: how many shards may fail as a whole (bad input, retries used up) before the run stops —
 * a count (`5`) or a percentage of the run's shards (`"1%"`). The one home of its format and its arithmetic: the
 * config schema, the planner (which turns it into a count for the workflow) and `recaption resume
 * --max-failed-shards` all use these.
 */
import { z } from 'zod';

export type FailureBudgetSpec = number | `${number}%`;

export const DEFAULT_FAILURE_BUDGET: FailureBudgetSpec = '1%';

const PERCENT = /^(\d+(?:\.\d+)?)%$/;

export const failureBudgetSchema = z
  .union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(PERCENT)
        .refine((s) => Number(PERCENT.exec(s)?.[1] ?? 0) <= 100)
        .transform((s) => s as `${number}%`),
    ],
    { error: 'must be a count of shards (e.g. 5) or a percentage of them (e.g. "1%", at most "100%")' },
  )
  .default(DEFAULT_FAILURE_BUDGET);

/**
 * Failed shards a run of `shards` shards may have and still complete: the count, or the percentage rounded down
 * (so "1%" of 50 shards allows none — a small run with a bad shard says so at once).
 */
export function failureBudget(spec: FailureBudgetSpec | undefined, shards: number): number {
  const s = spec ?? DEFAULT_FAILURE_BUDGET;
  if (typeof s === 'number') return s;
  return Math.floor((Number(PERCENT.exec(s)![1]) * shards) / 100 + 1e-9);
}

/** A command-line value (`5`, `"2.5%"`) as a spec, or a message saying what is wrong. */
export function parseFailureBudget(text: string): { spec: FailureBudgetSpec } | { error: string } {
  const r = failureBudgetSchema.safeParse(/^\d+$/.test(text) ? Number(text) : text);
  return r.success ? { spec: r.data } : { error: r.error.issues.map((i) => i.message).join('; ') };
}

/** "5 (run.maxFailedShards "1%" of 500 shards)" — how a message names the budget. */
export function describeFailureBudget(spec: FailureBudgetSpec | undefined, shards: number): string {
  const s = spec ?? DEFAULT_FAILURE_BUDGET;
  return typeof s === 'number' ? `${s} (run.maxFailedShards)` : `${failureBudget(s, shards)} (run.maxFailedShards "${s}" of ${shards} shards)`;
}
