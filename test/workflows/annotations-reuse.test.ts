/**
 * One GPU pass serves every strategy, on a real dev server: a sweep's annotating run (the filtered mix, with image
 * clusters annotated but not applied) runs the GPU stage; every other row of the paper's table and a 5-point
 * mix-threshold sweep then complete with NO GPU worker at all, and each one's outputs equal a fresh run of that
 * preset alone (its own annotations, computed from scratch). And raw-top30 on the pool's own scores needs no GPU.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { parseConfig } from '../../lib/config/load';
import type { RunConfig } from '../../lib/config/schema';
import { IMG2DATASET_TABLE } from '../../lib/formats/img2dataset';
import { encodeFloatMatrix } from '../../lib/formats/npy';
import { encodeParquetRows } from '../../lib/formats/parquet';
import { loadCaptioner, loadClip } from '../../lib/models';
import type { Captioner, ClipScorer } from '../../lib/models/types';
import { planRun } from '../../lib/pipeline/plan-stage';
import { sweepConfigs } from '../../lib/pipeline/sweep';
import { RunLayout } from '../../lib/run/layout';
import { generateSampleData } from '../../lib/sampledata';
import { buildWorkers } from '../../workers/build';
import { recaptionRun } from '../../workflows/run';
import type { RunSummary } from '../../workflows/types';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';
import { runAllStages } from '../helpers/stages';
import { localTemporal, workflowBundle } from '../helpers/temporal';

const PRESETS = ['raw30-synthetic70-filtered', 'raw', 'raw-top30', 'raw-top30-in1k', 'synthetic', 'synthetic-top50', 'synthetic-top75-in1k', 'raw30-synthetic70'];
const FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5];

let env: TestWorkflowEnvironment;
let captioner: Captioner;
let clip: ClipScorer;
let dir: string;
let base: RunConfig;

beforeAll(async () => {
  env = await localTemporal();
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  dir = tempDir();
  const input = path.join(dir, 'in');
  await generateSampleData({ out: input, shards: 2, perShard: 8, seed: 17, corrupt: 1, failures: 1 });
  let seed = 5;
  const centroids = Float32Array.from({ length: 6 * 32 }, () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5);
  writeFileSync(path.join(dir, 'centroids.npy'), encodeFloatMatrix(centroids, 6, 32));
  writeFileSync(path.join(dir, 'target.txt'), '0\n2\n4\n');
  base = parseConfig(
    {
      run: { name: 'table', seed: 3 },
      input: { uri: input },
      output: { uri: path.join(dir, 'out') },
      strategy: { preset: 'raw' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 8 },
      filters: { imageCluster: { centroids: path.join(dir, 'centroids.npy'), target: path.join(dir, 'target.txt') } },
      temporal: { gpuTaskQueue: 'gpu-reuse', cpuTaskQueue: 'cpu-reuse' },
    },
    'test',
  );
}, 180_000);

afterAll(async () => {
  await captioner?.release();
  await clip?.release();
  await env?.teardown();
});

async function runOn(workers: Worker[], configs: RunConfig[]): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  await Promise.all([
    ...workers.map((w) => w.run()),
    (async () => {
      try {
        for (const c of configs) {
          out.push(await env.client.workflow.execute(recaptionRun, { workflowId: `reuse-${c.run.name}`, taskQueue: 'cpu-reuse', args: [{ config: c }] }));
        }
      } finally {
        workers.forEach((w) => w.shutdown());
      }
    })(),
  ]);
  return out;
}

const workers = (queues: Array<'gpu' | 'cpu'>) =>
  workflowBundle().then((workflowBundle) =>
    buildWorkers({ connection: env.nativeConnection, namespace: env.namespace ?? 'default', queues, gpuTaskQueue: 'gpu-reuse', cpuTaskQueue: 'cpu-reuse', workflowBundle, shutdownGraceTime: '1s' }),
  );

/** What a run wrote that a user takes away: decisions, output shards, the subset file, the thresholds. */
async function outputs(runUri: string, shards: string[]): Promise<Record<string, string>> {
  const layout = new RunLayout(runUri);
  const files: Record<string, string> = {};
  for (const s of shards) {
    files[`decisions/${s}`] = (await readFile(layout.decisions(s))).toString('base64');
    files[`shards/${s}`] = (await readFile(layout.outputShard(s))).toString('base64');
  }
  files.subset = (await readFile(layout.subset)).toString('base64');
  files.thresholds = JSON.stringify(JSON.parse(await readFile(layout.thresholds, 'utf8')).thresholds);
  return files;
}

