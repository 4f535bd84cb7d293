/**
 * Fault tests (`npm run test:faults`, run by .ci/run): real `recaption worker` processes (GPU-queue and CPU-queue
 * ones, as a fleet runs them), the real CLI and a real dev server on a SQLite file. A fault-free run is the
 * reference; then the same config runs (same run name, another output folder) while:
 *   1. GPU workers are SIGKILLed mid-annotate (a chunk of the shard committed, its marker not) and CPU workers
 *      mid-select/write, three times each, aimed by following the workers' JSON logs; a replacement starts each time;
 *   2. the dev server is SIGKILLed mid-annotate and again mid-select, and restarted on the same file and ports;
 *   3. everything (server, workers, CLI) is SIGKILLed mid-select, and after a restart `recaption resume` finishes it.
 * Each faulted run's output tars, decisions (kept uids, chosen captions, scores), thresholds and subset are
 * byte-identical to the reference's, no tar holds a sample twice, and (3) shows that no committed stage ran again:
 * its markers untouched, the resumed execution's own counters (`skipped`) and the workers' logs of stage executions.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { StageSummary } from '../../lib/pipeline/checkpoint';
import { RunLayout } from '../../lib/run/layout';
import { SHARD_STAGES, type ShardStage } from '../../lib/run/stages';
import { generateSampleData } from '../../lib/sampledata';
import { jsonEvents } from '../helpers/cli';
import { tempDir } from '../helpers/paths';
import {
  RUN,
  Server,
  WorkerProcess,
  committedChunks,
  committedShards,
  killAndWait,
  markerSnapshot,
  runOutputs,
  spawnCli,
  stopWaiting,
  until,
  writeRunConfig,
} from './fleet';

const SHARDS = 12;
const PER_SHARD = 32;
const CHUNK = 8; // annotations.chunkSize in writeRunConfig

let dir: string;
let passed = 0;
const TESTS = 3;
let input: string;
let server: Server;
let reference: Awaited<ReturnType<typeof runOutputs>>;
const fleet: WorkerProcess[] = [];
const clis: Array<ReturnType<typeof spawnCli>> = [];
const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[faults +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);

type Queues = 'gpu' | 'cpu';
let started = 0;
// Workers serve every run of this file (one set of models); the reference's config is the one they check at start.
let modelsConfig: string;
async function startWorker(queues: Queues): Promise<WorkerProcess> {
  const w = await WorkerProcess.start(`${queues}${++started}`, server.env, modelsConfig, queues);
  fleet.push(w);
  return w;
}
const startFleet = (gpu: number, cpu: number) =>
  Promise.all([...Array.from({ length: gpu }, () => startWorker('gpu')), ...Array.from({ length: cpu }, () => startWorker('cpu'))]);
const alive = () => fleet.filter((w) => w.alive);
const aliveOn = (queues: Queues) => alive().filter((w) => w.queues === queues);

function cli(args: string[]): ReturnType<typeof spawnCli> {
  const c = spawnCli(args, server.env);
  clis.push(c);
  return c;
}

/** SIGTERM every live worker and expect a clean exit (0): nothing was running. */
async function stopWorkers(): Promise<void> {
  const results = await Promise.all(alive().map(async (w) => ({ worker: w.name, exit: await w.kill('SIGTERM') })));
  for (const r of results) expect(r).toEqual({ worker: r.worker, exit: { code: 0, signal: null } });
}

/** After a failed test: nothing of it may run on into the next one. */
async function killAll(): Promise<void> {
  await Promise.all([...alive().map((w) => w.kill('SIGKILL')), ...clis.filter((c) => c.child.exitCode === null && c.child.signalCode === null).map((c) => killAndWait(c.child, 'SIGKILL'))]);
}

/** The run's summary from `recaption run|resume --json` (the run workflow's result, with progress); exit 0. */
async function finished(run: ReturnType<typeof spawnCli>) {
  const r = await run.done;
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  const done = jsonEvents(r.stdout).find((e) => e.event === 'done');
  return done!.summary as { samples: number; kept: number; dropped: Record<string, number>; failedShards: number; progress: Record<ShardStage, { done: number; skipped: number; failed: number }> };
}

