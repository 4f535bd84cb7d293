/**
 * The fault tests' fleet, all real: a Temporal dev server on a SQLite file at fixed ports (so it can be SIGKILLed
 * and restarted in place), `recaption worker` processes whose JSON log lines are followed as they come (which
 * shard stages each one runs right now — that is how a kill is aimed mid-stage), the `recaption` CLI as a child
 * process, and a run's outputs reduced to what must be byte-identical between a faulted and a fault-free run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { stringify } from 'yaml';
import { freePort, startDevServer, type DevServer } from '../../infra/dev-server';
import { RunLayout } from '../../lib/run/layout';
import { DECISION_TABLE } from '../../lib/run/tables';
import { SHARD_STAGES, type ShardStage } from '../../lib/run/stages';
import { storageFor } from '../../lib/storage';
import { BIN, type CliResult } from '../helpers/cli';
import { TINY_CAPTIONER, TINY_CLIP } from '../helpers/paths';

export const RUN = 'faults';
export const QUEUES = { gpu: 'gpu-faults', cpu: 'cpu-faults' };

let waiting = true;
/** Make every pending `until` give up (afterAll: a failed test's waits must not keep jest running). */
export function stopWaiting(): void {
  waiting = false;
}

/** Poll `probe` every `everyMs` until it returns a value (not undefined/false); fail after `timeoutMs` naming `what`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 480_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline || !waiting) throw new Error(`${waiting ? 'timed out' : 'gave up'} waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A dev server on a SQLite file and fixed ports: kill() is SIGKILL, restart() brings it back on the same file. */
export class Server {
  private dev!: DevServer;
  private constructor(
    readonly dbFile: string,
    readonly port: number,
    readonly uiPort: number,
  ) {}

  static async start(dir: string): Promise<Server> {
    const s = new Server(path.join(dir, 'temporal.db'), await freePort(), await freePort());
    await s.restart();
    return s;
  }

  get env(): NodeJS.ProcessEnv {
    return { TEMPORAL_ADDRESS: this.dev.address, TEMPORAL_NAMESPACE: this.dev.namespace, TEMPORAL_UI_URL: this.dev.uiUrl };
  }
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    this.dev = await startDevServer({ dbFile: this.dbFile, port: this.port, uiPort: this.uiPort });
  }

  async kill(): Promise<void> {
    await killAndWait(this.dev.process, 'SIGKILL');
  }

  stop(): Promise<void> {
    return this.dev?.stop() ?? Promise.resolve();
  }
}

export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const gone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
  child.kill(signal);
  return gone;
}

/** One stage execution as a worker's log tells it. */
export interface StageEvent {
  at: number;
  stage: ShardStage;
  shard: string;
  what: 'started' | 'done' | 'failed';
  attempt?: number;
  /** done: the stage found its commit marker and did nothing. */
  skipped?: boolean;
}

/** A `recaption worker` process, its stage events and what it is running now. */
export class WorkerProcess {
  readonly events: StageEvent[] = [];
  /** `stage/shard` → when it started, for stages started and not yet done or failed. */
  readonly running = new Map<string, number>();
  log = '';
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private listeners = new Set<(e: StageEvent) => void>();

