/**
 * Plan a run (CPU, first): list the input shards once and freeze them, with the config, in `<run>/plan.json`
 * (lib/run/plan.ts). Every later stage addresses a shard by its index in this plan.
 */
import { stat } from 'node:fs/promises';
import { configHash } from '../config/load';
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { listShards } from '../formats/img2dataset';
import { isGcsUri, storageFor } from '../storage';
import { RunLayout } from '../run/layout';
import type { PlannedShard, RunPlan } from '../run/plan';

/** The input's shards in shard order; clear errors for a missing or empty folder. */
export async function listInputShards(inputUri: string): Promise<PlannedShard[]> {
  if (!isGcsUri(inputUri)) {
    const st = await stat(inputUri).catch(() => null);
    if (!st) throw new InputError('MissingInput', `input folder ${inputUri} does not exist`);
    if (!st.isDirectory()) throw new InputError('MissingInput', `input ${inputUri} is not a folder`);
  }
  const shards = await listShards(storageFor(inputUri), inputUri);
  if (shards.length === 0) {
    throw new InputError('MissingInput', `input folder ${inputUri} has no img2dataset shards ({shard:08d}.tar)`);
  }
  return shards.map(({ name, tar, parquet }) => ({ name, tar, parquet }));
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
