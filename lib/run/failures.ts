/**
 * Shard-level failures: a shard that cannot be processed (bad input, or retries used up) is recorded at
 * `failures/<stage>/<shard>.json`; later stages skip it, and finalize and the report list it. The folder is
 * the record; the manifest holds a copy.
 *
 * A record stands for the execution that wrote it: each new execution of the run (`recaption resume`, or `run` with
 * the same name) first clears the records whose shards it retries (`retryFailedShards`), so a shard fixed since is
 * processed again and ends up normal in the manifest, and one still bad is recorded again. Committed stages are
 * never redone: a retried shard runs only the stages it has no commit marker for.
 */
import { InputError } from '../errors';
import type { Storage } from '../storage';
import type { RunLayout } from './layout';
import type { ShardStage } from './stages';

export interface ShardFailure {
  shard: string;
  stage: string;
  /** The error's type, e.g. `CorruptShard`. */
  type: string;
  message: string;
  /** When it was recorded. */
  at?: string;
  /** Kept by a later execution instead of retried (see RetryPlan.keep): its stage is not run again for the shard. */
  kept?: boolean;
}

export async function recordShardFailure(storage: Storage, layout: RunLayout, stage: ShardStage, failure: Omit<ShardFailure, 'stage' | 'at'>): Promise<void> {
  const record: ShardFailure = { shard: failure.shard, stage, type: failure.type, message: failure.message, at: new Date().toISOString() };
  // No-clobber: a duplicated recording (a retried activity) keeps the first record and its time.
  await storage.writeAtomic(layout.failure(stage, failure.shard), JSON.stringify(record, null, 2));
}

/** Whether the shard failed in any of `stages`. */
export async function failedInAny(storage: Storage, layout: RunLayout, stages: readonly ShardStage[], shard: string): Promise<boolean> {
  for (const s of stages) if (await storage.exists(layout.failure(s, shard))) return true;
  return false;
}

/** Every recorded failure of the run. */
export async function readShardFailures(storage: Storage, layout: RunLayout): Promise<ShardFailure[]> {
  const failures: ShardFailure[] = [];
  for (const uri of await storage.list(layout.failuresDir)) {
    if (!uri.endsWith('.json')) continue;
    try {
      failures.push(JSON.parse(await storage.readText(uri)) as ShardFailure);
    } catch (err) {
      throw new InputError('CorruptInput', `${uri}: not valid JSON: ${(err as Error).message}`);
    }
  }
  return failures;
}

/** Which recorded failures a new execution retries, and which stay. */
export interface RetryPlan {
  retry: ShardFailure[];
  /**
   * Failures that stay recorded: a shard that failed its annotate stage after the pool-wide thresholds were
   * committed without it. Selecting it now would use thresholds computed over a pool it was not in, so it stays
   * out of this run (a new run.name over the same input includes it, reusing every annotation).
   */
  keep: ShardFailure[];
}

/** The one stage whose failures a new execution may keep (see RetryPlan.keep). */
const KEEPABLE: ShardStage = 'annotate';

/** Split recorded failures into those a new execution retries and those it keeps (see RetryPlan.keep). */
export function retryPlan(failures: readonly ShardFailure[], thresholdsCommitted: boolean): RetryPlan {
  const keep = failures.filter((f) => thresholdsCommitted && f.stage === KEEPABLE);
  return { retry: failures.filter((f) => !keep.includes(f)), keep };
}

/** The retry plan of the run as it is on storage now (read-only: what `recaption resume` shows before it starts). */
export async function pendingRetry(storage: Storage, layout: RunLayout): Promise<RetryPlan> {
  return retryPlan(await readShardFailures(storage, layout), await storage.exists(layout.thresholds));
}

/**
 * At the start of a new execution: clear the records of the failures it retries, so their shards run again, and
 * mark the ones it keeps (so the stage protocol tells them from a failure recorded by this execution, which a
 * retried attempt must work on again). Idempotent (a retried activity clears and marks what is left).
 */
export async function retryFailedShards(storage: Storage, layout: RunLayout): Promise<RetryPlan> {
  const plan = await pendingRetry(storage, layout);
  for (const f of plan.retry) await storage.remove(layout.failure(f.stage as ShardStage, f.shard));
  for (const f of plan.keep.filter((k) => !k.kept)) {
    await storage.writeAtomic(layout.failure(f.stage as ShardStage, f.shard), JSON.stringify({ ...f, kept: true }, null, 2), { replace: true });
  }
  return plan;
}

/** Whether the shard's failure in `stage` is one an earlier execution recorded and this one keeps. */
export async function keptFailure(storage: Storage, layout: RunLayout, stage: ShardStage, shard: string): Promise<boolean> {
  if (stage !== KEEPABLE) return false; // no lookup for the stages whose failures are never kept
  const uri = layout.failure(stage, shard);
  if (!(await storage.exists(uri))) return false;
  try {
    return (JSON.parse(await storage.readText(uri)) as ShardFailure).kept === true;
  } catch (err) {
    throw new InputError('CorruptInput', `${uri}: not valid JSON: ${(err as Error).message}`);
  }
}

/** Distinct failed shards by `stage type`, e.g. { "annotate CorruptShard": 3 } — how summaries count them. */
export function failureCounts(failures: readonly ShardFailure[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of failures) out[`${f.stage} ${f.type}`] = (out[`${f.stage} ${f.type}`] ?? 0) + 1;
  return out;
}
