/**
 * The plan of a run (`<run>/plan.json`): its config and the input shards, frozen when the run starts. Every stage
 * addresses a shard by its index in the plan, so only numbers cross Temporal.
 */
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { storageFor } from '../storage';
import { RunLayout } from './layout';

export interface PlannedShard {
  /** `00000000` — the input shard's stem, reused for every output of that shard. */
  name: string;
  tar: string;
  /** img2dataset's sibling parquet, when present. */
  parquet: string | null;
}

export interface RunPlan {
  version: 1;
  runName: string;
  runUri: string;
  configHash: string;
  config: RunConfig;
  createdAt: string;
  shards: PlannedShard[];
}

const planCache = new Map<string, Promise<RunPlan>>();

/** The committed plan of a run (cached per process: activities of one run read it thousands of times). */
export function loadPlan(runUri: string): Promise<RunPlan> {
  let p = planCache.get(runUri);
  if (!p) {
    p = storageFor(runUri)
      .readText(new RunLayout(runUri).plan)
      .then((t) => JSON.parse(t) as RunPlan);
    p.catch(() => planCache.delete(runUri));
    planCache.set(runUri, p);
  }
  return p;
}

export function shardOf(plan: RunPlan, index: number): PlannedShard {
  const s = plan.shards[index];
  if (!s) throw new InputError('BadShardIndex', `run ${plan.runName} has no shard #${index} (it has ${plan.shards.length})`);
  return s;
}
