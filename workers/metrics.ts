/**
 * The worker's own Prometheus metrics (prom-client, on a registry of its own): per shard stage — shards by
 * outcome, samples done (samples/s = rate()), samples skipped by reason, durations, failed attempts by type, the
 * stage thread's busy time (inside ONNX Runtime and not) and the preprocessing threads —
 * plus models loaded, activities running and busy time per task queue, and GPU utilisation where nvidia-smi can
 * read it. They are fed from each stage's StageSummary by workers/stage-interceptor.ts, so lib/ and activities/
 * know nothing of metrics. Stage names are labels taken from lib/run/stages.ts at run time, never listed here.
 */
import { execFile } from 'node:child_process';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import { loadedModelKeys } from '../lib/models/cache';
import type { Device } from '../lib/models/types';

/** How a shard-stage activity ended. */
export type ShardOutcome = 'done' | 'skipped' | 'failed_earlier';

export interface WorkerMetrics {
  registry: Registry;
  /** A shard stage returned: count its shard, samples, skipped samples by reason and (when it worked) its duration. */
  stageFinished(stage: string, summary: StageSummary, seconds: number): void;
  /** A shard-stage attempt threw (`type`: the failure type, e.g. CorruptShard, or the error's name). */
  stageFailed(stage: string, type: string): void;
  /** An activity of `taskQueue` starts; call the returned function when it ends. */
  activityStarted(taskQueue: string): () => void;
}

// Shard stages take seconds (tiny models) to tens of minutes (a 10k-sample shard through BLIP-2 on one GPU).
const STAGE_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

