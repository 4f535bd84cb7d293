/**
 * `npm run bench:scale`: the real run and page workflows on a real Temporal dev server with real workers and task
 * queues, over a generated plan of 12,800 shards (`--shards 128000`: the long mode), with activities in simulate
 * mode (activities/simulate.ts: no model work, no data). It prints each figure against its goal:
 *   - the largest history of any workflow execution (runs continued-as-new and page children included),
 *   - shard-stage activities completed per second,
 *   - the worker's and the dev server's peak memory,
 *   - the time from the last shard stage's completion to the run's end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import { startDevServer } from '../infra/dev-server';
import { parseConfig } from '../lib/config/load';
import { SHARD_STAGES } from '../lib/run/stages';
import type { recaptionRun } from '../workflows/run';
import type { ScaleWorkerArgs, ScaleWorkerMessage, ScaleWorkerStats } from './scale-worker';
import { measureRealTail, type RealTail } from './scale-tail';

/** Temporal's history warning level (events); the server suggests continue-as-new at 4,096. */
export const HISTORY_GOAL = 10_240;
/** Shard-stage activities per second on a 2-core machine (1,000 GPUs at 500 images/s need ~150/s). */
export const THROUGHPUT_GOAL = 200;

interface ScaleFlags {
  shards: number;
  delayMs: number;
  samplesPerShard: number;
  gpuSlots: number;
  cpuSlots: number;
  preset: string;
  inMemory: boolean;
  serverArg: string[];
  realTail: boolean;
  json?: string;
  keep: boolean;
}

