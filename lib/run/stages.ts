/**
 * The shard stages of a run, in order, and what each one needs: the one list that the layout, the stage
 * protocol, the workflows, progress and status all read. Pure data (type imports only), because the workflow
 * bundle includes it.
 *
 * Thresholds are pool-wide, so shard work runs in two phases: every shard is annotated (captions, CLIP scores,
 * clusters: the GPU work, skipped where the shared annotations already exist) before any is selected (select,
 * write: CPU only).
 */
import type { QueueKind } from '../config/task-queues';

export const SHARD_STAGES = ['annotate', 'select', 'write'] as const;
export type ShardStage = (typeof SHARD_STAGES)[number];

export type ShardPhase = 'annotate' | 'select';
export const PHASE_STAGES: Record<ShardPhase, readonly ShardStage[]> = {
  annotate: ['annotate'],
  select: ['select', 'write'],
};

/** The task queue a stage runs on: the GPU stage runs models; CPU stages read, decide and write files. */
export const STAGE_QUEUE: Record<ShardStage, QueueKind> = { annotate: 'gpu', select: 'cpu', write: 'cpu' };

/** The activity that runs each stage. These names are in recorded histories: never rename them. */
export const STAGE_ACTIVITY = {
  annotate: 'annotateShard',
  select: 'selectShard',
  write: 'writeShard',
} as const satisfies Record<ShardStage, string>;

/** The stages that run before `stage` on the same shard (a failure in any of them makes `stage` skip it). */
export function stagesBefore(stage: ShardStage): readonly ShardStage[] {
  return SHARD_STAGES.slice(0, SHARD_STAGES.indexOf(stage));
}

/** Per-stage counters of a run or page: how many shards were done (of those, skipped as committed) or failed. */
export interface StageCounters {
  done: number;
  skipped: number;
  failed: number;
}
export type StageProgress = Record<ShardStage, StageCounters>;

export function emptyProgress(): StageProgress {
  return Object.fromEntries(SHARD_STAGES.map((s) => [s, { done: 0, skipped: 0, failed: 0 }])) as StageProgress;
}
