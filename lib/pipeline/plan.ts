/**
 * Plan a run: list the input shards once and freeze them, with the config, in `<run>/plan.json`. Every later
 * stage addresses a shard by its index in this plan, so only numbers cross Temporal.
 */
import * as path from 'node:path';
import { configHash } from '../config/load';
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { joinUri, storageFor } from '../storage';
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

const SHARD_TAR = /^(\d+)\.tar$/;

/** The input's shards in name order; clear errors for a missing or empty folder. */
export async function listInputShards(inputUri: string): Promise<PlannedShard[]> {
  const storage = storageFor(inputUri);
  if (!inputUri.startsWith('gs://')) {
    const { stat } = await import('node:fs/promises');
    const st = await stat(inputUri).catch(() => null);
    if (!st) throw new InputError('MissingInput', `input folder ${inputUri} does not exist`);
    if (!st.isDirectory()) throw new InputError('MissingInput', `input ${inputUri} is not a folder`);
  }
  // list() is recursive; shards are the folder's direct children only.
  const all = (await storage.list(inputUri)).filter((u) => u === joinUri(inputUri, path.posix.basename(u)));
  const names = new Set(all.map((u) => path.posix.basename(u)));
  const shards = [...names]
    .filter((b) => SHARD_TAR.test(b))
    .sort()
    .map((b) => {
      const name = b.replace(/\.tar$/, '');
      return {
        name,
        tar: joinUri(inputUri, b),
        parquet: names.has(`${name}.parquet`) ? joinUri(inputUri, `${name}.parquet`) : null,
      };
    });
  if (shards.length === 0) {
    throw new InputError('MissingInput', `input folder ${inputUri} has no img2dataset shards ({shard:08d}.tar)`);
  }
  return shards;
}

/**
 * Write the plan, or reuse the committed one: a resumed run keeps its shard list even if files were added
 * since, and refuses a changed config (its outputs would mix two configs).
 */
export async function planRun(config: RunConfig): Promise<RunPlan> {
  const layout = RunLayout.of(config.output.uri, config.run.name);
  const storage = storageFor(layout.runUri);
  const hash = configHash(config);
  if (await storage.exists(layout.plan)) {
    const existing = JSON.parse(await storage.readText(layout.plan)) as RunPlan;
    if (existing.configHash !== hash) {
      throw new InputError(
        'ConfigChanged',
        `run "${config.run.name}" at ${layout.runUri} was started with a different config (hash ${existing.configHash}, now ${hash}); ` +
          `use a new run.name, or restore the original config to resume`,
      );
    }
    return existing;
  }
  let shards = await listInputShards(config.input.uri);
  if (config.input.maxShards) shards = shards.slice(0, config.input.maxShards);
  const plan: RunPlan = {
    version: 1,
    runName: config.run.name,
    runUri: layout.runUri,
    configHash: hash,
    config,
    createdAt: new Date().toISOString(),
    shards,
  };
  await storage.writeAtomic(layout.plan, JSON.stringify(plan, null, 2));
  return plan;
}

const planCache = new Map<string, Promise<RunPlan>>();

/** The committed plan of a run (cached per process: activities of one run read it thousands of times). */
export function loadPlan(runUri: string): Promise<RunPlan> {
  let p = planCache.get(runUri);
  if (!p) {
    const layout = new RunLayout(runUri);
    p = storageFor(runUri)
      .readText(layout.plan)
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