export function createWorkerMetrics(opts: { device?: Device } = {}): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const shards = new Counter({
    name: 'recaption_stage_shards_total',
    help: 'Shard-stage activities that returned, by stage and outcome (done: worked; skipped: already committed; failed_earlier: the shard failed in an earlier stage).',
    labelNames: ['stage', 'outcome'],
    registers,
  });
  const samples = new Counter({
    name: 'recaption_stage_samples_total',
    help: 'Samples processed by shard stages that did their work (committed shards found on resume are not counted); samples/s = rate().',
    labelNames: ['stage'],
    registers,
  });
  const skipped = new Counter({
    name: 'recaption_stage_samples_skipped_total',
    help: "Samples a stage did not carry on, by reason: kind=failed (could not be processed, e.g. decode_error) or kind=dropped (the selection rule said no).",
    labelNames: ['stage', 'kind', 'reason'],
    registers,
  });
  const duration = new Histogram({
    name: 'recaption_stage_duration_seconds',
    help: 'Wall time of shard stages that did their work.',
    labelNames: ['stage'],
    buckets: STAGE_BUCKETS,
    registers,
  });
  const failures = new Counter({
    name: 'recaption_stage_failures_total',
    help: 'Shard-stage attempts that threw, by failure type (non-retryable input errors carry their type; infra errors their name and are retried).',
    labelNames: ['stage', 'type'],
    registers,
  });
  // The annotate stage's own thread (lib/pipeline/annotate-stage.ts counts mainThreadMs / onnxRunMs / prepThreads).
  const mainThread = new Counter({
    name: 'recaption_stage_main_thread_seconds_total',
    help: "Busy time of the thread that runs a stage (event-loop utilisation), by part: onnx inside ONNX Runtime's session.run (which blocks the thread), js everything else — the work preprocessing threads keep off it.",
    labelNames: ['stage', 'part'],
    registers,
  });
  const mainThreadPerSample = new Histogram({
    name: 'recaption_stage_main_thread_js_ms_per_sample',
    help: "Per shard: the stage thread's busy milliseconds outside ONNX Runtime per sample (goal <= 0.3 ms: one process then feeds >= 3,000 images/s).",
    labelNames: ['stage'],
    buckets: [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30],
    registers,
  });
  const prepThreads = new Gauge({
    name: 'recaption_prep_threads',
    help: "Preprocessing threads (tar parsing, decode, preprocess, stacking, float16, tokenising) of this worker's annotate stage, as its last shard used; 0: on the stage's thread.",
    registers,
  });
  new Gauge({
    name: 'recaption_models_loaded',
    help: 'Models (and model-like assets) loaded in this worker process, by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      for (const key of loadedModelKeys()) this.inc({ kind: key.slice(0, key.indexOf(':')) });
    },
  });

  const running = new Map<string, number>();
  const busySince = new Map<string, number>();
  const activities = new Gauge({ name: 'recaption_activities_running', help: 'Activities running now, by task queue.', labelNames: ['task_queue'], registers });
  // Busy time = time with at least one activity running; rate() of it is the share of time the queue's slots work.
  const busy = new Counter({
    name: 'recaption_activity_busy_seconds_total',
    help: "Seconds during which at least one activity of the task queue was running; rate() is the worker's busy share.",
    labelNames: ['task_queue'],
    registers,
    collect() {
      const now = performance.now();
      for (const [queue, since] of busySince) {
        this.inc({ task_queue: queue }, (now - since) / 1000);
        busySince.set(queue, now);
      }
    },
  });

  const gpu = opts.device && opts.device !== 'cpu' ? { device: opts.device, index: Number(opts.device.slice('cuda:'.length)) } : undefined;
  new Gauge({
    name: 'recaption_gpu_utilization_ratio',
    help: "The worker's GPU busy share over nvidia-smi's last sample period (0-1); only on workers with --device cuda:N where nvidia-smi can read it.",
    labelNames: ['device'],
    registers,
    async collect() {
      const share = gpu ? await gpuUtilization(gpu.index) : undefined;
      this.reset();
      if (gpu && share !== undefined) this.set({ device: gpu.device }, share);
    },
  });

  return {
    registry,
    stageFinished(stage, summary, seconds) {
      const outcome: ShardOutcome = summary.failedEarlier ? 'failed_earlier' : summary.skipped ? 'skipped' : 'done';
      shards.inc({ stage, outcome });
      if (outcome !== 'done') return;
      samples.inc({ stage }, summary.samples);
      duration.observe({ stage }, seconds);
      const c = summary.counts ?? {};
      if (c.mainThreadMs !== undefined) {
        const onnx = c.onnxRunMs ?? 0;
        const js = Math.max(0, c.mainThreadMs - onnx);
        mainThread.inc({ stage, part: 'onnx' }, onnx / 1000);
        mainThread.inc({ stage, part: 'js' }, js / 1000);
        const worked = summary.samples - (c.resumedAt ?? 0); // a resumed attempt prepared only the rest
        if (worked > 0) mainThreadPerSample.observe({ stage }, js / worked);
      }
      if (c.prepThreads !== undefined) prepThreads.set(c.prepThreads);
      for (const [key, n] of Object.entries(summary.counts ?? {})) {
        const colon = key.indexOf(':');
        const kind = key.slice(0, colon);
        if (colon > 0 && (kind === 'failed' || kind === 'dropped')) skipped.inc({ stage, kind, reason: key.slice(colon + 1) }, n);
      }
    },
    stageFailed(stage, type) {
      failures.inc({ stage, type });
    },
    activityStarted(taskQueue) {
      const n = (running.get(taskQueue) ?? 0) + 1;
      running.set(taskQueue, n);
      activities.set({ task_queue: taskQueue }, n);
      if (n === 1) busySince.set(taskQueue, performance.now());
      busy.inc({ task_queue: taskQueue }, 0); // the series exists from the first activity on
      return () => {
        const left = (running.get(taskQueue) ?? 1) - 1;
        running.set(taskQueue, left);
        activities.set({ task_queue: taskQueue }, left);
        if (left === 0) {
          busy.inc({ task_queue: taskQueue }, (performance.now() - busySince.get(taskQueue)!) / 1000);
          busySince.delete(taskQueue);
        }
      };
    },
  };
}

/** nvidia-smi's utilisation of GPU `index` as a share (0-1), or undefined where it cannot be read. */
function gpuUtilization(index: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=utilization.gpu', '--format=csv,noheader,nounits', '-i', String(index)], { timeout: 2000 }, (err, stdout) => {
      const percent = Number(String(stdout).trim());
      resolve(err || !Number.isFinite(percent) ? undefined : percent / 100);
    });
  });
}
