/**
 * What crosses Temporal: URIs, indexes and small summaries only — never images, embeddings or caption lists.
 * Shared by workflows (types only), activities and the client.
 */

export type Phase = 'plan' | 'score' | 'thresholds' | 'select' | 'finalize' | 'done';
export type StageName = 'caption' | 'score' | 'select' | 'write';

export interface PlanResult {
  runUri: string;
  shardCount: number;
  configHash: string;
  preset: string;
}

export type { StageSummary } from '../lib/pipeline/summary';

export interface StageCounters {
  done: number;
  skipped: number;
  failed: number;
}

export type StageProgress = Record<StageName, StageCounters>;

export interface ShardFailure {
  shard: string;
  stage: StageName;
  type: string;
  message: string;
}

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
}

export interface PageResult {
  progress: StageProgress;
  samples: number;
  kept: number;
  /** Failed shards, capped (the full list is on storage under failures/). */
  failures: ShardFailure[];
  failedShards: number;
  /** Per-source kept counts, e.g. { raw: 10, synthetic: 7 }. */
  keptBySource: Record<string, number>;
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
  nextPage: number;
  pages: number;
  totals: PageResult;
  thresholds?: Record<string, number | string>;
}

import type { RunSummaryData } from '../lib/pipeline/finalize-stage';

export type RunSummary = RunSummaryData & { progress: StageProgress };

export interface RunProgress {
  phase: Phase;
  shards: number;
  pagesDone: number;
  pages: number;
  progress: StageProgress;
  activePages: string[];
}

export function emptyProgress(): StageProgress {
  const z = () => ({ done: 0, skipped: 0, failed: 0 });
  return { caption: z(), score: z(), select: z(), write: z() };
}

export function emptyPageResult(): PageResult {
  return { progress: emptyProgress(), samples: 0, kept: 0, failures: [], failedShards: 0, keptBySource: {} };
}

export const MAX_FAILURES_CARRIED = 20;

export function addPageResult(into: PageResult, r: PageResult): PageResult {
  for (const s of Object.keys(into.progress) as StageName[]) {
    into.progress[s].done += r.progress[s].done;
    into.progress[s].skipped += r.progress[s].skipped;
    into.progress[s].failed += r.progress[s].failed;
  }
  into.samples += r.samples;
  into.kept += r.kept;
  into.failedShards += r.failedShards;
  into.failures = into.failures.concat(r.failures).slice(0, MAX_FAILURES_CARRIED);
  for (const [k, v] of Object.entries(r.keptBySource)) into.keptBySource[k] = (into.keptBySource[k] ?? 0) + v;
  return into;
}
