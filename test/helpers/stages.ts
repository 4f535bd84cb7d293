/** Run every stage of a planned run in order, without Temporal (what the workflows do, shard by shard). */
import type { Captioner, ClipScorer } from '../../lib/models/types';
import { captionShard } from '../../lib/pipeline/caption-stage';
import { finalizeRun, type RunSummaryData } from '../../lib/pipeline/finalize-stage';
import type { RunPlan } from '../../lib/run/plan';
import { scoreShard } from '../../lib/pipeline/score-stage';
import { StageModels } from '../../lib/pipeline/stage-models';
import { selectShard } from '../../lib/pipeline/select-stage';
import { computeThresholds } from '../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../lib/pipeline/write-stage';

export async function runAllStages(plan: RunPlan, captioner: Captioner, clip: ClipScorer): Promise<RunSummaryData> {
  for (let i = 0; i < plan.shards.length; i++) {
    await captionShard(plan, i, captioner);
    await scoreShard(plan, i, { clip, centroids: await new StageModels().centroids(plan.config) });
  }
  await computeThresholds(plan);
  for (let i = 0; i < plan.shards.length; i++) {
    await selectShard(plan, i);
    await writeShard(plan, i);
  }
  return finalizeRun(plan);
}
