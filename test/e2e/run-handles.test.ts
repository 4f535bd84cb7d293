/**
 * The run's handles, as a user drives them: the real `recaption` command and a real worker process against a real
 * dev server. A bad shard within `run.maxFailedShards` is recorded and the run completes; past it the run stops
 * with a summary (a page stops starting shards once the budget is spent); after a fix `recaption resume` retries
 * only the failed shards — committed stages are found, not redone — and a still-bad shard is recorded again.
 * `recaption cancel` stops a run mid-stage cleanly (nothing half-written, nothing recorded as failed), `list`
 * and `status` show it, and `resume` goes on from the committed chunk. Refusals are typed (exit 2).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { startDevServer, type DevServer } from '../../infra/dev-server';
import { loadConfigFile } from '../../lib/config/load';
import type { StageSummary } from '../../lib/pipeline/checkpoint';
import { planRun } from '../../lib/pipeline/plan-stage';
import { RunLayout } from '../../lib/run/layout';
import { generateSampleData } from '../../lib/sampledata';
import { storageFor } from '../../lib/storage';
import { exited, jsonEvents, runCli, startWorkerProcess, type CliResult } from '../helpers/cli';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';
import { waitFor } from './backlog';

const QUEUES = { gpuTaskQueue: 'gpu-handles', cpuTaskQueue: 'cpu-handles' };

let server: DevServer;
let env: NodeJS.ProcessEnv;
let connection: Connection;
let client: Client;
let worker: Awaited<ReturnType<typeof startWorkerProcess>>;

beforeAll(async () => {
  server = await startDevServer();
  env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, TEMPORAL_UI_URL: server.uiUrl };
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  worker = await startWorkerProcess(env, ['--gpu-queue', QUEUES.gpuTaskQueue, '--cpu-queue', QUEUES.cpuTaskQueue, '--shutdown-grace', '2s']);
}, 120_000);

afterAll(async () => {
  if (worker) {
    worker.kill('SIGTERM');
    await exited(worker);
  }
  await connection?.close();
  await server?.stop();
});

/** A run config (raw-top30 unless given: CLIP raw scores only, the cheapest GPU stage) in a fresh folder. */
function writeConfig(name: string, input: string, extra: { run?: object; temporal?: object; [k: string]: unknown } = {}): { file: string; out: string } {
  const dir = tempDir();
  const out = path.join(dir, 'out');
  const file = path.join(dir, 'run.yaml');
  const { run, temporal, ...rest } = extra;
  writeFileSync(
    file,
    stringify({
      run: { name, ...run },
      input: { uri: input },
      output: { uri: out },
      strategy: { preset: 'raw-top30' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      score: { batchSize: 4 },
      // Above the 10 s heartbeat of a model load, so no attempt is timed out and retried (counts stay exact).
      temporal: { ...QUEUES, heartbeatTimeout: '12s', ...temporal },
      ...rest,
    }),
  );
  return { file, out };
}

const cli = (...args: string[]) => runCli(args, env);
/** Exit 0, or fail showing what the command said. */
function ok(r: CliResult): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
}
// Untyped on purpose: each test reads the fields of the event it asserts on.
const jsonLines = (r: CliResult): any[] => jsonEvents(r.stdout);
const json = (r: CliResult) => jsonLines(r).pop();
/** One run of `recaption list --json`. */
const listed = async (run: string) => {
  const r = await cli('list', '--json');
  ok(r);
  return (json(r).runs as Array<{ run: string }>).find((x) => x.run === run) as Record<string, unknown> | undefined;
};
/** The listing once the visibility store has caught up with `state` (it is eventually consistent). */
async function listedAs(run: string, state: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await listed(run);
    if (r?.state === state || Date.now() > deadline) return r!;
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Truncate a tar to half its size, keeping a copy to restore it from. */
function breakShard(tar: string): () => void {
  const backup = `${tar}.orig`;
  // `cp -p`: the same bytes and modification time (to the nanosecond), so the restored tar has the planned identity.
  execFileSync('cp', ['-p', tar, backup]);
  truncateSync(tar, Math.floor(statSync(tar).size / 2));
  return () => execFileSync('cp', ['-p', backup, tar]);
}

/** Every file under `dir` (recursively). */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('failure budget', () => {
  it('records a bad shard within the budget and completes: failures/, manifest, report, list', async () => {
    const input = path.join(tempDir(), 'in');
    await generateSampleData({ out: input, shards: 3, perShard: 4, seed: 11 });
    truncateSync(path.join(input, '00000001.tar'), 3000);
    const { file, out } = writeConfig('budget-ok', input, { run: { maxFailedShards: 1 } });
    const layout = RunLayout.of(out, 'budget-ok');

    const r = await cli('run', '--config', file, '--json');
    ok(r);
    const done = jsonLines(r).find((e) => e.event === 'done');
    expect(done.summary).toMatchObject({ shards: 3, failedShards: 1 });

    const record = JSON.parse(await readFile(layout.failure('annotate', '00000001'), 'utf8'));
    expect(record).toMatchObject({ shard: '00000001', stage: 'annotate', type: 'CorruptShard' });
    const manifest = JSON.parse(await readFile(layout.manifest, 'utf8'));
    expect(manifest.failures).toEqual([expect.objectContaining({ shard: '00000001', type: 'CorruptShard' })]);
    expect(manifest.shards.find((s: { shard: string }) => s.shard === '00000001')).toMatchObject({ failed: true, output: null });
    const report = JSON.parse(await readFile(layout.report, 'utf8'));
    expect(report.shards.failedCount).toBe(1);
    expect(report.shards.failed[0]).toMatchObject({ shard: '00000001', type: 'CorruptShard' });

    const row = await listedAs('budget-ok', 'completed');
    expect(row).toMatchObject({ state: 'completed', preset: 'raw-top30', phase: 'done', shards: { total: 3, done: 2, failed: 1 } });
    expect(row.uiUrl).toBe(`${server.uiUrl}/namespaces/default/workflows/recaption-run-budget-ok`);
    const text = await cli('list');
    expect(text.stdout).toMatch(/^RUN\s+STATE\s+PRESET/m);
    expect(text.stdout).toMatch(/budget-ok\s+completed\s+raw-top30\s+done\s+2\/3\s+1\s/);

    // Nothing to resume in a completed run: a typed refusal that says so.
    const again = await cli('resume', 'budget-ok');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/run budget-ok completed .*nothing to resume/);
    // Named by its folder, the same run: the server knows it, so the same refusal.
    const byFolder = await cli('resume', layout.runUri);
    expect(byFolder.code).toBe(2);
    expect(byFolder.stderr).toMatch(/run budget-ok completed .*nothing to resume/);
  });

  it('stops past the budget with a summary; resume after a fix retries only the failed shards', async () => {
    const input = path.join(tempDir(), 'in');
    await generateSampleData({ out: input, shards: 4, perShard: 4, seed: 12 });
    const tar = (i: number) => path.join(input, `0000000${i}.tar`);
    // Shard 1 was truncated before the run planned: corrupt for good (CorruptShard). Shards 2 and 3 break after
    // planning (InputChanged) and are restored from their copies before the resume.
    truncateSync(tar(1), 3000);
    const temporal = { pageSize: 2, maxConcurrentPages: 1, maxConcurrentShards: 1 };
    const { file, out } = writeConfig('budget-over', input, { run: { maxFailedShards: 1 }, temporal });
    const layout = RunLayout.of(out, 'budget-over');
    await planRun(await loadConfigFile(file));
    const restore = [breakShard(tar(2)), breakShard(tar(3))];

    const failed = await cli('run', '--config', file);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('FailureBudgetExceeded');
    expect(failed.stderr).toMatch(/stopped: 2 shards failed, more than run.maxFailedShards allows \(1\)/);
    expect(failed.stderr).toMatch(/annotate CorruptShard 1/);
    expect(failed.stderr).toMatch(/annotate InputChanged 1/);
    expect(failed.stderr).toContain('recaption resume budget-over');
    // The second page stopped at its first failure, past the budget: shard 3 was never started.
    const storage = storageFor(out);
    expect(await storage.exists(layout.failure('annotate', '00000002'))).toBe(true);
    expect(await storage.exists(layout.failure('annotate', '00000003'))).toBe(false);
    expect(await storage.exists(layout.done('annotate', '00000003'))).toBe(false);

    const status = json(await cli('status', 'budget-over', '--json'));
    expect(status).toMatchObject({ state: 'failed', failure: { type: 'FailureBudgetExceeded' } });
    expect(status.committed.stages).toEqual({ annotate: 1, select: 0, write: 0 });
    expect(status.committed.failures.retry.map((f: { shard: string }) => f.shard).sort()).toEqual(['00000001', '00000002']);
    expect(await listedAs('budget-over', 'failed')).toMatchObject({ state: 'failed', shards: { total: 4, failed: 2 } });

    restore.forEach((fix) => fix());
    const annotated0 = (await stat(layout.done('annotate', '00000000'))).mtimeMs;
    const resumed = await cli('resume', 'budget-over', '--json');
    ok(resumed);
    const events = jsonLines(resumed);
    // What it found before it started: shard 0 annotated, shards 1 and 2 failed (to retry).
    expect(events[0]).toMatchObject({ event: 'resume', previous: { state: 'failed' }, committed: { shards: 4, stages: { annotate: 1, select: 0, write: 0 }, thresholds: false } });
    expect(events[0].committed.retry).toMatchObject({ shards: 2, byKind: { 'annotate CorruptShard': 1, 'annotate InputChanged': 1 } });
    expect(events.find((e) => e.event === 'started')).toMatchObject({ resumed: true });
    const summary = events.find((e) => e.event === 'done').summary;
    // Shard 0's annotate was found committed (skipped, not redone); 2 and 3 ran; 1 is still bad: failed again.
    expect(summary.progress.annotate).toEqual({ done: 3, skipped: 1, failed: 1 });
    expect(summary.progress.select).toEqual({ done: 3, skipped: 0, failed: 0 });
    expect(summary.progress.write).toEqual({ done: 3, skipped: 0, failed: 0 });
    expect((await stat(layout.done('annotate', '00000000'))).mtimeMs).toBe(annotated0);
    expect(summary).toMatchObject({ shards: 4, failedShards: 1 });

    const manifest = JSON.parse(await readFile(layout.manifest, 'utf8'));
    expect(manifest.failures).toEqual([expect.objectContaining({ shard: '00000001', type: 'CorruptShard' })]);
    for (const shard of ['00000000', '00000002', '00000003']) {
      expect(manifest.shards.find((s: { shard: string }) => s.shard === shard)).toMatchObject({ output: layout.outputShard(shard), samples: 4 });
    }
    expect(await storage.exists(layout.failure('annotate', '00000002'))).toBe(false);
  });
});

