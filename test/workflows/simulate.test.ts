/**
 * Simulate mode (activities/simulate.ts, what `npm run bench:scale` runs at 12,800 shards): the real workflows on a
 * real dev server with real workers and queues, the activities doing no model work. 200 shards in pages of 64: every
 * shard passes every stage exactly once and the run's counts close.
 */
import * as path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { simulatedShardCounts } from '../../activities/simulate';
import { parseConfig } from '../../lib/config/load';
import { loadPlan } from '../../lib/run/plan';
import type { ShardStage } from '../../lib/run/stages';
import { buildWorkers } from '../../workers/build';
import { recaptionRun } from '../../workflows/run';
import { localTemporal, workflowBundle } from '../helpers/temporal';
import { tempDir } from '../helpers/paths';

const SHARDS = 200;
const PER_SHARD = 100;
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await localTemporal();
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

it('runs 200 simulated shards through every stage exactly once, with closing counts', async () => {
  const dir = tempDir();
  const config = parseConfig(
    {
      run: { name: 'sim' },
      input: { uri: path.join(dir, 'in'), maxShards: SHARDS },
      output: { uri: path.join(dir, 'out') },
      strategy: { preset: 'raw30-synthetic70-filtered' },
      models: { captioner: { path: path.join(dir, 'no-captioner') }, clip: { path: path.join(dir, 'no-clip') } },
      temporal: { gpuTaskQueue: 'gpu-sim', cpuTaskQueue: 'cpu-sim', pageSize: 64 },
    },
    'test',
  );
  const seen: Record<ShardStage, number[]> = { annotate: [], select: [], write: [] };
  const workers = await buildWorkers({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    queues: ['gpu', 'cpu'],
    gpuTaskQueue: 'gpu-sim',
    cpuTaskQueue: 'cpu-sim',
    gpuConcurrency: 16,
    cpuConcurrency: 16,
    workflowBundle: await workflowBundle(),
    shutdownGraceTime: '1s',
    simulate: { samplesPerShard: PER_SHARD, onShardStage: (stage, index) => seen[stage].push(index) },
  });
  let summary: Awaited<ReturnType<typeof recaptionRun>> | undefined;
  await Promise.all([
    ...workers.map((w: Worker) => w.run()),
    (async () => {
      try {
        summary = await env.client.workflow.execute(recaptionRun, { workflowId: 'sim-run', taskQueue: 'cpu-sim', args: [{ config }] });
      } finally {
        workers.forEach((w) => w.shutdown());
      }
    })(),
  ]);

  // Every shard of the plan, each stage once: no page skipped, overlapped or repeated.
  const all = Array.from({ length: SHARDS }, (_, i) => i);
  for (const stage of ['annotate', 'select', 'write'] as const) {
    expect([...seen[stage]].sort((a, b) => a - b)).toEqual(all);
    expect(summary!.progress[stage]).toMatchObject({ done: SHARDS, skipped: 0, failed: 0 });
  }
  // The generated plan is committed like a real one, and finalize counts over it.
  expect((await loadPlan(summary!.runUri)).shards).toHaveLength(SHARDS);
  expect(summary!.shards).toBe(SHARDS);
  expect(summary!.samples).toBe(SHARDS * PER_SHARD);
  const kept = all.reduce((n, i) => n + simulatedShardCounts(i, PER_SHARD).kept, 0);
  expect(summary!.kept).toBe(kept);
  expect(summary!.keptBySource.raw! + summary!.keptBySource.synthetic!).toBe(kept);
  expect(summary!.kept + Object.values(summary!.dropped).reduce((a, b) => a + b, 0)).toBe(SHARDS * PER_SHARD);

  // ceil(200 / 64) = 4 pages per phase, each its own child workflow.
  const pages = new Set<string>();
  for await (const w of env.client.workflow.list({ query: `WorkflowType = 'shardPageWorkflow'` })) pages.add(w.workflowId);
  expect([...pages].sort()).toEqual(['annotate', 'select'].flatMap((phase) => [0, 1, 2, 3].map((p) => `sim-run/${phase}/page-0000${p}`)));
}, 180_000);
