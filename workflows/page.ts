/**
 * One page of shards (≤ 1,000): runs the phase's stages per shard with bounded concurrency (in the annotate phase
 * only for shards whose annotations are missing), counts results, records failed shards and carries on — until the
 * run's failure budget left to it is spent (then it starts no more shards). Continues-as-new with its counters when
 * the server suggests. Cancelled (the run is), it starts nothing more, lets the running stages stop at their
 * checkpoint (cancellation reaches them with their next heartbeat), then ends as cancelled: nothing is recorded as
 * failed.
 */
import {
  ApplicationFailure,
  ActivityFailure,
  continueAsNew,
  defineQuery,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import type { QueueKind } from '../lib/config/task-queues';
import { PHASE_STAGES, STAGE_ACTIVITY, STAGE_QUEUE, type ShardPhase, type ShardStage } from '../lib/run/stages';
import { stageOptions } from './activity-options';
import { emptyPageResult, MAX_FAILURES_CARRIED, type PageInput, type PageResult, type StageSummary } from './types';

export interface ShardPageInput extends PageInput {
  phase: ShardPhase;
}

/** The shard-stage activities, by name (lib/run/stages.ts STAGE_ACTIVITY). */
type ShardActivities = Pick<GpuActivities & CpuActivities, (typeof STAGE_ACTIVITY)[ShardStage]>;

export const pageProgressQuery = defineQuery<PageResult & { next: number; inFlight: number; start: number; end: number }>('progress');

function failureOf(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? 'ApplicationFailure', message: e.message };
  return { type: 'Error', message: e instanceof Error ? e.message : String(e) };
}

export async function shardPageWorkflow(input: ShardPageInput): Promise<PageResult> {
  const result: PageResult = input.carried ?? emptyPageResult();
  // Each stage's activity is called through the proxy of its queue (lib/run/stages.ts STAGE_QUEUE).
  const proxies: Record<QueueKind, ReturnType<typeof proxyActivities<ShardActivities>>> = {
    gpu: proxyActivities<ShardActivities>(stageOptions('gpu', input.gpuTaskQueue, input.heartbeatTimeout)),
    cpu: proxyActivities<ShardActivities>(stageOptions('cpu', input.cpuTaskQueue, input.heartbeatTimeout)),
  };
  const cpu = proxyActivities<CpuActivities>(stageOptions('cpu', input.cpuTaskQueue, input.heartbeatTimeout));
  const stages = PHASE_STAGES[input.phase];
  const from = input.resumeFrom ?? input.start;

  // The GPU stage runs only for shards that lack annotations: the rest (annotated by any earlier run) need no GPU.
  let work = Array.from({ length: input.end - from }, (_, k) => from + k);
  if (input.phase === 'annotate') {
    work = await cpu.shardsToAnnotate.executeWithOptions({ summary: `annotations of shards ${from}–${input.end - 1}` }, [
      { runUri: input.runUri, start: from, end: input.end },
    ]);
    const reused = input.end - from - work.length;
    result.progress.annotate.done += reused;
    result.progress.annotate.skipped += reused;
  }
  let next = 0;
  const inFlight = new Set<Promise<void>>();
  // Wakes the loop when a shard ends: one promise per wait, where a race over the shards in flight made one per shard
  // per wait, each capturing a stack trace in the workflow sandbox (npm run bench:scale). Same commands, same order.
  let shardEnded = () => {};
  /** The cancellation that reached a stage: the page stops starting shards and ends with it. */
  let cancelled: unknown;
  const count = <K extends string>(into: Partial<Record<K, number>>, key: K, n: number) => (into[key] = (into[key] ?? 0) + n);
  const failuresByKind = (result.failuresByKind ??= {});
  const processedSamples = (result.processedSamples ??= {});
  setHandler(pageProgressQuery, () => ({ ...result, next: work[next] ?? input.end, inFlight: inFlight.size, start: input.start, end: input.end }));

  const call = (stage: ShardStage, index: number): Promise<StageSummary> =>
    proxies[STAGE_QUEUE[stage]][STAGE_ACTIVITY[stage]].executeWithOptions({ summary: `${stage} shard #${index}` }, [{ runUri: input.runUri, index }]);

  const runShard = async (index: number): Promise<void> => {
    let stage: ShardStage = stages[0]!;
    try {
      for (stage of stages) {
        const s = await call(stage, index);
        // Its failure is already counted: in this execution's annotate phase, or kept from an earlier execution.
        if (s.failedEarlier) return;
        result.progress[stage].done += 1;
        if (s.skipped) result.progress[stage].skipped += 1;
        else count(processedSamples, stage, s.samples);
        if (stage === 'select') {
          // select's summary carries the decisions; write's carries nothing new.
          result.samples += s.samples;
          result.kept += s.counts?.kept ?? 0;
          for (const src of ['raw', 'synthetic']) {
            const n = s.counts?.[src] ?? 0;
            if (n) result.keptBySource[src] = (result.keptBySource[src] ?? 0) + n;
          }
        }
      }
    } catch (err) {
      // Cancelled, the shard did not fail: it is left as it is (its committed stages stay), to resume.
      if (isCancellation(err)) {
        cancelled ??= err;
        return;
      }
      // A bad shard (or one whose retries ran out) must not stop the pool: record it and go on.
      const f = failureOf(err);
      result.progress[stage].failed += 1;
      result.failedShards += 1;
      count(failuresByKind, `${stage} ${f.type}`, 1);
      if (result.failures.length < MAX_FAILURES_CARRIED) {
        result.failures.push({ shard: `#${index}`, stage, type: f.type, message: f.message });
      }
      // On storage too, whatever the stage and cause, so finalize accounts for the shard (bad input is already there).
      if (patched('record-every-shard-failure')) {
        // If even that cannot be written, finalize finds the shard unaccounted for and fails the run, naming it.
        await cpu.recordShardFailure
          .executeWithOptions({ summary: `failure of shard #${index}` }, [{ runUri: input.runUri, index, stage, type: f.type, message: f.message }])
          .catch(() => undefined);
      }
    }
  };

  const spent = () => input.maxFailedShards !== undefined && result.failedShards > input.maxFailedShards;
  for (;;) {
    // Cancelled or past the budget: start nothing more, let what runs finish (or stop at its checkpoint).
    const stopping = cancelled !== undefined || spent();
    const draining = stopping || workflowInfo().continueAsNewSuggested;
    if (!stopping && draining && inFlight.size === 0 && next < work.length) {
      // History is long: start fresh with the counters (a few hundred bytes) and the next shard index.
      await continueAsNew<typeof shardPageWorkflow>({ ...input, resumeFrom: work[next]!, carried: result });
    }
    while (!draining && next < work.length && inFlight.size < input.maxConcurrentShards) {
      const p: Promise<void> = runShard(work[next++]!).finally(() => {
        inFlight.delete(p);
        shardEnded();
      });
      inFlight.add(p);
    }
    if (inFlight.size === 0) break;
    await new Promise<void>((resolve) => (shardEnded = resolve));
  }
  if (cancelled !== undefined) throw cancelled;
  return result;
}
