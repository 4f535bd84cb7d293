/**
 * `recaption list`: every run on the Temporal namespace (the latest execution of each recaptionRun workflow, from
 * the visibility store — no workflow is queried) with its state, preset, phase, shards done / failed / total
 * (the custom search attributes the run upserts per page, workflows/search-attributes.ts), when it started, and
 * its Web UI link.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { temporalTarget } from '../../infra/temporal-target';
import { PHASE, PRESET, RUN_NAME, SHARDS_DONE, SHARDS_FAILED, SHARDS_TOTAL } from '../../workflows/search-attributes';
import { connectClient, uiBase, workflowUiUrl } from '../connection';
import { runNameOf, runState, type RunStateName } from '../runs';

export interface RunListing {
  run: string;
  workflowId: string;
  runId: string;
  state: RunStateName;
  preset: string | null;
  phase: string | null;
  shards: { total: number | null; done: number | null; failed: number | null };
  startedAt: string;
  closedAt: string | null;
  uiUrl: string;
}

export async function listCommand(opts: { json: boolean; limit?: number }): Promise<void> {
  const target = temporalTarget();
  const client = await connectClient(target);
  let runs: RunListing[];
  try {
    // Each run's executions (continue-as-new, resumes) share its workflow id: keep the latest per id.
    const latest = new Map<string, WorkflowExecutionInfo>();
    for await (const w of client.workflow.list({ query: `WorkflowType = 'recaptionRun'` })) {
      const seen = latest.get(w.workflowId);
      if (!seen || newer(w, seen)) latest.set(w.workflowId, w);
    }
    runs = [...latest.values()]
      .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
      .slice(0, opts.limit ?? Infinity)
      .map((w) => listing(w, workflowUiUrl(uiBase(), target.namespace, w.workflowId)));
  } finally {
    await client.connection.close();
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify({ runs }) + '\n');
    return;
  }
  if (runs.length === 0) {
    process.stdout.write('no runs on this Temporal namespace\n');
    return;
  }
  const n = (v: number | null) => (v === null ? '–' : String(v));
  const rows = runs.map((r) => [r.run, r.state, r.preset ?? '–', r.phase ?? '–', `${n(r.shards.done)}/${n(r.shards.total)}`, n(r.shards.failed), r.startedAt.replace(/\.\d+Z$/, 'Z'), r.uiUrl]);
  const header = ['RUN', 'STATE', 'PRESET', 'PHASE', 'DONE', 'FAILED', 'STARTED', 'WEB UI'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
}

/** The later execution: by start time; of two at once, the one that did not continue as new. */
function newer(a: WorkflowExecutionInfo, b: WorkflowExecutionInfo): boolean {
  const d = a.startTime.getTime() - b.startTime.getTime();
  return d !== 0 ? d > 0 : b.status.name === 'CONTINUED_AS_NEW';
}

function listing(w: WorkflowExecutionInfo, uiUrl: string): RunListing {
  const sa = w.typedSearchAttributes;
  return {
    run: sa.get(RUN_NAME) ?? runNameOf(w.workflowId),
    workflowId: w.workflowId,
    runId: w.runId,
    state: runState(w.status.name),
    preset: sa.get(PRESET) ?? null,
    phase: sa.get(PHASE) ?? null,
    shards: { total: sa.get(SHARDS_TOTAL) ?? null, done: sa.get(SHARDS_DONE) ?? null, failed: sa.get(SHARDS_FAILED) ?? null },
    startedAt: w.startTime.toISOString(),
    closedAt: w.closeTime?.toISOString() ?? null,
    uiUrl,
  };
}