function flags(): ScaleFlags {
  const int = (min: number) => (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`expected an integer ≥ ${min}, got ${v}`);
    return n;
  };
  return new Command('bench:scale')
    .description('the real workflows over a generated plan, activities simulated (bench/README.md "Scale")')
    .option('--shards <n>', 'shards in the generated plan (long mode: 128000)', int(1), 12_800)
    .option('--delay-ms <ms>', 'time each simulated activity takes', int(0), 0)
    .option('--samples-per-shard <n>', 'samples each simulated shard reports', int(1), 10_000)
    .option('--gpu-slots <n>', 'concurrent gpu-queue activities (the GPU fleet: one slot per GPU worker)', int(1), 256)
    .option('--cpu-slots <n>', 'concurrent cpu-queue activities (the CPU workers together)', int(1), 64)
    .option('--preset <name>', 'strategy preset of the run config', 'raw30-synthetic70-filtered')
    .option('--in-memory', 'dev server without a database file (default: SQLite file, as `recaption dev-server --db`)', false)
    .option('--server-arg <arg>', 'extra `temporal server start-dev` argument (repeatable), e.g. --server-arg=--sqlite-pragma --server-arg=journal_mode=wal', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--no-real-tail', 'skip timing the real thresholds and finalize stages over stand-in files')
    .option('--json <file>', 'also write the figures as JSON')
    .option('--keep', 'keep the temp folder (database, plan, stand-in files)', false)
    .parse()
    .opts<ScaleFlags>();
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB; null once it has exited. */
function memoryOf(pid: number): { hwm: number; rss: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far; null once it has exited. */
function cpuSecondsOf(pid: number): number | null {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100;

class WorkerProcess {
  private waiters: Array<(m: ScaleWorkerMessage) => void> = [];
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: ScaleWorkerMessage) => {
      if (m.type === 'error') process.stderr.write(`scale worker failed: ${m.message}\n`);
      this.waiters.splice(0).forEach((w) => w(m));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(args: ScaleWorkerArgs): Promise<WorkerProcess> {
    // node itself (not the tsx wrapper) runs the worker, so the pid is the worker's.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'scale-worker.ts'), JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w = new WorkerProcess(child);
    const first = await Promise.race([w.next(), w.exited.then((code) => ({ type: 'error', message: `exited with ${code}` }) as const)]);
    if (first.type !== 'ready') throw new Error(`scale worker did not start: ${first.type === 'error' ? first.message : first.type}`);
    return w;
  }

  private next(): Promise<ScaleWorkerMessage> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stats(): Promise<ScaleWorkerStats> {
    const reply = this.next();
    this.child.send({ type: 'stats' });
    const m = await reply;
    if (m.type !== 'stats') throw new Error(`scale worker: ${m.type === 'error' ? m.message : m.type}`);
    return m.stats;
  }

  async stop(): Promise<ScaleWorkerStats | undefined> {
    const last = this.next();
    this.child.send({ type: 'stop' });
    const m = await Promise.race([last, this.exited.then(() => undefined)]);
    await this.exited;
    return m?.type === 'stats' ? m.stats : undefined;
  }
}

export interface ExecutionFigure {
  workflowId: string;
  runId: string;
  type: string;
  historyLength: number;
  historySizeBytes: number | null;
}

export interface ScaleResult {
  shards: number;
  samplesPerShard: number;
  delayMs: number;
  gpuSlots: number;
  cpuSlots: number;
  temporal: { pageSize: number; maxConcurrentPages: number; maxConcurrentShards: number };
  server: 'sqlite' | 'in-memory';
  cpus: number;
  loadAverage: number[];
  runSeconds: number;
  executions: number;
  largestHistory: ExecutionFigure;
  largestRunHistory: ExecutionFigure;
  shardStages: number;
  shardStagesPerSecond: number;
  /** Per phase: shard stages per second between its first and last completion (annotate: gpu queue; select + write: cpu queue). */
  phaseRates: { annotate: number; select: number };
  /** Median and best whole-second completion counts (sustained rate, without the start and the phase change). */
  perSecondMedian: number;
  perSecondBest: number;
  workerPeakMiB: number;
  workerRunPeakMiB: number;
  serverPeakMiB: number;
  /** CPU the worker and the server used during the run, and per shard stage (all workflow and run-level work included). */
  cpuSeconds: { worker: number; server: number };
  cpuMsPerShardStage: { worker: number; server: number };
  tailSeconds: number;
  tail: { lastPageToRunEnd: number | null; thresholdsActivity: number | null; finalizeActivity: number | null };
  realTail: RealTail | null;
  summary: { samples: number; kept: number; progress: unknown };
}

async function main(): Promise<void> {
  const f = flags();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'recaption-scale-'));
  const server = await startDevServer({ ...(f.inMemory ? {} : { dbFile: path.join(tmp, 'temporal.db') }), extraArgs: ['--headless', ...f.serverArg] });
  const serverPid = server.process.pid!;
  let worker: WorkerProcess | undefined;
  try {
    const config = parseConfig(
      {
        run: { name: `scale-${f.shards}` },
        input: { uri: path.join(tmp, 'input'), maxShards: f.shards },
        output: { uri: path.join(tmp, 'output') },
        strategy: { preset: f.preset },
        models: { captioner: { path: path.join(tmp, 'models', 'captioner') }, clip: { path: path.join(tmp, 'models', 'clip') } },
        // temporal: the defaults every user gets (lib/config/schema.ts)
      },
      'bench:scale',
    );
    const t = config.temporal;
    worker = await WorkerProcess.start({
      address: server.address,
      namespace: server.namespace,
      gpuTaskQueue: t.gpuTaskQueue,
      cpuTaskQueue: t.cpuTaskQueue,
      gpuConcurrency: f.gpuSlots,
      cpuConcurrency: f.cpuSlots,
      delayMs: f.delayMs,
      samplesPerShard: f.samplesPerShard,
    });
    const workerPid = worker.child.pid!;
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: server.namespace });
    process.stdout.write(
      `scale: ${f.shards} shards × ${f.samplesPerShard} samples, simulated stages (delay ${f.delayMs} ms), pageSize ${t.pageSize}, ` +
        `${t.maxConcurrentPages} pages × ${t.maxConcurrentShards} shards in flight, worker slots gpu ${f.gpuSlots} / cpu ${f.cpuSlots}, ` +
        `dev server ${f.inMemory ? 'in memory' : 'SQLite file'}, ${os.cpus().length} CPUs\n`,
    );

    let workerRunPeak = 0;
    const sampler = setInterval(() => (workerRunPeak = Math.max(workerRunPeak, memoryOf(workerPid)?.rss ?? 0)), 250);
    const cpuBefore = { worker: cpuSecondsOf(workerPid) ?? 0, server: cpuSecondsOf(serverPid) ?? 0 };
    const started = Date.now();
    const handle = await client.workflow.start<typeof recaptionRun>('recaptionRun', {
      workflowId: `scale-${f.shards}-${started}`,
      taskQueue: t.cpuTaskQueue,
      args: [{ config }],
    });
    const progress = setInterval(() => {
      void worker!
        .stats()
        .then((s) => {
          const n = Object.values(s.done).reduce((a, b) => a + b, 0);
          const recent = s.perSecond.slice(-6, -1);
          const rate = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : 0;
          process.stdout.write(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${Object.entries(s.done).map(([k, v]) => `${k} ${v}`).join(' · ')} (${n}/${SHARD_STAGES.length * f.shards}, ${rate.toFixed(0)}/s now)\n`);
        })
        .catch(() => undefined);
    }, 10_000);
    let summary: Awaited<ReturnType<typeof recaptionRun>>;
    try {
      summary = await handle.result();
    } finally {
      clearInterval(progress);
      clearInterval(sampler);
    }
    const ended = Date.now();
    const workerMem = memoryOf(workerPid);
    const serverMem = memoryOf(serverPid);
    const cpu = { worker: (cpuSecondsOf(workerPid) ?? NaN) - cpuBefore.worker, server: (cpuSecondsOf(serverPid) ?? NaN) - cpuBefore.server };
    const stats = (await worker.stop())!;
    worker = undefined;

    const executions = await allExecutions(client);
    const largest = executions.reduce((a, b) => (b.historyLength > a.historyLength ? b : a));
    const runs = executions.filter((e) => e.type === 'recaptionRun');
    const largestRun = runs.reduce((a, b) => (b.historyLength > a.historyLength ? b : a));
    // Check the listed length against the history itself.
    const events = (await client.workflow.getHandle(largest.workflowId, largest.runId).fetchHistory()).events?.length ?? 0;
    if (events !== largest.historyLength) throw new Error(`history of ${largest.workflowId} has ${events} events, describe says ${largest.historyLength}`);

    const finalRun = await client.workflow.getHandle(handle.workflowId).describe();
    const runEnd = finalRun.closeTime?.getTime() ?? ended;
    const tail = await tailOf(client, handle.workflowId, finalRun.runId);
    await connection.close();
    const shardStages = Object.values(stats.done).reduce((a, b) => a + b, 0);
    const busy = stats.perSecond.slice(1, -1).sort((a, b) => a - b);
    const realTail = f.realTail ? await measureRealTail(tmp, config, f.shards, (m) => process.stdout.write(`  ${m}\n`)) : null;
    const result: ScaleResult = {
      shards: f.shards,
      samplesPerShard: f.samplesPerShard,
      delayMs: f.delayMs,
      gpuSlots: f.gpuSlots,
      cpuSlots: f.cpuSlots,
      temporal: { pageSize: t.pageSize, maxConcurrentPages: t.maxConcurrentPages, maxConcurrentShards: t.maxConcurrentShards },
      server: f.inMemory ? 'in-memory' : 'sqlite',
      cpus: os.cpus().length,
      loadAverage: os.loadavg(),
      runSeconds: (ended - started) / 1000,
      executions: executions.length,
      largestHistory: largest,
      largestRunHistory: largestRun,
      shardStages,
      shardStagesPerSecond: stats.first !== null && stats.last !== null && stats.last > stats.first ? (shardStages - 1) / ((stats.last - stats.first) / 1000) : 0,
      phaseRates: {
        annotate: rate(stats.done.annotate ?? 0, stats.window.annotate),
        select: rate((stats.done.select ?? 0) + (stats.done.write ?? 0), stats.window.select && stats.window.write ? { first: stats.window.select.first, last: stats.window.write.last } : undefined),
      },
      perSecondMedian: busy.length ? busy[Math.floor(busy.length / 2)]! : 0,
      perSecondBest: busy.length ? busy[busy.length - 1]! : 0,
      workerPeakMiB: workerMem?.hwm ?? NaN,
      workerRunPeakMiB: workerRunPeak,
      serverPeakMiB: serverMem?.hwm ?? NaN,
      cpuSeconds: cpu,
      cpuMsPerShardStage: { worker: (cpu.worker * 1000) / shardStages, server: (cpu.server * 1000) / shardStages },
      tailSeconds: (runEnd - (stats.last ?? runEnd)) / 1000,
      tail,
      realTail,
      summary: { samples: summary.samples, kept: summary.kept, progress: summary.progress },
    };
    // Every stage of every shard once (a simulated plan has nothing annotated yet, so the GPU stage runs for all).
    if (shardStages !== SHARD_STAGES.length * f.shards) throw new Error(`expected ${SHARD_STAGES.length * f.shards} shard stages, the worker saw ${shardStages}`);
    process.stdout.write(formatScale(result));
    if (f.json) writeFileSync(f.json, JSON.stringify(result, null, 2) + '\n');
  } finally {
    await worker?.stop().catch(() => undefined);
    await server.stop();
    if (f.keep) process.stdout.write(`kept ${tmp}\n`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

function rate(n: number, w: { first: number; last: number } | undefined): number {
  return w && w.last > w.first ? (n - 1) / ((w.last - w.first) / 1000) : 0;
}

/** Every execution in the namespace (the bench's server holds only this run), described for its history length. */
async function allExecutions(client: Client): Promise<ExecutionFigure[]> {
  const listed: Array<{ workflowId: string; runId: string; type: string }> = [];
  for await (const w of client.workflow.list()) listed.push({ workflowId: w.workflowId, runId: w.runId, type: w.type });
  const out: ExecutionFigure[] = [];
  for (let i = 0; i < listed.length; i += 16) {
    const batch = await Promise.all(
      listed.slice(i, i + 16).map(async (w) => {
        const d = await client.workflow.getHandle(w.workflowId, w.runId).describe();
        return { ...w, historyLength: d.historyLength, historySizeBytes: d.historySize ?? null };
      }),
    );
    out.push(...batch);
  }
  return out;
}

/** Where the tail goes, from the last run execution's history: last page's end → run end, and the two run-level activities. */
async function tailOf(client: Client, workflowId: string, runId: string): Promise<ScaleResult['tail']> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const ms = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const took: Record<string, number> = {};
  let lastChild: number | null = null;
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '', at: ms(e) });
    const c = e.activityTaskCompletedEventAttributes;
    if (c) {
      const from = scheduled.get(String(c.scheduledEventId));
      if (from) took[from.type] = (ms(e) - from.at) / 1000;
    }
    if (e.childWorkflowExecutionCompletedEventAttributes) lastChild = ms(e);
  }
  const end = ms(events.at(-1)!);
  return { lastPageToRunEnd: lastChild === null ? null : (end - lastChild) / 1000, thresholdsActivity: took.computeThresholds ?? null, finalizeActivity: took.finalizeRun ?? null };
}

export function formatScale(r: ScaleResult): string {
  const mark = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const h = r.largestHistory;
  const lines = [
    `scale, ${r.shards} shards (${r.shardStages} shard stages) in ${r.runSeconds.toFixed(1)} s, ${r.executions} workflow executions, ` +
      `${r.cpus} CPUs (load ${r.loadAverage.map((l) => l.toFixed(1)).join(' ')}), dev server ${r.server}:`,
    `  largest history          ${String(h.historyLength).padStart(8)} events   goal ≤ ${HISTORY_GOAL}   ${mark(h.historyLength <= HISTORY_GOAL)}   (${h.workflowId}, ${h.historySizeBytes === null ? '?' : (h.historySizeBytes / 1024).toFixed(0)} KiB; largest run execution ${r.largestRunHistory.historyLength})`,
    `  shard stages per second  ${r.shardStagesPerSecond.toFixed(1).padStart(8)} /s       goal ≥ ${THROUGHPUT_GOAL}      ${mark(r.shardStagesPerSecond >= THROUGHPUT_GOAL)}   (annotate phase ${r.phaseRates.annotate.toFixed(0)}/s, select phase ${r.phaseRates.select.toFixed(0)}/s; whole seconds: median ${r.perSecondMedian}, best ${r.perSecondBest})`,
    `  CPU per shard stage      worker ${r.cpuMsPerShardStage.worker.toFixed(2)} ms + server ${r.cpuMsPerShardStage.server.toFixed(2)} ms ` +
      `(${r.cpuSeconds.worker.toFixed(1)} + ${r.cpuSeconds.server.toFixed(1)} CPU s): ≈ ${capacity(r).toFixed(0)}/s if the ${r.cpus} CPUs were the bench's alone`,
    `  worker peak memory       ${r.workerPeakMiB.toFixed(0).padStart(8)} MiB      (VmHWM, includes bundling the workflows at start; during the run ${r.workerRunPeakMiB.toFixed(0)} MiB)`,
    `  dev server peak memory   ${r.serverPeakMiB.toFixed(0).padStart(8)} MiB      (VmHWM)`,
    `  last stage → run end     ${r.tailSeconds.toFixed(2).padStart(8)} s        (workflow side: last page → end ${fmt(r.tail.lastPageToRunEnd)} s, finalize activity ${fmt(r.tail.finalizeActivity)} s; thresholds activity ${fmt(r.tail.thresholdsActivity)} s — both simulated)`,
  ];
  if (r.realTail) {
    const rt = r.realTail;
    const x = rt.extrapolated;
    lines.push(
      `  real thresholds + finalize (lib/pipeline over tiny real shards of ${rt.samplesPerShard} samples, local files): ` +
        rt.measured.map((m) => `${m.shards} shards ${m.thresholdsSeconds.toFixed(2)} + ${m.finalizeSeconds.toFixed(2)} s`).join(', '),
      `    per shard (linear fit): thresholds ${rt.fit.thresholds.perShardMs.toFixed(1)} ms (R² ${rt.fit.thresholds.r2.toFixed(2)}), ` +
        `finalize ${rt.fit.finalize.perShardMs.toFixed(1)} ms (R² ${rt.fit.finalize.r2.toFixed(2)}) → at ${x.shards} shards ≈ ${secs(x.thresholdsSeconds)} + ${secs(x.finalizeSeconds)} ` +
        `(extrapolated, sample volume not included; a low R² or n/a: the machine's noise exceeds the per-shard cost at these sizes)`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Shard stages per second the measured CPU cost allows when the machine's CPUs serve only the worker and server. */
function capacity(r: ScaleResult): number {
  return (r.cpus * 1000) / (r.cpuMsPerShardStage.worker + r.cpuMsPerShardStage.server);
}

function secs(v: number | null): string {
  return v === null ? 'n/a' : `${v.toFixed(0)} s`;
}

function fmt(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(2);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
