/**
 * What a run folder holds committed, read from storage alone (no Temporal): commit markers per stage, thresholds,
 * the finalized outputs, the shared annotations found for shards this run has not annotated itself, and the
 * recorded failures a new execution would retry or keep. `recaption resume` shows it before it starts;
 * `recaption status` shows it for a run that is not running.
 */
import { pendingRetry, type RetryPlan } from '../run/failures';
import { RunLayout } from '../run/layout';
import type { RunPlan } from '../run/plan';
import { SHARD_STAGES, type ShardStage } from '../run/stages';
import { storageFor } from '../storage';
import { missingByShard, needsModels } from './annotate-stage';

export interface CommittedWork {
  runUri: string;
  shards: number;
  /** Shards whose stage committed its marker in this run (they are skipped, never redone). */
  stages: Record<ShardStage, number>;
  thresholds: boolean;
  /** The run-level outputs (manifest) exist: an execution finalized the run. */
  finalized: boolean;
  /**
   * Of the shards without this run's annotate marker: how many have every annotation the run needs already (from
   * any run over the same input and models: reused, no GPU), and how many the GPU stage still has to annotate.
   * Absent when not asked for (it looks up every such shard's annotation files).
   */
  annotations?: { reused: number; toAnnotate: number };
  failures: RetryPlan;
}

export async function committedWork(plan: RunPlan, opts: { annotations?: boolean } = {}): Promise<CommittedWork> {
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const names = new Set(plan.shards.map((s) => s.name));
  const markers = async (stage: ShardStage): Promise<Set<string>> => {
    const suffix = '.done.json';
    const done = (await storage.list(layout.stageDir(stage))).filter((u) => u.endsWith(suffix)).map((u) => u.slice(u.lastIndexOf('/') + 1, -suffix.length));
    return new Set(done.filter((n) => names.has(n)));
  };
  const committed = await Promise.all(SHARD_STAGES.map(markers));
  const stages = Object.fromEntries(SHARD_STAGES.map((s, i) => [s, committed[i]!.size])) as Record<ShardStage, number>;
  let annotations: CommittedWork['annotations'];
  if (opts.annotations && plan.annotations.compute.length > 0) {
    const annotated = committed[SHARD_STAGES.indexOf('annotate')]!;
    const rest = plan.shards.filter((s) => !annotated.has(s.name));
    const missing = await missingByShard(plan.annotations, rest);
    const toAnnotate = missing.filter(needsModels).length;
    annotations = { reused: rest.length - toAnnotate, toAnnotate };
  }
  return {
    runUri: plan.runUri,
    shards: plan.shards.length,
    stages,
    thresholds: await storage.exists(layout.thresholds),
    finalized: await storage.exists(layout.manifest),
    ...(annotations ? { annotations } : {}),
    failures: await pendingRetry(storage, layout),
  };
}
