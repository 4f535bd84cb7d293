import { captionShard as captionStage } from '../lib/pipeline/caption-stage';
import type { StageSummary } from '../lib/pipeline/summary';
import { shardActivity, whileHeartbeating, type ShardTask } from './adapter';
import { captionerFor } from './models';

/** GPU: synthetic captions for one shard. */
export async function captionShard(task: ShardTask): Promise<StageSummary> {
  return shardActivity('caption', task, async (plan, ctx) => captionStage(plan, task.index, await whileHeartbeating(ctx, captionerFor(plan.config)), ctx));
}
