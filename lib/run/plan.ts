/**
 * The plan of a run (`<run>/plan.json`): its config and the input shards, frozen when the run starts. Every stage
 * addresses a shard by its index in the plan, so only numbers cross Temporal.
 */
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { storageFor } from '../storage';
import { AnnotationStore, type AnnotationKeys, type KeyDeterminants, type ModelGroup, type ShardIdentity } from './annotations';
import { RunLayout } from './layout';

export interface PlannedShard extends ShardIdentity {
  /** `00000000` — the input shard's stem, reused for every output of that shard. */
  name: string;
  tar: string;
  /** img2dataset's sibling parquet, when present. */
  parquet: string | null;
  /** The tar's content identity: its annotations are found by it (lib/run/annotations.ts). */
  content: string;
}

export const PLAN_VERSION = 2;

export interface RunPlan {
  version: typeof PLAN_VERSION;
  runName: string;
  runUri: string;
  configHash: string;
  config: RunConfig;
  createdAt: string;
  shards: PlannedShard[];
  annotations: {
    root: string;
    keys: AnnotationKeys;
    /** What each key stands for (also in the key's folder as key.json). */
    determinants: KeyDeterminants;
    /** The model groups the annotate stage computes where missing (the run's needs and annotations.include). */
    compute: ModelGroup[];
    /** The groups the select stage reads for the decisions. */
    read: ModelGroup[];
  };
}

/** Where the run's annotations are. */
export function annotationStore(plan: RunPlan): AnnotationStore {
  return new AnnotationStore(plan.annotations.root, plan.annotations.keys);
}

const planCache = new Map<string, Promise<RunPlan>>();

/** The committed plan of a run (cached per process: activities of one run read it thousands of times). */
export function loadPlan(runUri: string): Promise<RunPlan> {
  let p = planCache.get(runUri);
  if (!p) {
    const uri = new RunLayout(runUri).plan;
    p = storageFor(runUri)
      .readText(uri)
      .then((t) => parsePlan(t, uri));
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

/** The plan of the run at `runUri` when it has planned, else null (read afresh, not cached). */
export async function readPlan(runUri: string): Promise<RunPlan | null> {
  const uri = new RunLayout(runUri).plan;
  const storage = storageFor(uri);
  if (!(await storage.exists(uri))) return null;
  return parsePlan(await storage.readText(uri), uri);
}

function parsePlan(text: string, uri: string): RunPlan {
  let plan: RunPlan;
  try {
    plan = JSON.parse(text) as RunPlan;
  } catch (err) {
    throw new InputError('CorruptInput', `${uri}: not valid JSON: ${(err as Error).message}`);
  }
  return checkedPlan(plan, uri);
}

/** A plan this version can run, or an InputError saying what to do with an older one. */
function checkedPlan(plan: RunPlan, uri: string): RunPlan {
  if (plan.version !== PLAN_VERSION) {
    throw new InputError(
      'OldPlan',
      `${uri} was written by an older recaption (plan version ${plan.version}, now ${PLAN_VERSION}): start the run under a new run.name ` +
        `(its annotations are computed once and shared by every later run)`,
    );
  }
  return plan;
}