function expectAccounted(summary: Awaited<ReturnType<typeof finished>>): void {
  const dropped = Object.values(summary.dropped).reduce((a, b) => a + b, 0);
  expect({ samples: summary.samples, accounted: summary.kept + dropped, failedShards: summary.failedShards }).toEqual({
    samples: SHARDS * PER_SHARD,
    accounted: SHARDS * PER_SHARD,
    failedShards: 0,
  });
}

async function expectSameOutputs(runUri: string): Promise<void> {
  const outputs = await runOutputs(runUri);
  expect(outputs.duplicates).toEqual([]);
  expect(outputs.keptUids).toEqual(reference.keptUids);
  expect(outputs).toEqual(reference);
}

beforeAll(async () => {
  dir = tempDir('recaption-faults-');
  input = path.join(dir, 'shards');
  await generateSampleData({ out: input, shards: SHARDS, perShard: PER_SHARD, seed: 11, corrupt: 1 });
  server = await Server.start(dir);
  // The reference: the same config, no fault.
  const cfg = writeRunConfig(path.join(dir, 'reference'), input);
  modelsConfig = cfg.file;
  await startFleet(1, 1);
  const summary = await finished(cli(['run', '--config', cfg.file, '--json']));
  expectAccounted(summary);
  reference = await runOutputs(cfg.runUri);
  expect(reference.duplicates).toEqual([]);
  expect(reference.keptUids.length).toBeGreaterThan(0);
  expect(reference.shards).toHaveLength(SHARDS);
  log(`reference run: ${reference.keptUids.length} of ${SHARDS * PER_SHARD} samples kept`);
}, 600_000);

// The fleet carries on from test to test; after a failed test nothing of it may run on into the next.
let ran = 0;
afterEach(async () => {
  if (passed < ++ran) await killAll();
});

afterAll(async () => {
  stopWaiting();
  await killAll();
  await server?.stop();
  // Kept after a failure: the run folders and every worker's log (<case>/<worker>.log).
  if (dir && passed === TESTS) await rm(dir, { recursive: true, force: true });
  else if (dir) process.stderr.write(`fault test files kept in ${dir}\n`);
});

