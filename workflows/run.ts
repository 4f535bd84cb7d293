/**
 * The run: plan → annotate phase (captions, CLIP scores, clusters for every shard that lacks them, in child
 * workflows of ≤ pageSize shards; skipped when the strategy needs none) →
 * pool-wide thresholds → select phase (filter + mix, write) → finalize. Thresholds are global, so no shard
 * is selected before every shard is scored. The run continues-as-new between pages with a few KB of state.
 *
 * Failed shards are recorded and the run goes on, until more fail than `run.maxFailedShards` allows: then it starts
 * no more pages, lets the running ones finish, and fails with `FailureBudgetExceeded` and a summary of what broke.
 * Cancelled, it lets the running pages stop (their stages at a checkpoint) before it ends as cancelled.
 */
import {
  continueAsNew,
  defineQuery,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  ParentClosePolicy,
} from '@temporalio/workflow';
import type { CpuActivities } from '../activities';
import type { RunConfig } from '../lib/config/schema';
import { SHARD_STAGES, type ShardPhase } from '../lib/run/stages';
import { stageOptions } from './activity-options';
import { shardPageWorkflow } from './page';
import { budgetLeft, failedSoFar, failureBudgetExceeded, overBudget } from './failure-budget';
import { PHASE, PRESET, RUN_NAME, SHARDS_DONE, SHARDS_FAILED, SHARDS_TOTAL } from './search-attributes';
import {
  addPageResult,
  emptyPageResult,
  type PageResult,
  type RunInput,
  type RunProgress,
  type RunState,
  type RunSummary,
} from './types';

export const runProgressQuery = defineQuery<RunProgress>('progress');

function pageWorkflowId(runWorkflowId: string, phase: ShardPhase, page: number): string {
  return `${runWorkflowId}/${phase}/page-${String(page).padStart(5, '0')}`;
}

