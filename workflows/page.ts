/**
 * One page of shards (≤ 1,000): runs the phase's two stages per shard with bounded concurrency, counts
 * results, records failed shards and carries on. Continues-as-new with its counters when the server suggests.
 */
import {
  ApplicationFailure,
  ActivityFailure,
  continueAsNew,
  defineQuery,
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
  let next = input.resumeFrom ?? input.start;
  const inFlight = new Set<Promise<void>>();
  setHandler(pageProgressQuery, () => ({ ...result, next, inFlight: inFlight.size, start: input.start, end: input.end }));

  const [first, second] = PHASE_STAGES[input.phase];
  const call = (stage: ShardStage, index: number): Promise<StageSummary> =>
    proxies[STAGE_QUEUE[stage]][STAGE_ACTIVITY[stage]].executeWithOptions({ summary: `${stage} shard #${index}` }, [{ runUri: input.runUri, index }]);
  const count = (stage: ShardStage, s: StageSummary) => {
    if (s.failedEarlier) return;
    result.progress[stage].done += 1;
    if (s.skipped) result.progress[stage].skipped += 1;
  };

  const runShard = async (index: number): Promise<void> => {
    let stage: ShardStage = first;
    try {
      const a = await call(first, index);
      count(first, a);
      if (a.failedEarlier) {
        result.failedShards += 1;
        return;
      }
      stage = second;
      const b = await call(second, index);
      count(second, b);
      if (input.phase === 'select') {
        // select's summary carries the decisions; write's carries nothing new.
        result.samples += a.samples;
        result.kept += a.counts?.kept ?? 0;
        for (const src of ['raw', 'synthetic']) {
          const n = a.counts?.[src] ?? 0;
          if (n) result.keptBySource[src] = (result.keptBySource[src] ?? 0) + n;
        }
      }
    } catch (err) {
      // A bad shard (or one whose retries ran out) must not stop the pool: record it and go on.
      const f = failureOf(err);
      result.progress[stage].failed += 1;
      result.failedShards += 1;
      if (result.failures.length < MAX_FAILURES_CARRIED) {
        result.failures.push({ shard: `#${index}`, stage, type: f.type, message: f.message });
      }
    }
  };

  for (;;) {
    const draining = workflowInfo().continueAsNewSuggested;
    if (draining && inFlight.size === 0 && next < input.end) {
      // History is long: start fresh with the counters (a few hundred bytes) and the next shard index.
      await continueAsNew<typeof shardPageWorkflow>({ ...input, resumeFrom: next, carried: result });
    }
    while (!draining && next < input.end && inFlight.size < input.maxConcurrentShards) {
      const p: Promise<void> = runShard(next++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight);
  }
  return result;
}
