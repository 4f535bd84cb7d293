/** A gpu+cpu worker inside the CLI process (the demo, `recaption run --local-worker`). */
import { NativeConnection } from '@temporalio/worker';
import type { TemporalTarget } from '../infra/temporal-target';
import type { RunConfig } from '../lib/config/schema';
import { buildWorkers, runWorkers } from './build';
import { installWorkerLogger } from './logger';

export interface LocalWorkers {
  stop(): Promise<void>;
  /** Rejects if a worker dies. */
  running: Promise<void>;
}

export async function startLocalWorkers(target: TemporalTarget, config: RunConfig): Promise<LocalWorkers> {
  // The CLI draws its own progress; worker state changes would scroll it away. Warnings still show.
  installWorkerLogger('WARN');
  const connection = await NativeConnection.connect(target.connection);
  const workers = await buildWorkers({
    connection,
    namespace: target.namespace,
    queues: ['gpu', 'cpu'],
    gpuTaskQueue: config.temporal.gpuTaskQueue,
    cpuTaskQueue: config.temporal.cpuTaskQueue,
    shutdownGraceTime: '5s',
  });
  const abort = new AbortController();
  const running = runWorkers(workers, abort.signal);
  return {
    running,
    stop: async () => {
      abort.abort();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
}
