/**
 * The single worker builder every worker app uses (`recaption worker`, the demo's in-process worker, tests).
 * GPU queue: only the GPU activities (caption, score), one shard at a time per process by default — the model
 * batches internally and is loaded once per process, on the worker's device. CPU queue: the workflows and the
 * CPU activities, which load no model (a CPU-only worker never loads ONNX Runtime).
 */
import type { Duration } from '@temporalio/common';
import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { createCpuActivities, createGpuActivities } from '../activities';
import { createSimulatedCpuActivities, createSimulatedGpuActivities, type SimulateOptions } from '../activities/simulate';
import { defaultTaskQueue, type QueueKind } from '../lib/config/task-queues';
import type { Device } from '../lib/models/types';
import type { WorkerMetrics } from './metrics';
import { stageInterceptor } from './stage-interceptor';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  queues: QueueKind[];
  /** Default: lib/config/task-queues.ts, the same default a run config takes. */
  gpuTaskQueue?: string;
  cpuTaskQueue?: string;
  /** Where the GPU activities run their models (`recaption worker --device`); default: as each run says. */
  device?: Device;
  /** Pre-bundled workflow code (tests bundle once); default: bundle workflows/ at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Concurrent GPU shard activities per process (default 1). */
  gpuConcurrency?: number;
  /** Concurrent CPU activities per process (default: 4). */
  cpuConcurrency?: number;
  /** How long running activities get to finish on shutdown before they are cancelled. */
  shutdownGraceTime?: Duration;
  /**
   * Aborted when the worker starts to shut down (workers/start.ts, first SIGTERM): running annotate stages commit
   * what they have at their next batch and fail retryably, so another worker resumes there within the grace time.
   */
  stopping?: AbortSignal;
  identity?: string;
  /** Record per-stage metrics here (`recaption worker --metrics-port`); stage log context is added regardless. */
  metrics?: WorkerMetrics;
  /** Simulate mode (activities/simulate.ts): the same activities, queues and workflows, no model and no data (`npm run bench:scale`). */
  simulate?: SimulateOptions;
}

/**
 * The longest a stage's heartbeats are held back. A cancellation reaches a stage only in the reply to a heartbeat,
 * and the SDK sends them every 0.8 × heartbeatTimeout, capped at 60 s by default: with the default 2m timeout,
 * `recaption cancel` would wait up to a minute per stage. Five seconds keeps it prompt at one small RPC per running
 * stage every 5 s.
 */
export const HEARTBEAT_THROTTLE: Duration = '5s';

export function workflowsPath(): string {
  return require.resolve('../workflows');
}

export async function buildWorkers(setup: WorkerSetup): Promise<Worker[]> {
  const workers: Worker[] = [];
  // Activities get this long to reach a checkpoint on SIGTERM; the SDK default (0) cancels them at once.
  const shutdownGraceTime: Duration = setup.shutdownGraceTime ?? '30s';
  const common = {
    connection: setup.connection,
    namespace: setup.namespace,
    shutdownGraceTime,
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    interceptors: { activity: [stageInterceptor(setup.metrics)] },
    ...(setup.identity ? { identity: setup.identity } : {}),
  };
  if (setup.queues.includes('cpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: setup.cpuTaskQueue ?? defaultTaskQueue('cpu'),
        ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: workflowsPath() }),
        activities: setup.simulate ? createSimulatedCpuActivities(setup.simulate) : createCpuActivities(),
        maxConcurrentActivityTaskExecutions: setup.cpuConcurrency ?? 4,
      }),
    );
  }
  if (setup.queues.includes('gpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: setup.gpuTaskQueue ?? defaultTaskQueue('gpu'),
        activities: setup.simulate ? createSimulatedGpuActivities(setup.simulate) : gpuActivities(setup),
        maxConcurrentActivityTaskExecutions: setup.gpuConcurrency ?? 1,
      }),
    );
  }
  return workers;
}

function gpuActivities(setup: WorkerSetup) {
  // Required here, not at the top, so that only GPU workers load the model runtime.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { StageModels } = require('../lib/pipeline/stage-models') as typeof import('../lib/pipeline/stage-models');
  return createGpuActivities(new StageModels(setup.device), setup.stopping);
}

/** Run workers until `signal` aborts (or SIGINT/SIGTERM, handled by the SDK's Runtime). */
export async function runWorkers(workers: Worker[], signal?: AbortSignal): Promise<void> {
  if (signal) signal.addEventListener('abort', () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown()), { once: true });
  await Promise.all(workers.map((w) => w.run()));
}
