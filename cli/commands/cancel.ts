/**
 * `recaption cancel RUN`: cancel the run's workflow and wait until it has closed. Cancellation reaches the page
 * workflows, which start no more shards and wait for their running stages to stop: a stage learns of it with its
 * next heartbeat (within 0.8 × temporal.heartbeatTimeout, at most 5 s: workers/build.ts) and stops at its next batch, keeping the chunks it
 * committed. Every output is committed atomically, so nothing is left half-written. The run then shows as
 * cancelled, and `recaption resume RUN` goes on from what was committed.
 */
import { msToNumber } from '@temporalio/common/lib/time';
import { temporalTarget } from '../../infra/temporal-target';
import { InputError } from '../../lib/errors';
import { connectClient } from '../connection';
import { describeRun, requireRun, runState, workflowIdOf } from '../runs';

export interface CancelOptions {
  json: boolean;
  /** How long to wait for the run to close, e.g. "5m" (0: do not wait). */
  timeout: string;
}

export async function cancelCommand(run: string, opts: CancelOptions): Promise<void> {
  let timeoutMs: number;
  try {
    timeoutMs = msToNumber(opts.timeout as Parameters<typeof msToNumber>[0]);
  } catch {
    throw new InputError('InvalidArgument', `--timeout ${opts.timeout}: must be a duration like "90s" or "5m"`);
  }
  const client = await connectClient(temporalTarget());
  const say = (event: string, text: string, extra: object = {}) =>
    opts.json ? process.stdout.write(JSON.stringify({ event, run, ...extra }) + '\n') : process.stderr.write(text + '\n');
  try {
    const workflowId = workflowIdOf(run);
    const d = await requireRun(client, run, workflowId);
    const state = runState(d.status.name);
    if (state !== 'running') throw new InputError('RunNotRunning', `run ${run} is not running (it ${state === 'timed-out' ? 'timed out' : state}): nothing to cancel`);
    const started = Date.now();
    await client.workflow.getHandle(workflowId).cancel();
    say('cancelling', `cancelling run ${run}: no more shards start; running stages stop at their next checkpoint…`);
    if (timeoutMs <= 0) return;
    for (;;) {
      const now = await describeRun(client, workflowId);
      const closed = now ? runState(now.status.name) : 'running';
      if (closed !== 'running') {
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        if (closed === 'cancelled') {
          say(
            'cancelled',
            `run ${run} cancelled (closed after ${seconds}s; its running stages stopped at a checkpoint). ` +
              `Resume it with \`recaption resume ${run}\``,
            { state: closed, seconds },
          );
          return;
        }
        // It ended otherwise before the cancellation took effect (e.g. it completed, or failed).
        say('closed', `run ${run} closed as ${closed} before the cancellation took effect`, { state: closed, seconds });
        process.exitCode = 1;
        return;
      }
      if (Date.now() - started > timeoutMs) {
        throw new Error(
          `run ${run} has not closed within ${opts.timeout}: it is still stopping (running stages reach their checkpoint ` +
            `with their next heartbeat; without a worker polling, the cancellation waits for one). See \`recaption status ${run}\`.`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await client.connection.close();
  }
}