it('annotates once, then runs every other preset and a mix-threshold sweep with no GPU worker, as fresh runs would', async () => {
  const sweep = sweepConfigs(base, [...PRESETS.map((preset) => ({ preset })), ...FRACTIONS.map((fraction) => ({ preset: 'mix-threshold', fraction }))]);
  expect(sweep[0]!.run.name).toBe('table-raw30-synthetic70-filtered');
  expect(sweep[0]!.filters.imageCluster?.apply).toBe(false);

  const [first] = await runOn(await workers(['gpu', 'cpu']), [sweep[0]!]);
  expect(first!.progress.annotate).toEqual({ done: 2, skipped: 0, failed: 0 });

  // No worker polls the GPU queue from here on: a GPU stage would never finish.
  const rest = await runOn(await workers(['cpu']), sweep.slice(1));
  expect(rest).toHaveLength(PRESETS.length - 1 + FRACTIONS.length);
  for (const [i, summary] of rest.entries()) {
    const { annotate } = summary.progress;
    // every annotation is found (raw needs none: the phase does not run at all)
    expect({ run: sweep[i + 1]!.run.name, annotate }).toEqual({ run: sweep[i + 1]!.run.name, annotate: sweep[i + 1]!.strategy.preset === 'raw' ? { done: 0, skipped: 0, failed: 0 } : { done: 2, skipped: 2, failed: 0 } });
    expect(summary.samples).toBe(14);
  }
  expect(rest.some((s) => s.kept > 0 && s.kept < 14)).toBe(true);

  // Each equals a fresh run of its preset alone, with its own annotations made from scratch.
  for (const c of sweep.slice(1)) {
    const fresh = await planRun({ ...c, output: { ...c.output, uri: path.join(tempDir(), 'fresh') }, annotations: { ...c.annotations, uri: undefined } });
    expect(fresh.annotations.root).not.toBe(path.join(dir, 'out', '_annotations'));
    await runAllStages(fresh, captioner, clip);
    const names = fresh.shards.map((s) => s.name);
    expect({ run: c.run.name, outputs: await outputs(fresh.runUri, names) }).toEqual({ run: c.run.name, outputs: await outputs(RunLayout.of(c.output.uri, c.run.name).runUri, names) });
  }
});

it('runs raw-top30 on the pool\'s precomputed CLIP scores with no GPU worker at all', async () => {
  const input = path.join(tempDir(), 'pool');
  await generateSampleData({ out: input, shards: 2, perShard: 6, seed: 23, failures: 1 });
  for (const shard of ['00000000', '00000001']) {
    const uri = path.join(input, `${shard}.parquet`);
    const rows = await IMG2DATASET_TABLE.decode(await readFile(uri), uri);
    const scored = rows.map((r, i) => ({ ...r, clip_l14_similarity_score: Math.fround(0.1 + ((i * 7) % 11) / 40) }));
    writeFileSync(uri, encodeParquetRows([...IMG2DATASET_TABLE.columns, { name: 'clip_l14_similarity_score', type: 'FLOAT' }], scored));
  }
  const config = parseConfig({ ...base, run: { name: 'dc-scores' }, input: { uri: input }, strategy: { preset: 'raw-top30' }, filters: {}, score: { rawScore: 'precomputed' } }, 'test');
  const [summary] = await runOn(await workers(['cpu']), [config]);
  expect(summary!.progress.annotate).toEqual({ done: 0, skipped: 0, failed: 0 });
  expect(summary!.samples).toBe(10);
  expect(summary!.kept).toBeGreaterThan(0);
  expect(summary!.kept).toBeLessThan(10);
});
