import { temporalTarget } from '../../infra/temporal-target';
import { SHARD_STAGES } from '../../lib/run/stages';
import { connectClient } from '../connection';
import { liveProgress, runWorkflowId } from '../runs';

export async function statusCommand(run: string, opts: { json: boolean }): Promise<void> {
  const client = await connectClient(temporalTarget());
  try {
    const workflowId = run.startsWith('recaption-run-') ? run : runWorkflowId(run);
    const p = await liveProgress(client, workflowId);
    if (opts.json) {
      process.stdout.write(JSON.stringify({ workflowId, ...p }) + '\n');
      return;
    }
    const lines = [
      `run      ${run} (${workflowId}) — ${p.status}`,
      `phase    ${p.phase} · pages ${p.pagesDone}/${p.pages} · shards ${p.shards}`,
      ...SHARD_STAGES.map(
        (s) => `${s.padEnd(8)} ${p.live[s]}/${p.shards} shards (skipped ${p.progress[s].skipped}, failed ${p.progress[s].failed})`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await client.connection.close();
  }
}
