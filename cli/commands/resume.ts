/**
 * `recaption resume RUN`: a new execution of a failed, cancelled, terminated or timed-out run, over the same run
 * folder with the same config — taken from the run's last execution (or, given a run folder, from its plan.json,
 * e.g. after the Temporal server's history is gone), so no YAML is needed. Nothing committed is recomputed; the
 * shards that failed are retried (lib/run/failures.ts). It first says what it found committed, then follows the
 * run to its end like `recaption run` (exit 0 when it completes).
 */
import { temporalTarget } from '../../infra/temporal-target';
import { parseFailureBudget } from '../../lib/config/failure-budget';
import { parseConfig } from '../../lib/config/load';
import type { RunConfig } from '../../lib/config/schema';
import { InputError } from '../../lib/errors';
import { committedWork, type CommittedWork } from '../../lib/pipeline/committed-work';
import { failureCounts } from '../../lib/run/failures';
import { RunLayout } from '../../lib/run/layout';
import { readPlan, type RunPlan } from '../../lib/run/plan';
import { connectClient } from '../connection';
import { describeRun, lastExecutionConfig, runNameOf, runState, unknownRun, workflowIdOf } from '../runs';
import { resolveRunUri } from './report';
import { executeRun } from './run';
import { committedLines } from './status';

export interface ResumeOptions {
  json: boolean;
  /** false with --no-wait: start the new execution and return. */
  wait: boolean;
  localWorker: boolean;
  /** Override run.maxFailedShards for this execution (a count or "N%"). */
  maxFailedShards?: string;
}

/** A run folder rather than a run name: a path or a URI. */
const isFolder = (run: string) => run.includes('/') || run.startsWith('.');

export async function resumeCommand(run: string, opts: ResumeOptions): Promise<void> {
  const target = temporalTarget();
  const client = await connectClient(target);
  let config: RunConfig;
  let previous: { state: string; closedAt?: Date } | null;
  let folderPlan: RunPlan | undefined;
  try {
    ({ config, previous, folderPlan } = await resumableRun(client, run));
  } finally {
    await client.connection.close();
  }
  if (opts.maxFailedShards !== undefined) {
    const budget = parseFailureBudget(opts.maxFailedShards);
    if ('error' in budget) throw new InputError('InvalidArgument', `--max-failed-shards ${opts.maxFailedShards}: ${budget.error}`);
    config.run.maxFailedShards = budget.spec;
  }

  const plan = folderPlan ?? (await readPlan(RunLayout.of(config.output.uri, config.run.name).runUri));
  const found = plan ? await committedWork(plan, { annotations: true }) : null;
  const head = `resuming run ${config.run.name}${previous ? ` (its last execution ${previous.state}${previous.closedAt ? ` at ${previous.closedAt.toISOString()}` : ''})` : ' (unknown to this Temporal server: from its folder)'}`;
  if (opts.json) process.stdout.write(JSON.stringify({ event: 'resume', run: config.run.name, previous, committed: found && committedJson(found) }) + '\n');
  else {
    const lines = found
      ? [`${head} — nothing committed is recomputed; found committed in ${found.runUri}:`, ...committedLines(found).map((l) => `  ${l}`)]
      : [`${head} — it had not planned yet: nothing committed`];
    process.stderr.write(lines.join('\n') + '\n');
  }
  await executeRun(config, target, { json: opts.json, detach: !opts.wait, localWorker: opts.localWorker, resumed: true });
}

interface Resumable {
  config: RunConfig;
  previous: { state: string; closedAt?: Date } | null;
  /** The plan the config came from, when resumed from a run folder. */
  folderPlan?: RunPlan;
}

/** The run's config, or a typed refusal: unknown run, still running, or completed (nothing to do). */
async function resumableRun(client: Awaited<ReturnType<typeof connectClient>>, run: string): Promise<Resumable> {
  let folder: { config: RunConfig; folderPlan: RunPlan } | undefined;
  let workflowId = workflowIdOf(run);
  if (isFolder(run)) {
    const plan = await readPlan(resolveRunUri(run));
    if (!plan) throw new InputError('UnknownRun', `${run} is not a run folder (it has no plan.json)`);
    folder = { config: parseConfig(plan.config, `${plan.runUri}/plan.json`), folderPlan: plan };
    workflowId = workflowIdOf(plan.runName);
  }
  const d = await describeRun(client, workflowId);
  if (!d) {
    if (folder) return { ...folder, previous: null };
    throw unknownRun(run, workflowId, '. A run whose Temporal history is gone resumes from its folder: `recaption resume <output.uri>/<run.name>`');
  }
  const name = runNameOf(workflowId);
  const state = runState(d.status.name);
  if (state === 'running') {
    throw new InputError(
      'RunRunning',
      `run ${name} is running (started ${d.startTime.toISOString()}): there is nothing to resume — it goes on as long as workers poll its task queues. ` +
        `Follow it with \`recaption status ${name}\`, or stop it with \`recaption cancel ${name}\` and resume it later.`,
    );
  }
  if (state === 'completed') {
    throw new InputError(
      'RunCompleted',
      `run ${name} completed${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''}: nothing to resume (its outputs and manifest.json are in its run folder). ` +
        `Shards that failed in it stay out of it; a new run.name over the same input includes them once fixed, reusing every annotation.`,
    );
  }
  const previous = { state, ...(d.closeTime ? { closedAt: d.closeTime } : {}) };
  if (folder) return { ...folder, previous };
  const raw = await lastExecutionConfig(client, workflowId);
  if (!raw) throw new InputError('UnknownRun', `run ${name}: its last execution carries no config to resume with; resume it from its folder instead`);
  // Re-validated: the input is plain JSON, possibly from an older version (new fields take their defaults).
  return { config: parseConfig(raw, `the last execution of run ${name}`), previous };
}

/** The JSON shape of what resume found: counts, and the failed shards it retries or keeps by name. */
function committedJson(c: CommittedWork) {
  const names = (fs: CommittedWork['failures']['retry']) => fs.map((f) => ({ shard: f.shard, stage: f.stage, type: f.type }));
  return {
    runUri: c.runUri,
    shards: c.shards,
    stages: c.stages,
    thresholds: c.thresholds,
    finalized: c.finalized,
    ...(c.annotations ? { annotations: c.annotations } : {}),
    retry: { shards: c.failures.retry.length, byKind: failureCounts(c.failures.retry), failures: names(c.failures.retry) },
    keep: { shards: c.failures.keep.length, byKind: failureCounts(c.failures.keep), failures: names(c.failures.keep) },
  };
}
