import { connectClient, temporalTargetFromEnv } from '../connection';
import { liveProgress, runWorkflowId } from '../runs';

export async function statusCommand(run: string, opts: { json: boolean }): Promise<void> {
  const target = temporalTargetFromEnv() ?? { address: 'localhost:7233', namespace: 'default' };
  const client = await connectClient(target);
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
      ...(['caption', 'score', 'select', 'write'] as const).map(
        (s) => `${s.padEnd(8)} ${p.live[s]}/${p.shards} shards (skipped ${p.progress[s].skipped}, failed ${p.progress[s].failed})`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await client.connection.close();
  }
}
