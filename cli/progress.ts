/**
 * Progress of a run while the CLI waits on it: bars of shards done per stage on a TTY (cli-progress),
 * plain lines otherwise (CI logs), JSON lines with --json (scripts).
 */
import { MultiBar, Presets } from 'cli-progress';
import type { Client } from '@temporalio/client';
import { SHARD_STAGES, type ShardStage } from '../lib/run/stages';
import { liveProgress, type LiveProgress } from './runs';


export type ProgressMode = 'bars' | 'lines' | 'json' | 'none';

export function progressMode(json: boolean): ProgressMode {
  if (json) return 'json';
  return process.stderr.isTTY ? 'bars' : 'lines';
}

/** Poll the run until `done` resolves, rendering progress; returns when the run finishes. */
export async function watchRun<T>(client: Client, workflowId: string, done: Promise<T>, mode: ProgressMode, intervalMs = 1000): Promise<T> {
  if (mode === 'none') return done;
  let finished = false;
  const result = done.finally(() => (finished = true));
  let multi: MultiBar | undefined;
  const bars = new Map<ShardStage, ReturnType<MultiBar['create']>>();
  let lastLine = '';
  const render = (p: LiveProgress) => {
    if (p.shards === 0) return; // still planning
    const total = Math.max(p.shards, 1);
    if (mode === 'json') {
      process.stdout.write(JSON.stringify({ event: 'progress', phase: p.phase, shards: p.shards, ...p.live }) + '\n');
    } else if (mode === 'lines') {
      const line = `[${p.phase}] shards ${p.shards}: ` + SHARD_STAGES.map((s) => `${s} ${p.live[s]}/${p.shards}`).join(' · ');
      if (line !== lastLine) process.stderr.write(line + '\n');
      lastLine = line;
    } else {
      multi ??= new MultiBar(
        { format: ' {stage} |{bar}| {value}/{total} shards · {phase}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
        Presets.shades_classic,
      );
      for (const s of SHARD_STAGES) {
        let bar = bars.get(s);
        if (!bar) bars.set(s, (bar = multi.create(total, 0, { stage: s.padEnd(7), phase: p.phase })));
        bar.setTotal(total);
        bar.update(Math.min(p.live[s], total), { phase: p.phase });
      }
    }
  };
  const poll = async () => {
    try {
      render(await liveProgress(client, workflowId));
    } catch {
      // transient (workflow just closed, server busy): try again next tick
    }
  };
  await poll();
  while (!finished) {
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, intervalMs))]);
    await poll();
  }
  multi?.stop();
  return result;
}
