/**
 * `recaption status RUN`: the run's state, per-stage shards done / skipped / failed of the total, and while a
 * shard phase runs its samples/s and ETA (cli/rate.ts). For a run that is not running, what its folder holds
 * committed (what `recaption resume` would find) and why it stopped.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporalTarget } from '../../infra/temporal-target';
import { committedWork, type CommittedWork } from '../../lib/pipeline/committed-work';
import { failureCounts } from '../../lib/run/failures';
import { readPlan } from '../../lib/run/plan';
import { SHARD_STAGES } from '../../lib/run/stages';
import { connectClient } from '../connection';
import { formatDuration, phaseRate } from '../rate';
import { liveProgress, requireRun, rootCause, runState, workflowIdOf } from '../runs';

export async function statusCommand(run: string, opts: { json: boolean }): Promise<void> {
  const client = await connectClient(temporalTarget());
  try {
    const workflowId = workflowIdOf(run);
    const d = await requireRun(client, run, workflowId);
    const p = await liveProgress(client, workflowId, d);
    const state = runState(p.status);
    const failure = p.status === 'FAILED' ? await whyFailed(client.workflow.getHandle(workflowId)) : undefined;
    const rate = state === 'running' ? phaseRate(p, Date.now()) : null;
    // Not running: what its folder holds committed (the memo names the folder; executions before it did not).
    const runUri = typeof d.memo?.runUri === 'string' ? d.memo.runUri : undefined;
    const plan = state !== 'running' && state !== 'completed' && runUri ? await readPlan(runUri).catch(() => null) : null;
    const committed = plan ? await committedWork(plan) : undefined;
    if (opts.json) {
      process.stdout.write(JSON.stringify({ workflowId, state, ...p, rate, ...(committed ? { committed } : {}), ...(failure ? { failure } : {}) }) + '\n');
      return;
    }
    const lines = [
      `run      ${run} (${workflowId}) — ${p.status}${p.startedAt ? ` · started ${p.startedAt.toISOString()}` : ''}${p.closedAt ? ` · closed ${p.closedAt.toISOString()}` : ''}`,
      `phase    ${p.phase} · pages ${p.pagesDone}/${p.pages} · shards ${p.shards}` +
        (p.failedShards || p.failedBefore ? ` · failed shards ${(p.failedShards ?? 0) + (p.failedBefore ?? 0)}${p.maxFailedShards !== undefined ? ` (budget ${p.maxFailedShards})` : ''}` : ''),
    ];
    if (committed) lines.push(...committedLines(committed));
    else {
      lines.push(
        ...SHARD_STAGES.map((s) => {
          const c = p.stages[s];
          return `${s.padEnd(8)} ${c.done + c.failed}/${p.shards} shards (skipped ${c.skipped}, failed ${c.failed})`;
        }),
      );
    }
    if (rate) {
      lines.push(
        `rate     ${rate.phase}: ${rate.samplesPerSecond.toFixed(1)} samples/s, ${(rate.shardsPerSecond * 60).toFixed(2)} shards/min ` +
          `(${rate.processedShards} shards processed by this execution in ${formatDuration(rate.elapsedSeconds)})`,
        `eta      ${rate.etaSeconds === null ? '– (no shard processed yet in this phase)' : formatDuration(rate.etaSeconds)} for the ${rate.phase} phase (${rate.remainingShards} shards left)`,
      );
    }
    if (failure) lines.push(`failed   ${failure.type}: ${failure.message}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await client.connection.close();
  }
}

/** The committed work of a run folder, one line per stage and one for failures (shared with `resume`). */
export function committedLines(c: CommittedWork): string[] {
  const lines = [
    ...SHARD_STAGES.map((s) => {
      const extra =
        s === 'annotate' && c.annotations
          ? ` · ${c.annotations.reused} more with annotations reused from other runs · ${c.annotations.toAnnotate} to annotate`
          : '';
      return `${s.padEnd(8)} ${c.stages[s]}/${c.shards} shards committed${extra}`;
    }),
    `thresholds ${c.thresholds ? 'committed' : 'not computed yet'}${c.finalized ? ' · finalized (manifest written)' : ''}`,
  ];
  const { retry, keep } = c.failures;
  if (retry.length) lines.push(`failures ${retry.length} shard(s) to retry: ${kinds(retry)}`);
  if (keep.length) lines.push(`failures ${keep.length} shard(s) stay failed (annotate failed after the pool-wide thresholds were computed): ${kinds(keep)}`);
  return lines;
}

const kinds = (f: Parameters<typeof failureCounts>[0]) =>
  Object.entries(failureCounts(f))
    .map(([k, n]) => `${k} ${n}`)
    .join(' · ');

/** The root cause of a failed run, from its result (so `status` says why, as `run` did). */
function whyFailed(handle: WorkflowHandle): Promise<ReturnType<typeof rootCause> | undefined> {
  return handle.result().then(
    () => undefined,
    (e: unknown) => (e instanceof WorkflowFailedError ? rootCause(e) : undefined),
  );
}
