import { scoreShard as scoreStage } from '../lib/pipeline/score-stage';
import type { StageSummary } from '../lib/pipeline/summary';
import { shardActivity, whileHeartbeating, type ShardTask } from './adapter';
import { clipFor } from './models';

/** GPU: CLIP scores of raw and synthetic captions for one shard. */
export async function scoreShard(task: ShardTask): Promise<StageSummary> {
  return shardActivity('score', task, async (plan, ctx) => scoreStage(plan, task.index, await whileHeartbeating(ctx, clipFor(plan.config)), ctx));
}
