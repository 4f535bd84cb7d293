import type { StageSummary } from '../lib/pipeline/checkpoint';
import { scoreShard } from '../lib/pipeline/score-stage';
import type { StageModels } from '../lib/pipeline/stage-models';
import { shardActivity, whileHeartbeating, type ShardTask } from './adapter';

/** GPU: CLIP scores (and image clusters) for one shard, with the worker's CLIP and nearest-centroid models. */
export function scoreActivity(models: StageModels): (task: ShardTask) => Promise<StageSummary> {
  return (task) => shardActivity('score', task, async (plan, ctx) => scoreShard(plan, task.index, await whileHeartbeating(ctx, models.forScore(plan.config)), ctx));
}