it('workers SIGKILLed mid-annotate and mid-select/write, three times each: same outputs, nothing lost or doubled', async () => {
  const cfg = writeRunConfig(path.join(dir, 'worker-kills'), input);
  const layout = new RunLayout(cfg.runUri);
  await startFleet(2 - aliveOn('gpu').length, 2 - aliveOn('cpu').length);
  const run = cli(['run', '--config', cfg.file, '--json']);
  const replacements: Array<Promise<WorkerProcess>> = [];

  // Mid-annotate: a GPU worker whose log says it runs annotate on a shard of which a chunk is committed (in every
  // group) while the shard's marker is not. Each time another shard; a replacement GPU worker starts at once.
  const annotateKills: Array<{ worker: string; shard: string; chunks: number }> = [];
  const aimed = new Set<string>();
  while (annotateKills.length < 3) {
    const target = await until('a GPU worker mid-annotate with a committed chunk', () => {
      if (committedShards(cfg.runUri, 'annotate').length === SHARDS) throw new Error(`every shard was annotated after ${annotateKills.length} annotate kill(s)`);
      for (const w of alive()) {
        for (const key of w.running.keys()) {
          const [stage, shard] = key.split('/') as [ShardStage, string];
          if (stage !== 'annotate' || aimed.has(shard)) continue;
          const chunks = committedChunks(cfg.out, shard);
          if (chunks >= 1 && !committedShards(cfg.runUri, 'annotate').includes(shard)) return { w, shard, chunks };
        }
      }
      return undefined;
    });
    aimed.add(target.shard);
    await target.w.kill('SIGKILL');
    replacements.push(startWorker('gpu'));
    // Landed mid-stage if the shard's marker is still absent now that the process is gone.
    const landed = !committedShards(cfg.runUri, 'annotate').includes(target.shard);
    if (landed) annotateKills.push({ worker: target.w.name, shard: target.shard, chunks: target.chunks });
    log(`SIGKILL ${target.w.name} ${landed ? 'mid-' : 'just after its '}annotate of ${target.shard} (${target.chunks} chunk(s) committed)`);
  }

  // Mid-select/write: a CPU worker killed the moment its log says it started one; a replacement starts at once.
  // A killed stage comes back as a retry, so there is always another start to aim at until three have landed.
  const selectKills: Array<{ worker: string; stage: ShardStage; shard: string }> = [];
  let aimedSelect = 0;
  await new Promise<void>((resolve, reject) => {
    const killing = new Set<WorkerProcess>();
    const arm = (w: WorkerProcess) =>
      w.onStage((e) => {
        if (e.what !== 'started' || e.stage === 'annotate' || killing.has(w) || selectKills.length + killing.size >= 3) return;
        w.child.kill('SIGKILL');
        killing.add(w);
        aimedSelect++;
        replacements.push(startWorker('cpu').then((n) => (arm(n), n)));
        void w.exit.then(() => {
          killing.delete(w);
          const landed = !committedShards(cfg.runUri, e.stage).includes(e.shard);
          if (landed) selectKills.push({ worker: w.name, stage: e.stage, shard: e.shard });
          log(`SIGKILL ${w.name} ${landed ? 'mid-' : 'just after its '}${e.stage} of ${e.shard}`);
          if (selectKills.length >= 3) resolve();
        });
      });
    fleet.filter((w) => w.queues === 'cpu').forEach(arm);
    void run.done.then(() => reject(new Error(`the run ended after ${selectKills.length} select/write kill(s) landed of ${aimedSelect}`)));
  });

  const summary = await finished(run);
  await Promise.all(replacements);
  expectAccounted(summary);
  await expectSameOutputs(cfg.runUri);
  // Each killed annotate attempt lost at most its uncommitted chunk: the shard's last attempt resumed after the
  // chunks committed before the kill.
  for (const k of annotateKills) {
    const marker = JSON.parse(readFileSync(layout.done('annotate', k.shard), 'utf8')) as StageSummary;
    expect({ shard: k.shard, resumedAfterCommittedChunks: marker.counts!.resumedAt! >= k.chunks * CHUNK }).toEqual({ shard: k.shard, resumedAfterCommittedChunks: true });
  }
  log(`worker kills landed: ${annotateKills.length} mid-annotate, ${selectKills.length} mid-select/write (${selectKills.map((k) => k.stage).join(', ')}; ${aimedSelect} aimed)`);
  expect(annotateKills.length).toBe(3);
  expect(selectKills.length).toBe(3);
  passed++;
}, 600_000);

it('the dev server SIGKILLed mid-annotate and mid-select, restarted on the same file: workers reconnect, same outputs', async () => {
  const cfg = writeRunConfig(path.join(dir, 'server-kills'), input);
  await startFleet(1 - Math.min(1, aliveOn('gpu').length), 1 - Math.min(1, aliveOn('cpu').length));
  const workers = alive();
  const run = cli(['run', '--config', cfg.file, '--json']);
  const kills: string[] = [];
  const killAndRestart = async (when: string) => {
    await server.kill();
    kills.push(`${when} (${SHARD_STAGES.map((s) => `${s} ${committedShards(cfg.runUri, s).length}`).join(', ')} of ${SHARDS} committed)`);
    await server.restart();
    log(`dev server SIGKILLed and restarted mid-${when}`);
  };

  await until('a third of the shards annotated', () => committedShards(cfg.runUri, 'annotate').length >= SHARDS / 3);
  await killAndRestart('annotate');
  await until('select under way', () => committedShards(cfg.runUri, 'select').length >= 1 && committedShards(cfg.runUri, 'write').length < SHARDS);
  await killAndRestart('select');

  const summary = await finished(run);
  expectAccounted(summary);
  await expectSameOutputs(cfg.runUri);
  // The same worker processes carried the run through both restarts.
  expect(workers.map((w) => [w.name, w.alive])).toEqual(workers.map((w) => [w.name, true]));
  log(`server kills: ${kills.join('; ')}`);
  passed++;
}, 600_000);

