import type { Duration } from '@temporalio/common';
import type { LogLevel } from '@temporalio/worker';
import { defaultImageOptions, defaultSessionOptions, loadModel, modelSpecs, setWorkerDevice, type ModelSpec } from '../../activities/models';
import { loadConfigFile } from '../../lib/config/load';
import { InputError } from '../../lib/errors';
import { releaseCachedModels } from '../../lib/models';
import { parseDevice, probeDevice } from '../../lib/models/session';
import type { Device, RuntimeOptions } from '../../lib/models/types';
import type { QueueKind } from '../../workers/build';
import { temporalTargetFromEnv } from '../connection';

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

const DTYPES = ['fp32', 'fp16', 'quantized'] as const;

export async function workerCommand(opts: WorkerOptions): Promise<void> {
  const queues = opts.queues.split(',').map((q) => q.trim()).filter(Boolean);
  const bad = queues.filter((q) => q !== 'gpu' && q !== 'cpu');
  if (bad.length || queues.length === 0) throw new Error(`--queues: expected a comma-separated list of gpu, cpu; got "${opts.queues}"`);

  // Everything that can be wrong with this machine or its models fails here, before any Temporal connection,
  // with exit code 2 and the file at fault — not on the first sample of a run.
  const device = opts.device === undefined ? undefined : checkedDevice(opts.device);
  setWorkerDevice(device);
  const specs = await modelsToCheck(opts);
  if (device !== undefined) {
    await probeDevice(device);
    note(`device ${device} works`);
  }
  if (queues.includes('gpu')) await preload(specs);

  // Temporal (and every activity's code) loads only now: a refused start stays quick.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NativeConnection } = require('@temporalio/worker') as typeof import('@temporalio/worker');
  const { installWorkerLogger } = require('../../workers/logger') as typeof import('../../workers/logger');
  const { buildWorkers, runWorkers } = require('../../workers/build') as typeof import('../../workers/build');
  /* eslint-enable @typescript-eslint/no-require-imports */
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
    await releaseCachedModels();
  }
}

function checkedDevice(value: string): Device {
  try {
    parseDevice(value as Device);
  } catch (err) {
    throw new InputError('InvalidConfig', `--device: ${(err as Error).message}`);
  }
  return value as Device;
}

/** The models named by --config files and by --captioner/--clip (+ --dtype), deduplicated. */
async function modelsToCheck(opts: WorkerOptions): Promise<ModelSpec[]> {
  if (opts.dtype !== undefined && !(DTYPES as readonly string[]).includes(opts.dtype)) {
    throw new InputError('InvalidConfig', `--dtype: expected one of ${DTYPES.join(', ')}, got "${opts.dtype}"`);
  }
  if (opts.dtype !== undefined && !opts.captioner && !opts.clip) throw new InputError('InvalidConfig', '--dtype applies to --captioner/--clip; a run config sets models.*.dtype');
  const specs: ModelSpec[] = [];
  for (const file of opts.config) {
    const config = await loadConfigFile(file);
    specs.push(...modelSpecs(config.models, config.image));
  }
  const dtype = (opts.dtype ?? 'fp32') as NonNullable<RuntimeOptions['dtype']>;
  specs.push(
    ...modelSpecs(
      {
        device: 'cpu', // overridden by --device when given
        session: defaultSessionOptions(),
        ...(opts.captioner ? { captioner: { path: opts.captioner, dtype } } : {}),
        ...(opts.clip ? { clip: { path: opts.clip, dtype } } : {}),
      },
      defaultImageOptions(),
    ),
  );
  const seen = new Set<string>();
  return specs.filter((s) => {
    const key = JSON.stringify(s);
    return !seen.has(key) && (seen.add(key), true);
  });
}

/** Loads and validates every model; all failures are reported together, then the worker exits. */
async function preload(specs: ModelSpec[]): Promise<void> {
  const failures: unknown[] = [];
  for (const spec of specs) {
    const started = Date.now();
    try {
      await loadModel(spec);
      note(`${spec.kind} ${spec.dir} (${spec.options.dtype ?? 'fp32'}, ${spec.options.device ?? 'cpu'}) loaded and checked in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length === 0) return;
  await releaseCachedModels();
  const messages = failures.map((e) => (e instanceof Error ? e.message : String(e)));
  const first = failures[0];
  const text = messages.length === 1 ? messages[0]! : `${messages.length} models cannot be used:\n${messages.map((m) => `  - ${m}`).join('\n')}`;
  // Bad input (exit 2) only when every failure is; an I/O or runtime fault is rethrown as itself (exit 1).
  if (failures.every((e) => e instanceof InputError)) throw new InputError((first as InputError).type, text);
  throw first instanceof Error && failures.length === 1 ? first : new Error(text);
}

function note(message: string): void {
  process.stderr.write(`recaption: ${message}\n`);
}
