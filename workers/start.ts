/**
 * The worker process (`recaption worker`): check the machine and its models (GPU queue), then connect to the
 * configured Temporal cluster and poll the chosen task queues until SIGINT/SIGTERM (graceful; twice: at once).
 */
import { constants as osConstants } from 'node:os';
import type { Duration } from '@temporalio/common';
import type { LogLevel } from '@temporalio/worker';
import type { QueueKind } from '../lib/config/task-queues';
import type { Device } from '../lib/models/types';
import { processLogLine, type LogFormat } from './log-format';

export interface WorkerProcessOptions {
  queues: QueueKind[];
  gpuQueue: string;
  cpuQueue: string;
  gpuConcurrency: number;
  cpuConcurrency: number;
  shutdownGrace: Duration;
  logLevel: LogLevel;
  /** Run configs whose models this worker loads and checks at start. */
  configs: string[];
  captioner?: string;
  clip?: string;
  dtype?: string;
  device?: string;
  /** Serve Prometheus metrics (ours and the Temporal SDK's) on this port at /metrics. */
  metricsPort?: number;
  /** Threads of the annotate stage's preprocessing pool (lib/pipeline/prep-pool.ts); default: its own. */
  prepThreads?: number;
  /** `text` (default) or `json`: one JSON object per line. */
  logFormat?: LogFormat;
}

export async function runWorkerProcess(opts: WorkerProcessOptions): Promise<void> {
  const format = opts.logFormat ?? 'text';
  const note = (m: string) => process.stderr.write(processLogLine(format, m));
  // The model runtime (and then Temporal) load only when needed: a CPU-only worker never loads ONNX Runtime,
  // and a refused start stays quick.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const checksNeeded = opts.queues.includes('gpu') || opts.device !== undefined || opts.configs.length > 0 || !!opts.captioner || !!opts.clip;
  const check = checksNeeded ? (require('./model-check') as typeof import('./model-check')) : undefined;
  const device: Device | undefined = check
    ? await check.checkWorkerModels({ ...opts, load: opts.queues.includes('gpu'), note })
    : undefined;

  const { NativeConnection } = require('@temporalio/worker') as typeof import('@temporalio/worker');
  const { temporalTarget } = require('../infra/temporal-target') as typeof import('../infra/temporal-target');
  const { installWorkerLogger } = require('./logger') as typeof import('./logger');
  const { buildWorkers, runWorkers } = require('./build') as typeof import('./build');
  const prepPool = require('../lib/pipeline/prep-pool') as typeof import('../lib/pipeline/prep-pool');
  /* eslint-enable @typescript-eslint/no-require-imports */
  // Started on first use and reused by every activity of this process.
  if (opts.prepThreads !== undefined) await prepPool.setPrepThreads(opts.prepThreads);
  const telemetry = opts.metricsPort === undefined ? undefined : await startTelemetry(opts.metricsPort, device);
  installWorkerLogger(opts.logLevel, { format, ...(telemetry ? { prometheusBindAddress: telemetry.sdkBindAddress } : {}) });
  // From here on the SDK's runtime handles SIGTERM/SIGINT too (it shuts the workers down, even before they run).
  const shutdown = handleShutdownSignals(opts.shutdownGrace, note);
  if (telemetry) note(`metrics on :${telemetry.server.port}/metrics`);
  const target = temporalTarget();
  const connection = await NativeConnection.connect(target.connection);
  const workers = await buildWorkers({
    connection,
    namespace: target.namespace,
    queues: opts.queues,
    gpuTaskQueue: opts.gpuQueue,
    cpuTaskQueue: opts.cpuQueue,
    ...(device !== undefined ? { device } : {}),
    gpuConcurrency: opts.gpuConcurrency,
    cpuConcurrency: opts.cpuConcurrency,
    shutdownGraceTime: opts.shutdownGrace,
    stopping: shutdown.stopping,
    ...(telemetry ? { metrics: telemetry.metrics } : {}),
  });
  const started = `${opts.queues.map((q) => (q === 'gpu' ? opts.gpuQueue : opts.cpuQueue)).join(', ')} on ${target.connection.address}/${target.namespace} (pid ${process.pid})`;
  process.stderr.write(format === 'json' ? processLogLine(format, `recaption worker: ${started}`) : `recaption worker: ${started}\n`);
  try {
    await runWorkers(workers);
  } finally {
    shutdown.dispose();
    await connection.close();
    await check?.releaseModels();
    await prepPool.closeSharedPrepPool();
    await telemetry?.server.close();
  }
}

/**
 * Graceful shutdown. First SIGTERM/SIGINT: the SDK's runtime (which handles it too) stops polling and gives running
 * activities `grace`; `stopping` aborts, so a running annotate stage commits what it has at its next batch and fails
 * retryably — another worker resumes from there — and the worker exits 0 once its activities have returned. A
 * second signal exits at once (128 + signal number): only uncommitted work is lost, as with SIGKILL.
 */
function handleShutdownSignals(grace: Duration, note: (m: string) => void): { stopping: AbortSignal; dispose(): void } {
  const stopping = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping.signal.aborted) {
      note(`${signal}: shutting down — no new tasks; running stages commit at their next batch and hand over (grace ${String(grace)}); ${signal} again stops at once`);
      stopping.abort(new Error(`worker shutting down (${signal})`));
      return;
    }
    note(`${signal} again: exiting now; running stages resume elsewhere from their last commit`);
    process.exit(128 + (osConstants.signals[signal] ?? 15));
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  for (const s of signals) process.on(s, onSignal);
  return { stopping: stopping.signal, dispose: () => signals.forEach((s) => process.off(s, onSignal)) };
}

/** Our metrics server on `port`; the SDK's exporter on a free loopback port that it appends (workers/metrics-server.ts). */
async function startTelemetry(port: number, device: Device | undefined) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { freePort } = require('../infra/dev-server') as typeof import('../infra/dev-server');
  const { createWorkerMetrics } = require('./metrics') as typeof import('./metrics');
  const { serveMetrics } = require('./metrics-server') as typeof import('./metrics-server');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const sdkBindAddress = `127.0.0.1:${await freePort()}`;
  const metrics = createWorkerMetrics(device !== undefined ? { device } : {});
  const server = await serveMetrics(port, metrics.registry, `http://${sdkBindAddress}/metrics`);
  return { metrics, server, sdkBindAddress };
}
