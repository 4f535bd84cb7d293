/**
 * Shard-level failures: a shard that cannot be processed (bad input) is recorded at
 * `failures/<stage>/<shard>.json`; later stages skip it, and finalize and the report list it. The folder is
 * the record; the manifest holds a copy.
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
}

export async function recordShardFailure(storage: Storage, layout: RunLayout, stage: ShardStage, failure: Omit<ShardFailure, 'stage' | 'at'>): Promise<void> {
  const record: ShardFailure = { shard: failure.shard, stage, type: failure.type, message: failure.message, at: new Date().toISOString() };
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
