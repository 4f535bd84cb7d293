/**
 * Graceful shutdown of a real `recaption worker` process on a real dev server: SIGTERM mid-annotate makes the running
 * stage commit what it has at its next batch and fail retryably, the worker exits 0 long before its grace time, and
 * the next worker resumes at exactly the committed sample — the output equal to an uninterrupted annotate. A second
 * signal exits at once, non-zero. (Kubernetes gives pods longer than the worker's grace: test/infra/manifests.test.ts.)
 */
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { annotateShard } from '../../lib/pipeline/annotate-stage';
import type { StageSummary } from '../../lib/pipeline/checkpoint';
import { planRun } from '../../lib/pipeline/plan-stage';
import { StageModels } from '../../lib/pipeline/stage-models';
import { releaseCachedModels } from '../../lib/models/cache';
import { RunLayout } from '../../lib/run/layout';
import type { RunPlan } from '../../lib/run/plan';
import { generateSampleData } from '../../lib/sampledata';
import { annotationFile } from '../helpers/annotations';
import { tempDir } from '../helpers/paths';
import { Server, WorkerProcess, committedChunks, committedShards, spawnCli, stopWaiting, until, writeRunConfig } from './fleet';

const SAMPLES = 96;
const SHARD = '00000000';
// Far longer than the stage needs to reach its next batch: the worker must not wait it out.
const GRACE = ['--shutdown-grace', '5m'];

let dir: string;
let passed = 0;
const TESTS = 2;
let input: string;
let server: Server;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  dir = tempDir('recaption-shutdown-');
  input = path.join(dir, 'shards');
  await generateSampleData({ out: input, shards: 1, perShard: SAMPLES, seed: 5, corrupt: 2 });
  server = await Server.start(dir);
}, 120_000);

// Nothing of a test (a failed one) may run on into the next: the workers poll the same queues.
const killWorkers = () => Promise.all(workers.filter((w) => w.alive).map((w) => w.kill('SIGKILL')));
afterEach(killWorkers);

afterAll(async () => {
  stopWaiting();
  await killWorkers();
  await server?.stop();
  await releaseCachedModels();
  // Kept after a failure: the run folders and every worker's log (<case>/<worker>.log).
  if (dir && passed === TESTS) await rm(dir, { recursive: true, force: true });
  else if (dir) process.stderr.write(`fault test files kept in ${dir}\n`);
});

async function startWorker(config: string): Promise<WorkerProcess> {
  const w = await WorkerProcess.start(`w${workers.length + 1}`, server.env, config, 'gpu,cpu', GRACE);
  workers.push(w);
  return w;
}

/** Wait until `w` runs the shard's annotate stage with at least one chunk committed (of 20), and not past half. */
async function midAnnotate(w: WorkerProcess, out: string): Promise<number> {
  return until('the annotate stage with a chunk committed', () => {
    const chunks = committedChunks(out, SHARD);
    return w.running.has(`annotate/${SHARD}`) && chunks >= 1 && chunks <= SAMPLES / 8 / 2 && chunks;
  });
}

it('SIGTERM mid-annotate: the stage commits at its next batch, the worker exits 0, the next worker resumes exactly there', async () => {
  const cfg = writeRunConfig(path.join(dir, 'graceful'), input, '60s');
  const layout = new RunLayout(cfg.runUri);
  const first = await startWorker(cfg.file);
  const run = spawnCli(['run', '--config', cfg.file, '--json'], server.env);
  await midAnnotate(first, cfg.out);

  const exit = await first.kill('SIGTERM');
  expect(exit).toEqual({ code: 0, signal: null });
  expect(first.log).toMatch(/SIGTERM: shutting down/);
  // It handed the shard over: a retryable StageStopped naming the samples committed...
  const stopped = /StageStopped: annotate 00000000: worker shutting down; samples \[0, (\d+)\) committed/.exec(first.log);
  expect(stopped).not.toBeNull();
  const committedAt = Number(stopped![1]);
  // ...which are the committed chunks, ending on a batch (score.batchSize 4), mid-shard, with no marker yet.
  expect(committedAt % 4).toBe(0);
  expect(committedAt).toBeLessThan(SAMPLES);
  expect(committedShards(cfg.runUri, 'annotate')).toEqual([]);

  await startWorker(cfg.file);
  const r = await run.done;
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  const marker = JSON.parse(await readFile(layout.done('annotate', SHARD), 'utf8')) as StageSummary;
  // The next attempt started at the stopped attempt's last commit: nothing lost, nothing redone.
  expect(marker.counts!.resumedAt).toBe(committedAt);
  expect(marker.counts!.decoded).toBeLessThanOrEqual(SAMPLES - committedAt);

  // The annotations equal an uninterrupted annotate of the shard (another annotations folder, in this process).
  const plan = JSON.parse(await readFile(layout.plan, 'utf8')) as RunPlan;
  const fresh = await planRun({ ...plan.config, run: { ...plan.config.run, name: 'fresh' }, output: { uri: path.join(dir, 'fresh') }, annotations: { ...plan.config.annotations, uri: path.join(dir, 'fresh-annotations') } });
  const models = new StageModels();
  await annotateShard(fresh, 0, (groups) => models.forAnnotate(fresh.config, groups));
  for (const group of ['samples', ...plan.annotations.compute] as const) {
    const [a, b] = [annotationFile(plan, group, 0), annotationFile(fresh, group, 0)];
    expect({ group, same: (await readFile(a)).equals(await readFile(b)) }).toEqual({ group, same: true });
  }
  for (const w of workers.filter((x) => x.alive)) expect(await w.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  passed++;
}, 600_000);

it('a second signal exits at once, non-zero, without waiting for the checkpoint', async () => {
  const cfg = writeRunConfig(path.join(dir, 'twice'), input, '60s');
  const w = await startWorker(cfg.file);
  const run = spawnCli(['run', '--config', cfg.file, '--json'], server.env);
  await midAnnotate(w, cfg.out);
  w.child.kill('SIGTERM');
  await until('the worker to take the first SIGTERM', () => w.log.includes('SIGTERM: shutting down'), 60_000, 1);
  w.child.kill('SIGINT');
  // 128 + SIGINT: the immediate path (the graceful one exits 0).
  expect(await w.exit).toEqual({ code: 130, signal: null });
  expect(w.log).toMatch(/SIGINT again: exiting now/);
  expect(committedShards(cfg.runUri, 'annotate')).toEqual([]);
  run.child.kill('SIGKILL');
  await run.done;
  passed++;
}, 600_000);
