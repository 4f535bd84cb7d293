/** Start, resume, attach to and inspect runs — the client side of the run workflow. */
import { RunLayout } from '../lib/run/layout';
import { readPlan } from '../lib/run/plan';
import {
  ApplicationFailure,
  TemporalFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import { configHash } from '../lib/config/load';
import type { RunConfig } from '../lib/config/schema';
import { InputError } from '../lib/errors';
import { ensureSearchAttributes } from '../infra/search-attributes';
import { pageProgressQuery } from '../workflows/page';
import { recaptionRun, runProgressQuery } from '../workflows/run';
import { PHASE, PRESET, RUN_NAME, SHARDS_FAILED, SHARDS_TOTAL } from '../workflows/search-attributes';
import { emptyProgress, SHARD_STAGES, type ShardStage, type StageCounters } from '../lib/run/stages';
import type { PageResult, Phase, RunInput, RunProgress, RunSummary } from '../workflows/types';
import { configChangedError } from '../lib/pipeline/plan-stage';

const RUN_ID_PREFIX = 'recaption-run-';

export function runWorkflowId(runName: string): string {
  return `${RUN_ID_PREFIX}${runName}`;
}

/** The run.name of a run's workflow id (runWorkflowId's inverse). */
export function runNameOf(workflowId: string): string {
  return workflowId.startsWith(RUN_ID_PREFIX) ? workflowId.slice(RUN_ID_PREFIX.length) : workflowId;
}

/** The workflow id of a run named on the command line: its run.name, or the workflow id itself. */
export function workflowIdOf(run: string): string {
  return run.startsWith(RUN_ID_PREFIX) ? run : runWorkflowId(run);
}

/** How the CLI names a run's state (its latest execution's status). */
export type RunStateName = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out';

export function runState(status: string): RunStateName {
  switch (status) {
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
    case 'TERMINATED':
      return 'terminated';
    case 'TIMED_OUT':
      return 'timed-out';
    default:
      // RUNNING, or CONTINUED_AS_NEW seen before its successor is indexed
      return 'running';
  }
}

/** The description of the run's latest execution, or null when Temporal has none under that id. */
export async function describeRun(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | null> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return null;
    throw e;
  }
}

/** The refusal of a run Temporal does not know (`hint` follows the pointer to `recaption list`). */
export function unknownRun(run: string, workflowId: string, hint = ''): InputError {
  return new InputError('UnknownRun', `no run "${run}" (workflow ${workflowId}) on this Temporal namespace: see \`recaption list\`${hint}`);
}

/** The run's description, or `UnknownRun` naming it. */
export async function requireRun(client: Client, run: string, workflowId: string): Promise<WorkflowExecutionDescription> {
  const d = await describeRun(client, workflowId);
  if (!d) throw unknownRun(run, workflowId);
  return d;
}

/**
 * The config the run's latest execution runs (or ran) with: the input of its first history event (after
 * continue-as-new too, the config travels with the state), so a resumed run needs no YAML.
 */
export async function lastExecutionConfig(client: Client, workflowId: string): Promise<unknown> {
  const res = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payloads = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  const [input] = await decodeArrayFromPayloads(client.options.loadedDataConverter, payloads);
  return (input as RunInput | undefined)?.config;
}

// Home of the registration: infra/search-attributes.ts (the compose cluster runs it at start too).
export { ensureSearchAttributes };

export interface StartedRun {
  handle: WorkflowHandle<typeof recaptionRun>;
  /** true when a run with this name was already running and we attached to it. */
  attached: boolean;
}

/**
 * Start the run — or, with the same run.name, attach to the execution already running (only if it runs this
 * config: its memo carries the config hash), or start a new execution over the same run folder that skips every
 * committed stage (resume). A refusal starts nothing, so the run's last execution stays what `status` shows.
 */
export async function startRun(client: Client, config: RunConfig): Promise<StartedRun> {
  const workflowId = runWorkflowId(config.run.name);
  const hash = configHash(config);
  for (let attempt = 0; ; attempt++) {
    const running = await runningExecution(client, workflowId);
    if (running) {
      await refuseOtherConfig(config, hash, running.memo);
      return { handle: client.workflow.getHandle<typeof recaptionRun>(workflowId), attached: true };
    }
    await ensureSearchAttributes(client, client.options.namespace);
    try {
      return { handle: await startExecution(client, config, workflowId, hash), attached: false };
    } catch (e) {
      // Another `recaption run` started it since we looked: look again (attach or refuse), once.
      if (!(e instanceof WorkflowExecutionAlreadyStartedError) || attempt > 0) throw e;
    }
  }
}

/** The description of the run's execution when it is running, else null. */
async function runningExecution(client: Client, workflowId: string): Promise<{ memo?: Record<string, unknown> } | null> {
  const d = await describeRun(client, workflowId);
  return d?.status.name === 'RUNNING' ? d : null;
}

/** Throw `ConfigChanged` unless the running execution runs this config (by its memo, else by its plan). */
async function refuseOtherConfig(config: RunConfig, hash: string, memo: Record<string, unknown> | undefined): Promise<void> {
  const plan = await readPlan(RunLayout.of(config.output.uri, config.run.name).runUri).catch(() => null);
  // The plan's hash covers executions started before the memo was set.
  if ((memo?.configHash ?? plan?.configHash) === hash) return;
  if (plan) throw configChangedError(plan, config);
  throw new InputError(
    'ConfigChanged',
    `run "${config.run.name}" is running with another config (it has not planned yet, so its fields cannot be compared); ` +
      `see it with \`recaption status ${config.run.name}\`, then wait for it or cancel it, or use a new run.name`,
  );
}

