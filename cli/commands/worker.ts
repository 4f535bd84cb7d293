import type { Duration } from '@temporalio/common';
import type { LogLevel } from '@temporalio/worker';
import type { QueueKind } from '../../lib/config/task-queues';
import { runWorkerProcess } from '../../workers/start';

/** The `recaption worker` flags, as commander parses them. */
export interface WorkerOptions {
  queues: string;
  gpuQueue: string;
  cpuQueue: string;
  gpuConcurrency: number;
  cpuConcurrency: number;
  shutdownGrace: string;
  logLevel: string;
  /** run configs whose models this worker loads and checks at start */
  config: string[];
  captioner?: string;
  clip?: string;
  dtype?: string;
  device?: string;
}

export async function workerCommand(opts: WorkerOptions): Promise<void> {
  const queues = opts.queues.split(',').map((q) => q.trim()).filter(Boolean);
  const bad = queues.filter((q) => q !== 'gpu' && q !== 'cpu');
  if (bad.length || queues.length === 0) throw new Error(`--queues: expected a comma-separated list of gpu, cpu; got "${opts.queues}"`);
  const { config, shutdownGrace, logLevel, ...rest } = opts;
  await runWorkerProcess({
    ...rest,
    queues: queues as QueueKind[],
    configs: config,
    shutdownGrace: shutdownGrace as Duration,
    logLevel: logLevel.toUpperCase() as LogLevel,
  });
}
