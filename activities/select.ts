import type { StageSummary } from '../lib/pipeline/checkpoint';
import { selectShard as selectStage } from '../lib/pipeline/select-stage';
import { shardActivity, type ShardTask } from './adapter';

/** CPU: filter + mix decisions for one shard under the pool-wide thresholds. */
export function selectShard(task: ShardTask): Promise<StageSummary> {
  return shardActivity('select', task, (plan, ctx) => selectStage(plan, task.index, ctx));
}
