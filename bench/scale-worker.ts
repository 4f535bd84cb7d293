/**
 * The scale bench's worker process (bench/scale.ts starts it, so that its memory is its own): the real workers of
 * workers/build.ts on the gpu and cpu queues, in simulate mode, counting shard-stage completions. Talks to its
 * parent over IPC: `ready` once polling, `stats` on request, and it stops on `stop`.
 */
import { NativeConnection } from '@temporalio/worker';
import type { ShardStage } from '../lib/run/stages';
import { buildWorkers, runWorkers } from '../workers/build';
import { installWorkerLogger } from '../workers/logger';

export interface ScaleWorkerArgs {
  address: string;
  namespace: string;
  gpuTaskQueue: string;
  cpuTaskQueue: string;
  gpuConcurrency: number;
  cpuConcurrency: number;
  delayMs: number;
  samplesPerShard: number;
}

/** Shard-stage completions seen by the worker: counts, first and last completion (epoch ms), and per second. */
export interface ScaleWorkerStats {
  done: Record<string, number>;
  /** Per stage: first and last completion (epoch ms). */
  window: Record<string, { first: number; last: number }>;
  first: number | null;
  last: number | null;
  /** Completions in each whole second since `first`. */
  perSecond: number[];
}

export type ScaleWorkerMessage = { type: 'ready'; pid: number } | { type: 'stats'; stats: ScaleWorkerStats } | { type: 'error'; message: string };

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as ScaleWorkerArgs;
  const send = (m: ScaleWorkerMessage) => process.send?.(m);
  installWorkerLogger('WARN');
  const stats: ScaleWorkerStats = { done: {}, window: {}, first: null, last: null, perSecond: [] };
  const onShardStage = (stage: ShardStage) => {
    const now = Date.now();
    stats.first ??= now;
    stats.last = now;
    stats.done[stage] = (stats.done[stage] ?? 0) + 1;
    (stats.window[stage] ??= { first: now, last: now }).last = now;
    const s = Math.floor((now - stats.first) / 1000);
    while (stats.perSecond.length <= s) stats.perSecond.push(0);
    stats.perSecond[s]! += 1;
  };
  const connection = await NativeConnection.connect({ address: args.address });
  const workers = await buildWorkers({
    connection,
    namespace: args.namespace,
    queues: ['gpu', 'cpu'],
    gpuTaskQueue: args.gpuTaskQueue,
    cpuTaskQueue: args.cpuTaskQueue,
    gpuConcurrency: args.gpuConcurrency,
    cpuConcurrency: args.cpuConcurrency,
    shutdownGraceTime: '2s',
    simulate: { delayMs: args.delayMs, samplesPerShard: args.samplesPerShard, onShardStage },
  });
  const abort = new AbortController();
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') send({ type: 'stats', stats });
    if (m.type === 'stop') abort.abort();
  });
  const running = runWorkers(workers, abort.signal);
  send({ type: 'ready', pid: process.pid });
  await running;
  send({ type: 'stats', stats });
  await connection.close();
  process.disconnect?.();
}

main().catch((err: unknown) => {
  process.send?.({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