function startExecution(client: Client, config: RunConfig, workflowId: string, hash: string): Promise<WorkflowHandle<typeof recaptionRun>> {
  return client.workflow.start(recaptionRun, {
    workflowId,
    taskQueue: config.temporal.cpuTaskQueue,
    args: [{ config }],
    workflowIdConflictPolicy: 'FAIL',
    // The run folder too, so `status` of a run that is not running can read what it committed.
    memo: { configHash: hash, runUri: RunLayout.of(config.output.uri, config.run.name).runUri },
    typedSearchAttributes: [
      { key: RUN_NAME, value: config.run.name },
      { key: PRESET, value: config.strategy.preset },
      { key: PHASE, value: 'plan' },
    ],
    staticSummary: `recaption ${config.run.name}: ${config.strategy.preset}${config.strategy.fraction ? ` f=${config.strategy.fraction}` : ''}`,
    staticDetails: [
      `**input** ${config.input.uri}`,
      `**output** ${config.output.uri}/${config.run.name}`,
      `**captioner** ${config.models.captioner.path} · **clip** ${config.models.clip.path} · **device** ${config.models.device}`,
      `**sampling** top-K ${config.caption.topK}, T ${config.caption.temperature}, ${config.caption.minLength}–${config.caption.maxLength} tokens, seed ${config.run.seed}`,
    ].join('\n\n'),
  });
}

/** Why a run's workflow failed: the innermost failure of its chain (workflow → child → activity → application). */
export function rootCause(err: WorkflowFailedError): { type: string; message: string; nonRetryable: boolean } {
  let failure: Error = err;
  while (failure.cause instanceof TemporalFailure) failure = failure.cause;
  if (failure instanceof ApplicationFailure) return { type: failure.type ?? 'Error', message: failure.message, nonRetryable: failure.nonRetryable === true };
  return { type: failure === err ? 'WorkflowFailed' : failure.name, message: failure.message, nonRetryable: false };
}

/** A failed run as the CLI reports it: bad input (non-retryable, our InputErrors) exits 2, anything else 1. */
export function runFailedError(runName: string, err: WorkflowFailedError): Error {
  const cause = rootCause(err);
  const message = `run ${runName} failed — ${cause.type}: ${cause.message}`;
  return cause.nonRetryable ? new InputError(cause.type, message) : new Error(message);
}

export interface LiveProgress extends RunProgress {
  /** Shard-stage counters including the pages still running (done + failed). */
  live: Record<ShardStage, number>;
  /** Per stage, this execution's counters and processed samples including the pages still running. */
  stages: Record<ShardStage, StageCounters & { samples: number }>;
  status: string;
  /** When the run's latest execution started and (closed) ended. */
  startedAt?: Date;
  closedAt?: Date;
}

/** Run progress plus the counters of pages still in flight (queried from the child workflows); `described`: the
 * execution's description when the caller already has it. */
export async function liveProgress(client: Client, workflowId: string, described?: WorkflowExecutionDescription): Promise<LiveProgress> {
  const handle = client.workflow.getHandle(workflowId);
  const d = described ?? (await handle.describe());
  let p: RunProgress;
  if (d.status.name === 'COMPLETED') {
    // A closed run answers from its result: queries would need a worker to replay it.
    const r = (await handle.result()) as RunSummary;
    p = { phase: 'done', shards: r.shards, pagesDone: 0, pages: 0, progress: r.progress, activePages: [], failedShards: r.failedShards };
  } else if (d.status.name === 'RUNNING') {
    try {
      p = await handle.query(runProgressQuery);
    } catch {
      p = { phase: 'plan', shards: 0, pagesDone: 0, pages: 0, progress: emptyProgress(), activePages: [] };
    }
  } else {
    // Failed, cancelled, terminated: what the run last published (a query would wait for a worker to replay it).
    const sa = d.typedSearchAttributes;
    p = {
      phase: (sa.get(PHASE) as Phase | undefined) ?? 'plan',
      shards: sa.get(SHARDS_TOTAL) ?? 0,
      pagesDone: 0,
      pages: 0,
      progress: emptyProgress(),
      activePages: [],
      failedShards: sa.get(SHARDS_FAILED) ?? 0,
    };
  }
  const stages = Object.fromEntries(
    SHARD_STAGES.map((s) => [s, { ...p.progress[s], samples: p.processedSamples?.[s] ?? 0 }]),
  ) as LiveProgress['stages'];
  await Promise.all(
    p.activePages.map(async (id) => {
      try {
        const r: PageResult = await client.workflow.getHandle(id).query(pageProgressQuery);
        for (const s of SHARD_STAGES) {
          stages[s].done += r.progress[s].done;
          stages[s].skipped += r.progress[s].skipped;
          stages[s].failed += r.progress[s].failed;
          stages[s].samples += r.processedSamples?.[s] ?? 0;
        }
      } catch {
        // a page that just finished or has not started yet: its counts arrive with the run's totals
      }
    }),
  );
  const live = Object.fromEntries(SHARD_STAGES.map((s) => [s, stages[s].done + stages[s].failed])) as Record<ShardStage, number>;
  return { ...p, live, stages, status: d.status.name, startedAt: d.startTime, ...(d.closeTime ? { closedAt: d.closeTime } : {}) };
}
