import type { Duration } from '@temporalio/common';
import type { LogLevel } from '@temporalio/worker';
import type { QueueKind } from '../../lib/config/task-queues';
import { LOG_FORMATS, type LogFormat } from '../../workers/log-format';
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
  metricsPort?: number;
  prepThreads?: number;
  logFormat: string;
}

export async function workerCommand(opts: WorkerOptions): Promise<void> {
  const { config, shutdownGrace, logLevel, logFormat, ...rest } = opts;
  await runWorkerProcess({
    ...rest,
    queues: parseQueues(opts.queues),
    configs: config,
    shutdownGrace: shutdownGrace as Duration,
    logLevel: logLevel.toUpperCase() as LogLevel,
    logFormat: parseLogFormat(logFormat),
  });
}

/** `--queues gpu,cpu` → the queue kinds; anything else is refused. */
export function parseQueues(value: string): QueueKind[] {
  const queues = value.split(',').map((q) => q.trim()).filter(Boolean);
  const bad = queues.filter((q) => q !== 'gpu' && q !== 'cpu');
  if (bad.length || queues.length === 0) throw new Error(`--queues: expected a comma-separated list of gpu, cpu; got "${value}"`);
  return queues as QueueKind[];
}

export function parseLogFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new Error(`--log-format: expected one of ${LOG_FORMATS.join(', ')}; got "${value}"`);
  return value as LogFormat;
}
