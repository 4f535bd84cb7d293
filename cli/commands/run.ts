import { WorkflowFailedError } from '@temporalio/client';
import { loadConfigFile } from '../../lib/config/load';
import type { RunConfig } from '../../lib/config/schema';
import type { RunSummaryData } from '../../lib/pipeline/finalize-stage';
import { temporalTarget, type TemporalTarget } from '../../infra/temporal-target';
import { startLocalWorkers } from '../../workers/local';
import { connectClient, uiBase, workflowUiUrl } from '../connection';
import { preflight } from '../preflight';
import { progressMode, watchRun } from '../progress';
import { runFailedError, startRun } from '../runs';
import { formatSummary } from '../summary';

export interface RunOptions {
  config: string;
  json: boolean;
  detach: boolean;
  localWorker: boolean;
  dryRun: boolean;
  imagesPerSecond?: number;
  measure: boolean;
}

/** Start or resume a run and follow it to the end (shared with the demo). */
export async function executeRun(
  config: RunConfig,
  target: TemporalTarget,
  opts: { json: boolean; detach?: boolean; localWorker?: boolean; uiBase?: string; resumed?: boolean },
): Promise<RunSummaryData | undefined> {
  const { shards } = await preflight(config);
  const client = await connectClient(target);
  const local = opts.localWorker ? await startLocalWorkers(target, config) : undefined;
  try {
    const { handle, attached } = await startRun(client, config);
    const uiUrl = workflowUiUrl(opts.uiBase ?? uiBase(), target.namespace, handle.workflowId);
    const say = (event: string, text: string, extra: object = {}) =>
      opts.json ? process.stdout.write(JSON.stringify({ event, workflowId: handle.workflowId, ...extra }) + '\n') : process.stderr.write(text + '\n');
    const verb = attached ? 'attached to running' : opts.resumed ? 'resumed' : 'started';
    say(attached ? 'attached' : 'started', `${verb} run ${config.run.name} (${shards} input shards) — ${uiUrl}`, { uiUrl, ...(opts.resumed && !attached ? { resumed: true } : {}) });
    if (opts.detach) return undefined;
    const done = local ? Promise.race([handle.result(), local.running.then(() => Promise.reject(new Error('local worker stopped')))]) : handle.result();
    // A failed run says why (the root cause's type and message), not only "Workflow execution failed".
    const failed = (e: unknown) => Promise.reject(e instanceof WorkflowFailedError ? runFailedError(config.run.name, e) : e);
    const summary = (await watchRun(client, handle.workflowId, done.catch(failed), progressMode(opts.json))) as RunSummaryData;
    if (opts.json) process.stdout.write(JSON.stringify({ event: 'done', uiUrl, summary }) + '\n');
    else process.stdout.write(formatSummary(summary, uiUrl) + '\n');
    return summary;
  } finally {
    await local?.stop();
    await client.connection.close();
  }
}

export async function runCommand(opts: RunOptions): Promise<void> {
  const config = await loadConfigFile(opts.config);
  if (opts.dryRun) {
    // Loaded here only: a plain run does not load the model runtime in the CLI.
    const { printPlan } = require('./plan') as typeof import('./plan'); // eslint-disable-line @typescript-eslint/no-require-imports
    return printPlan(config, opts);
  }
  await executeRun(config, temporalTarget(), opts);
}