describe('cancel, list, status and resume', () => {
  it('cancels a run mid-stage cleanly; status shows it; resume continues from the committed chunk', async () => {
    // Shards 0 and 2 small, shard 1 large (the same generator and seed, so its keys and uids are shard 1's): the run
    // is seen while shard 0 is done, and cancelled while it annotates shard 1.
    const input = path.join(tempDir(), 'in');
    const large = path.join(tempDir(), 'large');
    await generateSampleData({ out: input, shards: 3, perShard: 6, seed: 13 });
    await generateSampleData({ out: large, shards: 2, perShard: 1080, seed: 13 });
    for (const f of readdirSync(large).filter((n) => n.startsWith('00000001'))) copyFileSync(path.join(large, f), path.join(input, f));
    const { file, out } = writeConfig('cancel', input, {
      strategy: { preset: 'raw30-synthetic70-filtered' },
      caption: { batchSize: 4, maxLength: 16 },
      annotations: { chunkSize: 8 },
      // A cancellation reaches a stage with its next heartbeat. The SDK would send those every 0.8 × heartbeatTimeout
      // (48 s here); the worker caps that at 5 s (HEARTBEAT_THROTTLE), so shard 1 (~30 s of work on 2 cores) is still
      // under way when the cancellation reaches it — and would not be without the cap.
      temporal: { pageSize: 3, maxConcurrentShards: 1, heartbeatTimeout: '1m' },
    });
    const layout = RunLayout.of(out, 'cancel');
    const storage = storageFor(out);
    const annotations = path.join(out, '_annotations');
    const chunksOf1 = () => files(annotations).filter((f) => f.includes('00000001.') && f.includes('.chunks/'));

    const started = await cli('run', '--config', file, '--detach', '--json');
    ok(started);
    await waitFor('shard 0 annotated', () => storage.exists(layout.done('annotate', '00000000')), 120_000, 50);

    // While it runs (side by side: the run goes on meanwhile): status in JSON and text, and the listing.
    const [statusJson, text, listing] = await Promise.all([cli('status', 'cancel', '--json'), cli('status', 'cancel'), listed('cancel')]);
    const running = json(statusJson);
    expect(running).toMatchObject({ state: 'running', phase: 'annotate', shards: 3, stages: { annotate: { done: 1, skipped: 0, failed: 0 } } });
    expect(running.rate).toMatchObject({ phase: 'annotate', processedShards: 1, processedSamples: 6, remainingShards: 2 });
    expect(running.rate.samplesPerSecond).toBeGreaterThan(0);
    expect(running.rate.etaSeconds).toBeGreaterThan(0);
    expect(text.stdout).toMatch(/annotate\s+1\/3 shards \(skipped 0, failed 0\)/);
    expect(text.stdout).toMatch(/rate\s+annotate: [\d.]+ samples\/s/);
    expect(text.stdout).toMatch(/eta\s+\S+ for the annotate phase \(2 shards left\)/);
    expect(listing).toMatchObject({ state: 'running', phase: 'annotate', shards: { total: 3 } });

    // Mid-stage: a chunk of shard 1 committed.
    await waitFor('a chunk of shard 1', async () => chunksOf1().length > 0, 120_000, 50);
    const cancelled = await cli('cancel', 'cancel', '--json');
    ok(cancelled);
    expect(json(cancelled)).toMatchObject({ event: 'cancelled', state: 'cancelled' });
    expect((await client.workflow.getHandle('recaption-run-cancel').describe()).status.name).toBe('CANCELLED');
    // Stopped at a checkpoint: shard 1 has no marker, nothing was recorded as failed.
    expect(await storage.exists(layout.done('annotate', '00000001'))).toBe(false);
    expect(files(path.join(layout.runUri, 'failures'))).toEqual([]);
    // Nothing half-written: no temp file left, every committed chunk a whole parquet file.
    expect([...files(layout.runUri), ...files(annotations)].filter((f) => /\.tmp-[0-9a-f]{16}$/.test(f))).toEqual([]);
    const chunks = chunksOf1().filter((f) => f.endsWith('.parquet'));
    expect(chunks.length).toBeGreaterThan(0);
    for (const f of chunks) expect((await readFile(f)).subarray(-4).toString()).toBe('PAR1');
    // The stage had stopped when the run closed: nothing changes afterwards.
    const before = [...files(layout.runUri), ...files(annotations)].sort();
    await new Promise((r) => setTimeout(r, 3000));
    expect([...files(layout.runUri), ...files(annotations)].sort()).toEqual(before);
    // Side by side: the listing and status of the cancelled run; refusals: nothing to cancel, an unknown run.
    const [cancelledRow, after, notRunning, unknown] = await Promise.all([
      listedAs('cancel', 'cancelled'),
      cli('status', 'cancel'),
      cli('cancel', 'cancel'),
      cli('resume', 'no-such-run'),
    ]);
    expect(cancelledRow.state).toBe('cancelled');
    expect(after.stdout).toMatch(/CANCELLED/);
    expect(after.stdout).toMatch(/annotate\s+1\/3 shards committed/);
    expect(notRunning.code).toBe(2);
    expect(notRunning.stderr).toMatch(/run cancel is not running \(it cancelled\)/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no run "no-such-run"/);

    const resumed = await cli('resume', 'cancel');
    ok(resumed);
    expect(resumed.stderr).toMatch(/resuming run cancel \(its last execution cancelled/);
    expect(resumed.stderr).toMatch(/annotate\s+1\/3 shards committed/);
    expect(resumed.stdout).toMatch(/shards\s+3\b/);
    // The annotate stage of shard 1 went on from its committed chunks.
    const marker = JSON.parse(await readFile(layout.done('annotate', '00000001'), 'utf8')) as StageSummary;
    expect(marker.counts!.resumedAt).toBeGreaterThanOrEqual(8);
    expect(await listedAs('cancel', 'completed')).toMatchObject({ state: 'completed', shards: { total: 3, done: 3, failed: 0 } });
  }, 300_000);

  it('resumes a run from its folder when the Temporal server does not know it; refuses a folder that is not a run', async () => {
    const input = path.join(tempDir(), 'in');
    await generateSampleData({ out: input, shards: 2, perShard: 3, seed: 15 });
    // Planned (plan.json committed), then its history gone: as after a move to a new Temporal server.
    const { file, out } = writeConfig('from-folder', input);
    const layout = RunLayout.of(out, 'from-folder');
    await planRun(await loadConfigFile(file));
    const resumed = await cli('resume', layout.runUri, '--json');
    ok(resumed);
    const events = jsonLines(resumed);
    expect(events[0]).toMatchObject({ event: 'resume', run: 'from-folder', previous: null, committed: { runUri: layout.runUri, shards: 2, stages: { annotate: 0, select: 0, write: 0 } } });
    expect(events.find((e) => e.event === 'done').summary).toMatchObject({ shards: 2, failedShards: 0 });
    expect(await listedAs('from-folder', 'completed')).toMatchObject({ state: 'completed', shards: { total: 2, done: 2 } });

    const notARun = await cli('resume', path.join(out, 'nothing-here'));
    expect(notARun.code).toBe(2);
    expect(notARun.stderr).toMatch(/nothing-here is not a run folder \(it has no plan\.json\)/);
  });

  it('refuses to resume a running run, and says when a cancellation does not close in time', async () => {
    const input = path.join(tempDir(), 'in');
    await generateSampleData({ out: input, shards: 1, perShard: 2, seed: 14 });
    // Queues no worker polls: the run stays running, and its cancellation cannot be processed.
    const { file } = writeConfig('stuck', input, { temporal: { gpuTaskQueue: 'gpu-nobody', cpuTaskQueue: 'cpu-nobody' } });
    expect((await cli('run', '--config', file, '--detach')).code).toBe(0);
    const r = await cli('resume', 'stuck');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run stuck is running .*nothing to resume/);
    const c = await cli('cancel', 'stuck', '--timeout', '2s');
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/has not closed within 2s/);
    await client.workflow.getHandle('recaption-run-stuck').terminate('test cleanup');
  });
});