  private constructor(
    readonly name: string,
    readonly queues: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let partial = '';
    const onData = (d: Buffer) => {
      const text = partial + d.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.onLine(line);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  }

  /**
   * Start a worker on the fault tests' queues (`queues`: gpu, cpu or both), a GPU one with the run's models loaded
   * at start; resolves once it polls.
   */
  static async start(name: string, env: NodeJS.ProcessEnv, configFile: string, queues: string, extraArgs: string[] = []): Promise<WorkerProcess> {
    // Its whole log next to the run config, for a failed test's post-mortem.
    const logFile = path.join(path.dirname(configFile), `${name}.log`);
    const models = queues.includes('gpu') ? ['--config', configFile] : [];
    const args = ['worker', '--queues', queues, '--gpu-queue', QUEUES.gpu, '--cpu-queue', QUEUES.cpu, ...models, '--log-format', 'json', '--log-level', 'INFO', '--shutdown-grace', '1s', ...extraArgs];
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const w = new WorkerProcess(name, queues, child, logFile);
    await until(
      `worker ${name} to poll`,
      () => {
        if (!w.alive) throw new Error(`worker ${name} exited at start (${w.child.exitCode ?? w.child.signalCode}):\n${w.log.slice(-3000)}`);
        return w.log.includes('recaption worker:');
      },
      300_000,
      50,
    );
    return w;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stage executions this worker ran that did work (not `skipped`), by stage and shard. */
  computed(stage: ShardStage): string[] {
    return this.events.filter((e) => e.stage === stage && e.what === 'done' && !e.skipped).map((e) => e.shard);
  }

  onStage(fn: (e: StageEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL') {
    return killAndWait(this.child, signal);
  }

  private onLine(line: string): void {
    this.log = (this.log + line + '\n').slice(-200_000);
    appendFileSync(this.logFile, line + '\n');
    if (!line.startsWith('{')) return;
    let o: { message?: string; stage?: string; shard?: string; attempt?: number; skipped?: boolean; level?: string };
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    const stage = o.stage as ShardStage | undefined;
    if (!stage || !SHARD_STAGES.includes(stage) || typeof o.shard !== 'string' || !o.message) return;
    const what = o.message.startsWith(`${stage} ${o.shard} started`)
      ? 'started'
      : o.message.startsWith(`${stage} ${o.shard} done`)
        ? 'done'
        : o.message.startsWith(`${stage} ${o.shard} failed`)
          ? 'failed'
          : undefined;
    if (!what) return;
    const e: StageEvent = { at: Date.now(), stage, shard: o.shard, what, ...(o.attempt !== undefined ? { attempt: o.attempt } : {}), ...(what === 'done' ? { skipped: o.skipped === true } : {}) };
    this.events.push(e);
    const key = `${stage}/${o.shard}`;
    if (what === 'started') this.running.set(key, e.at);
    else this.running.delete(key);
    for (const fn of this.listeners) fn(e);
  }
}

/** The `recaption` CLI as a child process that a test can also kill. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/**
 * The run config every fault test uses (same run name in every output folder, so outputs are byte-comparable:
 * the run's name is in each written sample's provenance). Small batches and chunks so that a shard's annotate stage
 * commits several chunks — kills land between them.
 */
export function writeRunConfig(dir: string, input: string, heartbeatTimeout = '10s'): { file: string; out: string; runUri: string } {
  const out = path.join(dir, 'out');
  const file = path.join(dir, 'run.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    stringify({
      run: { name: RUN },
      input: { uri: input },
      output: { uri: out },
      strategy: { preset: 'raw30-synthetic70-filtered' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 16 },
      score: { batchSize: 4 },
      annotations: { chunkSize: 8 },
      // A killed worker's activities are retried after this: short, yet far longer than a batch takes even on a
      // loaded 2-core machine (a stage heartbeats once per batch).
      temporal: { gpuTaskQueue: QUEUES.gpu, cpuTaskQueue: QUEUES.cpu, heartbeatTimeout, pageSize: 4, maxConcurrentShards: 4 },
    }),
  );
  return { file, out, runUri: RunLayout.of(out, RUN).runUri };
}

/** Shard names whose `stage` marker is committed in the run folder. */
export function committedShards(runUri: string, stage: ShardStage): string[] {
  const dir = path.join(runUri, 'work', stage);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.done.json'))
    .map((f) => f.slice(0, -'.done.json'.length))
    .sort();
}

/** Chunk files committed so far for `shard` in every annotation group being computed (none: 0). */
export function committedChunks(out: string, shard: string): number {
  const root = path.join(out, '_annotations');
  if (!existsSync(root)) return 0;
  let least = Infinity;
  for (const group of readdirSync(root)) {
    for (const key of readdirSync(path.join(root, group))) {
      const dir = readdirSync(path.join(root, group, key)).find((d) => d.startsWith(`${shard}.`) && d.endsWith('.chunks'));
      const n = dir ? readdirSync(path.join(root, group, key, dir)).filter((f) => f.endsWith('.parquet') && !f.endsWith('.candidates.parquet')).length : 0;
      least = Math.min(least, n);
    }
  }
  return least === Infinity ? 0 : least;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Member names of a tar, in order. */
async function tarMembers(bytes: Buffer): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      names.push(header.name);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from(bytes).pipe(extract);
  await done;
  return names;
}

/**
 * What must be identical between a faulted run and a fault-free one: every output tar's bytes and every decision
 * (uid, key, kept, source, chosen caption, raw and synthetic caption, both CLIP scores, reason) per shard, the kept
 * uids, the thresholds and the subset. Also checks that no output tar holds a member twice and no uid is kept twice.
 */
export async function runOutputs(runUri: string) {
  const layout = new RunLayout(runUri);
  const storage = storageFor(runUri);
  const shards = readdirSync(layout.outputShardsDir).filter((f) => f.endsWith('.tar')).map((f) => f.slice(0, -4)).sort();
  const tars: Record<string, string> = {};
  const decisions: Record<string, string> = {};
  const keptUids: string[] = [];
  const duplicates: string[] = [];
  const members = new Set<string>();
  for (const shard of shards) {
    const bytes = await readFile(layout.outputShard(shard));
    tars[shard] = sha256(bytes);
    for (const m of await tarMembers(bytes)) {
      if (members.has(m)) duplicates.push(`${shard}: ${m}`);
      members.add(m);
    }
    const rows = await DECISION_TABLE.read(storage, layout.decisions(shard));
    decisions[shard] = sha256(Buffer.from(JSON.stringify(rows)));
    for (const r of rows) if (r.kept) keptUids.push(r.uid ?? `key:${r.key}`);
  }
  const keptSet = new Set(keptUids);
  if (keptSet.size !== keptUids.length) duplicates.push(`${keptUids.length - keptSet.size} uid(s) kept twice`);
  return {
    shards,
    tars,
    decisions,
    keptUids: [...keptSet].sort(),
    duplicates,
    thresholds: JSON.parse(await readFile(layout.thresholds, 'utf8')) as unknown,
    subset: sha256(await readFile(layout.subset)),
  };
}

/** The done-marker of every committed shard stage: file content and mtime, to show later that none was rewritten. */
export async function markerSnapshot(runUri: string): Promise<Record<string, { mtimeMs: number; content: string }>> {
  const out: Record<string, { mtimeMs: number; content: string }> = {};
  for (const stage of SHARD_STAGES) {
    for (const shard of committedShards(runUri, stage)) {
      const file = new RunLayout(runUri).done(stage, shard);
      out[`${stage}/${shard}`] = { mtimeMs: (await stat(file)).mtimeMs, content: await readFile(file, 'utf8') };
    }
  }
  return out;
}