it('everything SIGKILLed mid-select, restarted, then `recaption resume`: completes, no committed stage runs again', async () => {
  const cfg = writeRunConfig(path.join(dir, 'kill-all'), input);
  await startFleet(1 - Math.min(1, aliveOn('gpu').length), 1 - Math.min(1, aliveOn('cpu').length));
  const before = alive();
  const run = cli(['run', '--config', cfg.file, '--json']);
  // The moment the CPU worker logs a select or write start once a quarter of the shards are selected: the server,
  // the workers and the CLI at once.
  const killed = await new Promise<{ stage: ShardStage; shard: string }>((resolve, reject) => {
    for (const cpu of before.filter((w) => w.queues === 'cpu')) {
      cpu.onStage((e) => {
        if (e.what !== 'started' || e.stage === 'annotate' || committedShards(cfg.runUri, 'select').length < SHARDS / 4) return;
        resolve(e);
      });
    }
    void run.done.then(() => reject(new Error('the run ended before a quarter of the shards were selected')));
  }).then(async (e) => {
    await Promise.all([server.kill(), ...before.map((w) => w.kill('SIGKILL')), killAndWait(run.child, 'SIGKILL')]);
    return e;
  });
  const committed = await markerSnapshot(cfg.runUri);
  const committedBy = Object.fromEntries(SHARD_STAGES.map((s) => [s, committedShards(cfg.runUri, s)])) as Record<ShardStage, string[]>;
  const mid = committedBy[killed.stage].includes(killed.shard) ? 'just after' : 'mid';
  log(`SIGKILLed server, workers and CLI ${mid}-${killed.stage} of ${killed.shard}: committed ${SHARD_STAGES.map((s) => `${s} ${committedBy[s].length}`).join(', ')} of ${SHARDS}`);
  expect(committedBy.annotate).toHaveLength(SHARDS);
  expect(committedBy.select.length).toBeGreaterThanOrEqual(SHARDS / 4);

  await server.restart();
  // The execution that was running when everything died is still open on the restarted server (its history is in
  // the SQLite file), and `resume` is for a closed run: it is closed first, as an operator closes an orphaned run,
  // before any worker polls again.
  const connection = await Connection.connect({ address: server.address });
  try {
    await new Client({ connection }).workflow.getHandle(`recaption-run-${RUN}`).terminate('fault test: everything was killed');
  } finally {
    await connection.close();
  }
  const after = await startFleet(1, 1);
  const resumed = cli(['resume', RUN, '--json']);
  const summary = await finished(resumed);
  expectAccounted(summary);
  await expectSameOutputs(cfg.runUri);

  // resume said what it found committed...
  const found = jsonEvents((await resumed.done).stdout).find((e) => e.event === 'resume') as { committed: { stages: Record<ShardStage, number> } } | undefined;
  expect(found?.committed.stages).toEqual(Object.fromEntries(SHARD_STAGES.map((s) => [s, committedBy[s].length])));
  // ...no committed marker was rewritten...
  const markers = await markerSnapshot(cfg.runUri);
  for (const [key, m] of Object.entries(committed)) expect({ key, marker: markers[key] }).toEqual({ key, marker: m });
  // ...the resumed execution counted every committed shard stage as skipped, and did the rest...
  for (const stage of SHARD_STAGES) {
    expect({ stage, ...summary.progress[stage] }).toEqual({ stage, done: SHARDS, skipped: committedBy[stage].length, failed: 0 });
  }
  // ...and the workers' logs agree: the stage executions that did work were the uncommitted ones, each once.
  for (const stage of SHARD_STAGES) {
    const computed = after.flatMap((w) => w.computed(stage)).sort();
    const expected = Array.from({ length: SHARDS }, (_, i) => String(i).padStart(8, '0')).filter((s) => !committedBy[stage].includes(s));
    expect({ stage, computed }).toEqual({ stage, computed: expected });
  }
  log(`resume: ${SHARD_STAGES.map((s) => `${s} ${summary.progress[s].skipped} skipped, ${SHARDS - summary.progress[s].skipped} computed`).join('; ')}`);
  await stopWorkers();
  passed++;
}, 600_000);
