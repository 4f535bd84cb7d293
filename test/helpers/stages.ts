/** Run every stage of a planned run in order, without Temporal (what the workflows do, shard by shard). */
import type { Captioner, ClipScorer } from '../../lib/models/types';
import { annotateShard, type LoadAnnotateModels } from '../../lib/pipeline/annotate-stage';
import { finalizeRun, type RunSummaryData } from '../../lib/pipeline/finalize-stage';
import { selectShard } from '../../lib/pipeline/select-stage';
import { StageModels } from '../../lib/pipeline/stage-models';
import { computeThresholds } from '../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../lib/pipeline/write-stage';
import type { RunPlan } from '../../lib/run/plan';

/** The annotate stage's model loader over given models (the nearest-centroid graph from the run's config). */
export function givenModels(captioner: Captioner | null, clip: ClipScorer | null): (plan: RunPlan) => LoadAnnotateModels {
  return (plan) => async (groups) => ({
    captioner,
    clip,
    centroids: groups.has('clusters') ? await new StageModels().centroids(plan.config) : null,
  });
}

/** A loader for runs that must not need any model (their annotations exist): it fails the test if called. */
export const noModels: LoadAnnotateModels = async (groups) => {
  throw new Error(`no model may be needed here, but the annotate stage asked for ${[...groups].join(', ')}`);
};

export async function runAllStages(plan: RunPlan, captioner: Captioner | null, clip: ClipScorer | null): Promise<RunSummaryData> {
  return runStages(plan, givenModels(captioner, clip)(plan));
}

export async function runStages(plan: RunPlan, load: LoadAnnotateModels): Promise<RunSummaryData> {
  for (let i = 0; i < plan.shards.length; i++) await annotateShard(plan, i, load);
  await computeThresholds(plan);
  for (let i = 0; i < plan.shards.length; i++) {
    await selectShard(plan, i);
    await writeShard(plan, i);
  }
  return finalizeRun(plan);
}
