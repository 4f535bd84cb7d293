import type { Duration } from '@temporalio/common';
import { NativeConnection, type LogLevel } from '@temporalio/worker';
import { installWorkerLogger } from '../../workers/logger';
import { buildWorkers, runWorkers, type QueueKind } from '../../workers/build';
import { temporalTargetFromEnv } from '../connection';

export interface WorkerOptions {
  queues: string;
  gpuQueue: string;
  cpuQueue: string;
  gpuConcurrency: number;
  cpuConcurrency: number;
  shutdownGrace: string;
  logLevel: string;
}

export async function workerCommand(opts: WorkerOptions): Promise<void> {
  const queues = opts.queues.split(',').map((q) => q.trim()).filter(Boolean);
  const bad = queues.filter((q) => q !== 'gpu' && q !== 'cpu');
  if (bad.length || queues.length === 0) throw new Error(`--queues: expected a comma-separated list of gpu, cpu; got "${opts.queues}"`);
  installWorkerLogger(opts.logLevel.toUpperCase() as LogLevel);
  const target = temporalTargetFromEnv() ?? { address: 'localhost:7233', namespace: 'default' };
  const connection = await NativeConnection.connect({ address: target.address, ...(target.apiKey ? { apiKey: target.apiKey, tls: true } : {}) });
  const workers = await buildWorkers({
    connection,
    namespace: target.namespace,
    queues: queues as QueueKind[],
    gpuTaskQueue: opts.gpuQueue,
    cpuTaskQueue: opts.cpuQueue,
    gpuConcurrency: opts.gpuConcurrency,
    cpuConcurrency: opts.cpuConcurrency,
    shutdownGraceTime: opts.shutdownGrace as Duration,
  });
  process.stderr.write(
    `recaption worker: ${queues.map((q) => (q === 'gpu' ? opts.gpuQueue : opts.cpuQueue)).join(', ')} on ${target.address}/${target.namespace} (pid ${process.pid})\n`,
  );
  try {
    await runWorkers(workers);
  } finally {
    await connection.close();
  }
}
