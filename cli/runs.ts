/** Start, resume, attach to and inspect runs — the client side of the run workflow. */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { RunConfig } from '../lib/config/schema';
import { ensureSearchAttributes } from '../infra/search-attributes';
import { pageProgressQuery } from '../workflows/page';
import { recaptionRun, runProgressQuery } from '../workflows/run';
import { PHASE, PRESET, RUN_NAME } from '../workflows/search-attributes';
import { emptyProgress, SHARD_STAGES, type ShardStage } from '../lib/run/stages';
import type { PageResult, RunProgress, RunSummary } from '../workflows/types';

export function runWorkflowId(runName: string): string {
  return `recaption-run-${runName}`;
}

// Home of the registration: infra/search-attributes.ts (the compose cluster runs it at start too).
export { ensureSearchAttributes };

export interface StartedRun {
  handle: WorkflowHandle<typeof recaptionRun>;
  /** true when a run with this name was already running and we attached to it. */
  attached: boolean;
}

/**
 * Start the run — or, with the same run.name, attach to the execution already running, or start a new
 * execution over the same run folder that skips every committed stage (resume).
 */
export async function startRun(client: Client, config: RunConfig): Promise<StartedRun> {
  const workflowId = runWorkflowId(config.run.name);
  const existing = client.workflow.getHandle<typeof recaptionRun>(workflowId);
  try {
    const d = await existing.describe();
    if (d.status.name === 'RUNNING') return { handle: existing, attached: true };
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
  }
  await ensureSearchAttributes(client, client.options.namespace);
  const handle = await client.workflow.start(recaptionRun, {
    workflowId,
    taskQueue: config.temporal.cpuTaskQueue,
    args: [{ config }],
    workflowIdConflictPolicy: 'USE_EXISTING',
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
  return { handle, attached: false };
}

export interface LiveProgress extends RunProgress {
  /** Shard-stage counters including the pages still running. */
  live: Record<ShardStage, number>;
  status: string;
}

/** Run progress plus the counters of pages still in flight (queried from the child workflows). */
export async function liveProgress(client: Client, workflowId: string): Promise<LiveProgress> {
  const handle = client.workflow.getHandle(workflowId);
  const d = await handle.describe();
  let p: RunProgress;
  if (d.status.name === 'COMPLETED') {
    // A closed run answers from its result: queries would need a worker to replay it.
    const r = (await handle.result()) as RunSummary;
    p = { phase: 'done', shards: r.shards, pagesDone: 0, pages: 0, progress: r.progress, activePages: [] };
  } else {
    try {
      p = await handle.query(runProgressQuery);
    } catch {
      p = { phase: 'plan', shards: 0, pagesDone: 0, pages: 0, progress: emptyProgress(), activePages: [] };
    }
  }
  const live = Object.fromEntries(SHARD_STAGES.map((s) => [s, p.progress[s].done + p.progress[s].failed])) as Record<ShardStage, number>;
  await Promise.all(
    p.activePages.map(async (id) => {
      try {
        const r: PageResult = await client.workflow.getHandle(id).query(pageProgressQuery);
        for (const s of SHARD_STAGES) live[s] += r.progress[s].done + r.progress[s].failed;
      } catch {
        // a page that just finished or has not started yet: its counts arrive with the run's totals
      }
    }),
  );
  return { ...p, live, status: d.status.name };
}
