import type { StageSummary } from '../lib/pipeline/checkpoint';
import { writeShard as writeStage } from '../lib/pipeline/write-stage';
import { shardActivity, type ShardTask } from './adapter';

/** CPU: the output WebDataset shard of one input shard's kept samples. */
export function writeShard(task: ShardTask): Promise<StageSummary> {
  return shardActivity('write', task, (plan, ctx) => writeStage(plan, task.index, ctx));
}
