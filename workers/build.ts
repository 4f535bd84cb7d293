/**
 * The single worker builder every worker app uses (CLI `worker`, the demo's in-process worker, tests).
 * GPU queue: only the GPU activities (caption, score), one shard at a time per process by default — the model
 * batches internally and is loaded once per process. CPU queue: the workflows and the CPU activities.
 */
import type { Duration } from '@temporalio/common';
import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { cpuActivities, gpuActivities } from '../activities';

export type QueueKind = 'gpu' | 'cpu';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  queues: QueueKind[];
  gpuTaskQueue?: string;
  cpuTaskQueue?: string;
  /** Pre-bundled workflow code (tests bundle once); default: bundle workflows/ at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Concurrent GPU shard activities per process (default 1). */
  gpuConcurrency?: number;
  /** Concurrent CPU activities per process (default: 4). */
  cpuConcurrency?: number;
  /** How long running activities get to finish on shutdown before they are cancelled. */
  shutdownGraceTime?: Duration;
  identity?: string;
}

export const DEFAULT_GPU_QUEUE = process.env.RECAPTION_GPU_QUEUE ?? 'recaption-gpu';
export const DEFAULT_CPU_QUEUE = process.env.RECAPTION_CPU_QUEUE ?? 'recaption-cpu';

export function workflowsPath(): string {
  return require.resolve('../workflows');
}

export async function buildWorkers(setup: WorkerSetup): Promise<Worker[]> {
  const workers: Worker[] = [];
  // Activities get this long to reach a checkpoint on SIGTERM; the SDK default (0) cancels them at once.
  const shutdownGraceTime: Duration = setup.shutdownGraceTime ?? '30s';
  const common = { connection: setup.connection, namespace: setup.namespace, shutdownGraceTime, ...(setup.identity ? { identity: setup.identity } : {}) };
  if (setup.queues.includes('cpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: setup.cpuTaskQueue ?? DEFAULT_CPU_QUEUE,
        ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: workflowsPath() }),
        activities: cpuActivities,
        maxConcurrentActivityTaskExecutions: setup.cpuConcurrency ?? 4,
      }),
    );
  }
  if (setup.queues.includes('gpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: setup.gpuTaskQueue ?? DEFAULT_GPU_QUEUE,
        activities: gpuActivities,
        maxConcurrentActivityTaskExecutions: setup.gpuConcurrency ?? 1,
      }),
    );
  }
  return workers;
}

/** Run workers until `signal` aborts (or SIGINT/SIGTERM, handled by the SDK's Runtime). */
export async function runWorkers(workers: Worker[], signal?: AbortSignal): Promise<void> {
  if (signal) signal.addEventListener('abort', () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown()), { once: true });
  await Promise.all(workers.map((w) => w.run()));
}
