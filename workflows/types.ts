/**
 * What crosses Temporal: URIs, indexes and small summaries only — never images, embeddings or caption lists.
 * Workflow-safe (plain data and pure functions); shared by the workflows and the client.
 */

import { emptyProgress, type ShardStage, type StageProgress } from '../lib/run/stages';
import type { RunSummaryData } from '../lib/pipeline/finalize-stage';
import type { PlanResult } from '../activities/run';
import type { ShardFailure } from '../lib/run/failures';

export type { StageSummary } from '../lib/pipeline/checkpoint';
export type { ShardStage, StageCounters, StageProgress } from '../lib/run/stages';

/** The run's phases: the shard phases (lib/run/stages.ts PHASE_STAGES) and the run-level steps around them. */
export type Phase = 'plan' | 'annotate' | 'thresholds' | 'select' | 'finalize' | 'done';

export type { PlanResult } from '../activities/run';

export interface PageInput {
  runUri: string;
  /** Shard indexes [start, end) into the run's plan. */
  start: number;
  end: number;
  maxConcurrentShards: number;
  heartbeatTimeout: string;
  gpuTaskQueue: string;
  cpuTaskQueue: string;
  /** Carried across continue-as-new: shards of this page already handled by an earlier execution. */
  resumeFrom?: number;
  carried?: PageResult;
  /**
   * What is left of the run's failure budget when the page starts: past it the page starts no more shards (the run
   * will stop), so a pool of bad shards is not ground through to the end. Absent: no limit.
   */
  maxFailedShards?: number;
}

export interface PageResult {
  progress: StageProgress;
  samples: number;
  kept: number;
  /** Failed shards, capped (the full list is on storage under failures/). `shard` is `#<plan index>`. */
  failures: ShardFailure[];
  failedShards: number;
  /** Per-source kept counts, e.g. { raw: 10, synthetic: 7 }. */
  keptBySource: Record<string, number>;
  /** Failed shards by `<stage> <type>`, e.g. { "annotate CorruptShard": 2 } (absent in results of older code). */
  failuresByKind?: Record<string, number>;
  /** Samples the stages processed (committed shards found skipped count none): what samples/s is measured on. */
  processedSamples?: Partial<Record<ShardStage, number>>;
}

export interface RunInput {
  /** Validated RunConfig as plain JSON (a few KB). */
  config: unknown;
  /** State carried across continue-as-new. */
  state?: RunState;
}

export interface RunState {
  plan: PlanResult;
  phase: Phase;
  /** Pages of the current phase already started (pages: plan.shardCount / temporal.pageSize). */
  nextPage: number;
  totals: PageResult;
  /** When this execution began the current phase (workflow time, ms since the epoch): samples/s and ETA use it. */
  phaseStartedAt?: number;
}

export type RunSummary = RunSummaryData & { progress: StageProgress };

export interface RunProgress {
  phase: Phase;
  shards: number;
  pagesDone: number;
  pages: number;
  progress: StageProgress;
  activePages: string[];
  /** When this execution began the current phase (ms since the epoch). */
  phaseStartedAt?: number;
  /** Samples processed by this execution's finished pages, per stage. */
  processedSamples?: Partial<Record<ShardStage, number>>;
  /** Failed shards: by this execution, and kept from earlier ones; and how many the run may have. */
  failedShards?: number;
  failedBefore?: number;
  maxFailedShards?: number;
}

export function emptyPageResult(): PageResult {
  return { progress: emptyProgress(), samples: 0, kept: 0, failures: [], failedShards: 0, keptBySource: {}, failuresByKind: {}, processedSamples: {} };
}

export const MAX_FAILURES_CARRIED = 20;

export function addPageResult(into: PageResult, r: PageResult): PageResult {
  for (const s of Object.keys(into.progress) as ShardStage[]) {
    into.progress[s].done += r.progress[s].done;
    into.progress[s].skipped += r.progress[s].skipped;
    into.progress[s].failed += r.progress[s].failed;
  }
  into.samples += r.samples;
  into.kept += r.kept;
  into.failedShards += r.failedShards;
  into.failures = into.failures.concat(r.failures).slice(0, MAX_FAILURES_CARRIED);
  for (const [k, v] of Object.entries(r.keptBySource)) into.keptBySource[k] = (into.keptBySource[k] ?? 0) + v;
  into.failuresByKind = addCounts(into.failuresByKind ?? {}, r.failuresByKind) as Record<string, number>;
  into.processedSamples = addCounts(into.processedSamples ?? {}, r.processedSamples);
  return into;
}

function addCounts<K extends string>(into: Partial<Record<K, number>>, add: Partial<Record<K, number>> | undefined): Partial<Record<K, number>> {
  for (const [k, v] of Object.entries(add ?? {}) as Array<[K, number]>) into[k] = (into[k] ?? 0) + v;
  return into;
}
