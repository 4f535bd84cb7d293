import { scoreShard as scoreStage } from '../lib/pipeline/score-stage';
import type { StageSummary } from '../lib/pipeline/summary';
import { shardActivity, whileHeartbeating, type ShardTask } from './adapter';
import { clipFor, deviceFor } from './models';

/** GPU: CLIP scores of raw and synthetic captions for one shard. */
export async function scoreShard(task: ShardTask): Promise<StageSummary> {
  return shardActivity('score', task, async (plan, ctx) => {
    // The worker's --device also places the image-cluster graph (lib/pipeline/image-clusters reads models.device).
    const onWorker = { ...plan, config: { ...plan.config, models: { ...plan.config.models, device: deviceFor(plan.config) } } };
    return scoreStage(onWorker, task.index, await whileHeartbeating(ctx, clipFor(plan.config)), ctx);
  });
}
