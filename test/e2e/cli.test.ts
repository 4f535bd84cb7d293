/**
 * Process-level: the real `recaption` command and real worker processes against a real dev server
 * (started by infra/dev-server like `recaption dev-server` does). Includes a worker killed with SIGKILL
 * mid-run: the run finishes on a fresh worker, and committed stages are not redone.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { startDevServer, type DevServer } from '../../infra/dev-server';
import { annotateShard } from '../../lib/pipeline/annotate-stage';
import type { StageSummary } from '../../lib/pipeline/checkpoint';
import { planRun } from '../../lib/pipeline/plan-stage';
import { StageModels } from '../../lib/pipeline/stage-models';
import { RunLayout } from '../../lib/run/layout';
import type { RunPlan } from '../../lib/run/plan';
import { generateSampleData } from '../../lib/sampledata';
import { annotationFile } from '../helpers/annotations';
import { storageFor } from '../../lib/storage';
import { exited, runCli, startWorkerProcess } from '../helpers/cli';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';

let server: DevServer;
let env: NodeJS.ProcessEnv;
let input: string;

beforeAll(async () => {
  server = await startDevServer();
  env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, TEMPORAL_UI_URL: server.uiUrl };
  input = path.join(tempDir(), 'shards');
  const r = await runCli(['sample-data', '--out', input, '--shards', '3', '--per-shard', '6', '--corrupt', '1']);
  expect(r.code).toBe(0);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

function writeConfig(name: string, extra: object = {}): { file: string; out: string } {
  const dir = tempDir();
  const out = path.join(dir, 'out');
  const file = path.join(dir, 'run.yaml');
  writeFileSync(
    file,
    stringify({
      run: { name },
      input: { uri: input },
      output: { uri: out },
      strategy: { preset: 'raw30-synthetic70-filtered' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 10 },
      temporal: { gpuTaskQueue: `gpu-${name}`, cpuTaskQueue: `cpu-${name}`, heartbeatTimeout: '3s', pageSize: 2 },
      ...extra,
    }),
  );
  return { file, out };
}

const queueArgs = (name: string) => ['--gpu-queue', `gpu-${name}`, '--cpu-queue', `cpu-${name}`, '--shutdown-grace', '1s'];

describe('recaption CLI', () => {
  it('refuses an invalid config before anything starts, naming each bad field', async () => {
    const { file } = writeConfig('bad', { strategy: { preset: 'best-ever' }, caption: { topK: -1 } });
    const r = await runCli(['run', '--config', file], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid config .*run\.yaml/);
    expect(r.stderr).toMatch(/strategy\.preset/);
    expect(r.stderr).toMatch(/caption\.topK/);
  });

  it('refuses a missing input folder with a clear message', async () => {
    const { file } = writeConfig('missing', { input: { uri: '/no/such/shards' } });
    const r = await runCli(['run', '--config', file], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('input folder /no/such/shards does not exist');
  });

  it('runs end to end with a separate worker process, then reports status', async () => {
    const { file, out } = writeConfig('cli');
    const worker = await startWorkerProcess(env, queueArgs('cli'));
    try {
      const r = await runCli(['run', '--config', file, '--json'], env);
      expect(r.code).toBe(0);
      const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(events[0].event).toBe('started');
      expect(events.some((e) => e.event === 'progress')).toBe(true);
      const done = events.find((e) => e.event === 'done');
      expect(done.summary.samples).toBe(18);
      expect(done.summary.dropped.decode_error).toBe(3);
      expect(done.uiUrl).toBe(`${server.uiUrl}/namespaces/default/workflows/recaption-run-cli`);
      expect(existsSync(path.join(out, 'cli', 'manifest.json'))).toBe(true);

      const s = await runCli(['status', 'cli'], env);
      expect(s.code).toBe(0);
      expect(s.stdout).toMatch(/COMPLETED/);
      expect(s.stdout).toMatch(/write\s+3\/3 shards/);
    } finally {
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
    }
  });

  it('survives a worker killed with SIGKILL mid-run: a new worker finishes it without redoing committed stages', async () => {
    const { file, out } = writeConfig('crash');
    const layout = RunLayout.of(out, 'crash');
    const storage = storageFor(out);
    let worker = await startWorkerProcess(env, queueArgs('crash'));
    const run = runCli(['run', '--config', file, '--json'], env);
    const deadline = Date.now() + 120_000;
    while (!(await storage.exists(layout.done('annotate', '00000000')))) {
      if (Date.now() > deadline) throw new Error('no annotation committed');
      await new Promise((r) => setTimeout(r, 100));
    }
    worker.kill('SIGKILL');
    await exited(worker);
    const firstAnnotate = await readFile(layout.done('annotate', '00000000'), 'utf8');

    worker = await startWorkerProcess(env, queueArgs('crash'));
    try {
      const r = await run;
      expect(r.code).toBe(0);
      const done = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'done');
      expect(done.summary.samples).toBe(18);
      expect(done.summary.shards).toBe(3);
      // the shard annotated before the crash was committed once and not rewritten
      expect(await readFile(layout.done('annotate', '00000000'), 'utf8')).toBe(firstAnnotate);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
  });

  it('plans a run before it runs: annotations needed and reused, stages, GPU time stated or measured', async () => {
    const { file } = writeConfig('plan');
    const json = async (args: string[]) => {
      const r = await runCli(args, env);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    const before = await json(['plan', '--config', file, '--json', '--images-per-second', '9']);
    expect(before.groups.map((g: { group: string; committed: number }) => [g.group, g.committed])).toEqual([
      ['samples', 0],
      ['captions', 0],
      ['rawScores', 0],
      ['syntheticScores', 0],
    ]);
    // 3 shards of 6 samples (img2dataset's _stats.json): 18 images at 9/s
    expect(before).toMatchObject({ shards: 3, shardsToAnnotate: 3, samplesToAnnotate: 18, samplesEstimated: false, gpuSeconds: 2 });
    // --measure annotates one shard here and times it; `run --dry-run` then finds it reused
    const measured = await json(['run', '--config', file, '--dry-run', '--json', '--measure']);
    expect(measured.throughput.source).toMatch(/measured on shard 00000000 on cpu/);
    expect(measured.throughput.imagesPerSecond).toBeGreaterThan(0);
    expect(measured).toMatchObject({ shardsToAnnotate: 2, samplesToAnnotate: 12 });
    const text = await runCli(['plan', '--config', file], env);
    expect(text.stdout).toMatch(/captions\s+\w{16}\s+reused 1\/3 shards/);
    expect(text.stdout).toMatch(/annotate \(GPU\) on 2 shard\(s\), ~12 images/);
  });

  it('sweeps presets and fractions over one annotation pass and compares the runs', async () => {
    const { file } = writeConfig('sw');
    const worker = await startWorkerProcess(env, queueArgs('sw'));
    try {
      const r = await runCli(['sweep', '--config', file, '--presets', 'raw-top30,synthetic', '--fractions', '0.2,0.4', '--json'], env);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      // the annotating run (the one that reads most) first
      expect(events[0]).toEqual({ event: 'sweep', runs: ['sw-mix-threshold-f0.2', 'sw-raw-top30', 'sw-synthetic', 'sw-mix-threshold-f0.4'] });
      const comparison = events.find((e) => e.event === 'comparison').comparison;
      expect(comparison.runs).toHaveLength(4);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
  });

  it('resumes a SIGKILLed annotate from its last committed chunk, with output identical to an uninterrupted one', async () => {
    const big = path.join(tempDir(), 'big');
    await generateSampleData({ out: big, shards: 1, perShard: 160, seed: 5, corrupt: 2 });
    const chunked = { input: { uri: big }, annotations: { chunkSize: 8 }, score: { batchSize: 4 }, caption: { batchSize: 4, maxLength: 16 } };
    const { file, out } = writeConfig('chunks', chunked);
    const layout = RunLayout.of(out, 'chunks');
    let worker = await startWorkerProcess(env, queueArgs('chunks'));
    const run = runCli(['run', '--config', file, '--json'], env);
    // Kill the worker as soon as a chunk of the shard is committed in every group it computes: samples, captions,
    // raw and synthetic scores (the shard takes seconds, a poll 20 ms).
    const chunkFiles = async () => (await storageFor(out).list(path.join(out, '_annotations'))).filter((u) => u.includes('.chunks/'));
    const chunksCommitted = async () => (await chunkFiles()).length;
    const groupsWithChunks = async () => new Set((await chunkFiles()).map((u) => path.relative(path.join(out, '_annotations'), u).split(path.sep)[0])).size;
    const deadline = Date.now() + 120_000;
    while ((await groupsWithChunks()) < 4) {
      if (Date.now() > deadline) throw new Error('no chunk committed');
      await new Promise((r) => setTimeout(r, 20));
    }
    worker.kill('SIGKILL');
    await exited(worker);
    expect(await storageFor(out).exists(layout.done('annotate', '00000000'))).toBe(false);

    worker = await startWorkerProcess(env, queueArgs('chunks'));
    try {
      expect((await run).code).toBe(0);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    const marker = JSON.parse(await readFile(layout.done('annotate', '00000000'), 'utf8')) as StageSummary;
    const resumedAt = marker.counts!.resumedAt!;
    // The retried attempt started after the committed chunks and decoded only the rest.
    expect(resumedAt).toBeGreaterThanOrEqual(8);
    expect(resumedAt % 8).toBe(0);
    expect(marker.counts!.decoded).toBeLessThanOrEqual(160 - resumedAt);
    expect(await chunksCommitted()).toBe(0);

    // Identical to an uninterrupted annotate of the same shard (another annotations folder).
    const plan = JSON.parse(await readFile(layout.plan, 'utf8')) as RunPlan;
    const fresh = await planRun({ ...plan.config, run: { ...plan.config.run, name: 'fresh' }, annotations: { ...plan.config.annotations, uri: path.join(tempDir(), 'ann') } });
    const models = new StageModels();
    await annotateShard(fresh, 0, (groups) => models.forAnnotate(fresh.config, groups));
    for (const group of ['samples', ...plan.annotations.compute] as const) {
      const [a, b] = [annotationFile(plan, group, 0), annotationFile(fresh, group, 0)];
      expect({ group, same: (await readFile(a)).equals(await readFile(b)) }).toEqual({ group, same: true });
    }
  });
});
