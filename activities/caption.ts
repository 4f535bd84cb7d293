import { captionShard } from '../lib/pipeline/caption-stage';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import type { StageModels } from '../lib/pipeline/stage-models';
import { shardActivity, whileHeartbeating, type ShardTask } from './adapter';

/** GPU: synthetic captions for one shard, with the worker's captioner. */
export function captionActivity(models: StageModels): (task: ShardTask) => Promise<StageSummary> {
  return (task) => shardActivity('caption', task, async (plan, ctx) => captionShard(plan, task.index, await whileHeartbeating(ctx, models.captioner(plan.config)), ctx));
}
