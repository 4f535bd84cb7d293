import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporalTarget } from '../../infra/temporal-target';
import { SHARD_STAGES } from '../../lib/run/stages';
import { connectClient } from '../connection';
import { liveProgress, rootCause, runWorkflowId } from '../runs';

export async function statusCommand(run: string, opts: { json: boolean }): Promise<void> {
  const client = await connectClient(temporalTarget());
  try {
    const workflowId = run.startsWith('recaption-run-') ? run : runWorkflowId(run);
    const p = await liveProgress(client, workflowId);
    const failure = p.status === 'FAILED' ? await whyFailed(client.workflow.getHandle(workflowId)) : undefined;
    if (opts.json) {
      process.stdout.write(JSON.stringify({ workflowId, ...p, ...(failure ? { failure } : {}) }) + '\n');
      return;
    }
    const lines = [
      `run      ${run} (${workflowId}) — ${p.status}`,
      `phase    ${p.phase} · pages ${p.pagesDone}/${p.pages} · shards ${p.shards}`,
      ...SHARD_STAGES.map(
        (s) => `${s.padEnd(8)} ${p.live[s]}/${p.shards} shards (skipped ${p.progress[s].skipped}, failed ${p.progress[s].failed})`,
      ),
    ];
    if (failure) lines.push(`failed   ${failure.type}: ${failure.message}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await client.connection.close();
  }
}

/** The root cause of a failed run, from its result (so `status` says why, as `run` did). */
function whyFailed(handle: WorkflowHandle): Promise<ReturnType<typeof rootCause> | undefined> {
  return handle.result().then(
    () => undefined,
    (e: unknown) => (e instanceof WorkflowFailedError ? rootCause(e) : undefined),
  );
}