export async function recaptionRun(input: RunInput): Promise<RunSummary> {
  const config = input.config as RunConfig;
  const t = config.temporal;
  const cpu = proxyActivities<CpuActivities>(stageOptions('cpu', t.cpuTaskQueue, t.heartbeatTimeout));
  const info = workflowInfo();
  const pagesOf = (s: RunState) => Math.ceil(s.plan.shardCount / t.pageSize);
  const activePages = new Set<string>();
  let state: RunState | undefined = input.state;

  setHandler(runProgressQuery, () => ({
    phase: state?.phase ?? 'plan',
    shards: state?.plan.shardCount ?? 0,
    pagesDone: state?.nextPage ?? 0,
    pages: state ? pagesOf(state) : 0,
    progress: (state?.totals ?? emptyPageResult()).progress,
    activePages: [...activePages],
    phaseStartedAt: state?.phaseStartedAt,
    processedSamples: state?.totals.processedSamples ?? {},
    failedShards: state?.totals.failedShards ?? 0,
    failedBefore: state?.plan.failedBefore ?? 0,
    maxFailedShards: state?.plan.maxFailedShards,
  }));
  /** A new phase: samples/s and the ETA are measured from here (workflow time: deterministic). */
  const enter = (s: RunState, phase: RunState['phase']) => {
    s.phase = phase;
    s.phaseStartedAt = Date.now();
  };

  const show = () => {
    if (!state) return;
    const p = state.totals.progress;
    setCurrentDetails(
      [
        `**phase** ${state.phase} · **shards** ${state.plan.shardCount} · **pages** ${state.nextPage}/${pagesOf(state)}`,
        SHARD_STAGES.map((stage) => `${stage} ${p[stage].done} (skipped ${p[stage].skipped})`).join(' · '),
        `samples ${state.totals.samples} · kept ${state.totals.kept} · failed shards ${failedSoFar(state.plan, state.totals)}`,
      ].join('\n\n'),
    );
    upsertSearchAttributes([
      { key: PHASE, value: state.phase },
      { key: SHARDS_TOTAL, value: state.plan.shardCount },
      // Written shards (found committed or not); failed ones are not done, at the end either.
      { key: SHARDS_DONE, value: p.write.done },
      { key: SHARDS_FAILED, value: failedSoFar(state.plan, state.totals) },
    ]);
  };

  if (!state) {
    upsertSearchAttributes([
      { key: RUN_NAME, value: config.run.name },
      { key: PRESET, value: config.strategy.preset },
      { key: PHASE, value: 'plan' },
    ]);
    const plan = await cpu.planRun.executeWithOptions({ summary: 'plan shards' }, [{ config }]);
    state = {
      plan,
      phase: plan.annotate ? 'annotate' : 'thresholds',
      nextPage: 0,
      totals: emptyPageResult(),
      phaseStartedAt: Date.now(),
    };
  }
  show();

  const runPages = async (s: RunState, phase: ShardPhase): Promise<void> => {
    const running = new Set<Promise<void>>();
    // A page that failed or was cancelled: start no more pages, let the running ones end, then rethrow it.
    let stopped: { error: unknown } | undefined;
    for (;;) {
      const stopping = stopped !== undefined || overBudget(s.plan, s.totals);
      const draining = stopping || workflowInfo().continueAsNewSuggested;
      if (!stopping && draining && running.size === 0 && s.nextPage < pagesOf(s)) {
        await continueAsNew<typeof recaptionRun>({ config, state: s });
      }
      while (!draining && s.nextPage < pagesOf(s) && running.size < t.maxConcurrentPages) {
        const page = s.nextPage++;
        const start = page * t.pageSize;
        const end = Math.min(start + t.pageSize, s.plan.shardCount);
        const workflowId = pageWorkflowId(info.workflowId, phase, page);
        activePages.add(workflowId);
        const p: Promise<void> = executeChild(shardPageWorkflow, {
          workflowId,
          taskQueue: t.cpuTaskQueue,
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          staticSummary: `${phase} page ${page + 1}/${pagesOf(s)}: shards ${start}–${end - 1}`,
          args: [
            {
              phase,
              runUri: s.plan.runUri,
              start,
              end,
              maxConcurrentShards: t.maxConcurrentShards,
              heartbeatTimeout: t.heartbeatTimeout,
              gpuTaskQueue: t.gpuTaskQueue,
              cpuTaskQueue: t.cpuTaskQueue,
              maxFailedShards: budgetLeft(s.plan, s.totals),
            },
          ],
        })
          .then(
            (r: PageResult) => {
              addPageResult(s.totals, r);
              show();
            },
            (error: unknown) => {
              stopped ??= { error };
            },
          )
          .finally(() => {
            activePages.delete(workflowId);
            running.delete(p);
          });
        running.add(p);
      }
      if (running.size === 0) break;
      await Promise.race(running);
    }
    if (stopped) throw stopped.error;
    if (overBudget(s.plan, s.totals)) throw failureBudgetExceeded(config.run.name, config.run.maxFailedShards, s.plan, s.totals);
  };

  if (state.phase === 'annotate') {
    await runPages(state, 'annotate');
    enter(state, 'thresholds');
    state.nextPage = 0;
    show();
  }
  if (state.phase === 'thresholds') {
    await cpu.computeThresholds.executeWithOptions({ summary: 'pool-wide thresholds' }, [{ runUri: state.plan.runUri }]);
    enter(state, 'select');
    show();
  }
  if (state.phase === 'select') {
    await runPages(state, 'select');
    enter(state, 'finalize');
    show();
  }
  const summary = await cpu.finalizeRun.executeWithOptions({ summary: 'manifest, subset, stats' }, [
    { runUri: state.plan.runUri },
  ]);
  enter(state, 'done');
  show();
  // Stage counters (done / skipped / failed) show what this execution did and what it found committed.
  return { ...summary, progress: state.totals.progress };
}
