/**
 * Plan a run (CPU, first): list the input shards once with their content identities, decide which annotations the
 * strategy needs and compute their keys, and freeze all of it, with the config, in `<run>/plan.json`
 * (lib/run/plan.ts). Every later stage addresses a shard by its index in this plan.
 */
import { stat } from 'node:fs/promises';
import { configChanges, configHash } from '../config/load';
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { listShards } from '../formats/img2dataset';
import { modelIdentity } from '../models/identity';
import { AnnotationStore, annotationKeys, contentId, keyDeterminants, type ModelGroup, type ModelIdentities } from '../run/annotations';
import { RunLayout } from '../run/layout';
import { annotationsNeeded, annotationsRead } from '../run/needs';
import { PLAN_VERSION, readPlan, type PlannedShard, type RunPlan } from '../run/plan';
import { isGcsUri, storageFor } from '../storage';

/** The input's shards in shard order, with content identities; clear errors for a missing or empty folder. */
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
  return shards.map(({ name, tar, parquet, fingerprint }) => ({ name, tar, parquet, content: contentId(fingerprint) }));
}

/**
 * Write the plan, or reuse the committed one: a resumed run keeps its shard list even if files were added since,
 * and refuses a changed config (its folder holds one strategy's outputs), naming the fields that changed.
 */
export function planRun(config: RunConfig): Promise<RunPlan> {
  return commitPlan(config, async (layout, hash) => {
    const { shards, annotations } = await annotationPlan(config);
    const store = new AnnotationStore(annotations.root, annotations.keys);
    // What each key stands for, next to its files (the same key always stands for the same thing, so a run that
    // loses the race to commit it keeps the other's copy).
    for (const group of store.groups) {
      const uri = store.describe(group);
      const files = storageFor(uri);
      if (!(await files.exists(uri))) await files.writeAtomic(uri, JSON.stringify({ group, key: annotations.keys[group], ...annotations.determinants[group] }, null, 2));
    }
    return { version: PLAN_VERSION, runName: config.run.name, runUri: layout.runUri, configHash: hash, config, createdAt: new Date().toISOString(), shards, annotations };
  });
}

/**
 * The run's plan: the committed one (refused as a changed config unless its hash is this config's), else the one
 * `make` builds, committed no-clobber — losing that race means using (or refusing) the winner's. Every planner
 * (the real one above, bench:scale's simulated one) goes through here.
 */
export async function commitPlan(config: RunConfig, make: (layout: RunLayout, hash: string) => Promise<RunPlan>): Promise<RunPlan> {
  const layout = RunLayout.of(config.output.uri, config.run.name);
  const storage = storageFor(layout.runUri);
  const hash = configHash(config);
  const existing = await readPlan(layout.runUri);
  if (existing) {
    if (existing.configHash !== hash) throw configChangedError(existing, config);
    return existing;
  }
  const plan = await make(layout, hash);
  if ((await storage.writeAtomic(layout.plan, JSON.stringify(plan, null, 2))).committed) return plan;
  // Planned concurrently (a retried plan activity, a second start): the committed plan is the run's — shard
  // indexes point into it — so use it, or refuse it as a changed config like any existing plan.
  const committed = await readPlan(layout.runUri);
  if (!committed) throw new Error(`${layout.plan}: committed by another attempt, then gone`);
  if (committed.configHash !== hash) throw configChangedError(committed, config);
  return committed;
}

/** `ConfigChanged`, with each changed field's old and new value and what to do instead. */
export function configChangedError(plan: RunPlan, config: RunConfig): InputError {
  const value = (c: RunConfig, dotted: string): string => {
    const v = dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], c);
    return v === undefined ? '(not set)' : JSON.stringify(v);
  };
  const changes = configChanges(plan.config, config);
  return new InputError(
    'ConfigChanged',
    [
      `run "${config.run.name}" at ${plan.runUri} was started with another config; changed:`,
      ...(changes.length ? changes.map((f) => `  ${f}: ${value(plan.config, f)} -> ${value(config, f)}`) : ['  (defaults of this version)']),
      `A run keeps one config for life: use a new run.name — it reuses every annotation already computed — or restore the original config to resume.`,
    ].join('\n'),
  );
}
/** The shards and annotations a run over
 `config` would have: what the plan freezes, computed without writing. */
export async function annotationPlan(config: RunConfig): Promise<Pick<RunPlan, 'shards' | 'annotations'>> {
  let shards = await listInputShards(config.input.uri);
  if (config.input.maxShards) shards = shards.slice(0, config.input.maxShards);
  const compute = annotationsNeeded(config);
  const determinants = keyDeterminants(config, compute, await identities(config, compute));
  return {
    shards,
    annotations: { root: AnnotationStore.rootFor(config), keys: annotationKeys(determinants), determinants, compute: [...compute], read: [...annotationsRead(config)] },
  };
}

/** Content identities of the models and centroid file the groups depend on (hashed once per process). */
async function identities(config: RunConfig, groups: ReadonlySet<ModelGroup>): Promise<ModelIdentities> {
  const ids: ModelIdentities = {};
  const folder = async (role: 'captioner' | 'clip'): Promise<string> => {
    const dir = config.models[role].path;
    const { id, files } = await modelIdentity(dir);
    if (Object.keys(files).length === 0) {
      throw new InputError(
        'BadModel',
        `models.${role}.path: ${dir} has no files where the run is planned; annotations are addressed by the model's file hashes, ` +
          `so the CPU worker that plans runs needs the model folder too (e.g. mounted read-only)`,
      );
    }
    return id;
  };
  if (groups.has('captions') || groups.has('syntheticScores')) ids.captioner = await folder('captioner');
  if (groups.has('rawScores') || groups.has('syntheticScores') || groups.has('clusters')) ids.clip = await folder('clip');
  if (groups.has('clusters')) {
    const uri = config.filters.imageCluster!.centroids;
    const st = await storageFor(uri).stat(uri);
    if (!st) throw new InputError('MissingInput', `filters.imageCluster.centroids: ${uri} does not exist`);
    ids.centroids = st.fingerprint;
  }
  return ids;
}
