/**
 * Long runs: a server that suggests continue-as-new after a few dozen events (dynamic config) makes both the
 * run workflow and the page workflows continue-as-new mid-phase; the run still finishes with exact counts.
 */
import * as path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../lib/config/load';
import { generateSampleData } from '../../lib/sampledata';
import { buildWorkers } from '../../workers/build';
import { recaptionRun } from '../../workflows/run';
import { localTemporal, workflowBundle } from '../helpers/temporal';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await localTemporal(['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=20']);
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

it('continues-as-new in the run and in pages, carrying counters, and finishes exactly', async () => {
  const input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 5, perShard: 3, seed: 9 });
  const config = parseConfig(
    {
      run: { name: 'can' },
      input: { uri: input },
      output: { uri: tempDir() },
      strategy: { preset: 'raw-top30' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { maxLength: 6 },
      // run: 2 pages (3+2 shards) per phase, one at a time; page: one shard at a time
      temporal: { gpuTaskQueue: 'gpu-can', cpuTaskQueue: 'cpu-can', pageSize: 3, maxConcurrentPages: 1, maxConcurrentShards: 1 },
    },
    'test',
  );
  const workers = await buildWorkers({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    queues: ['gpu', 'cpu'],
    gpuTaskQueue: 'gpu-can',
    cpuTaskQueue: 'cpu-can',
    workflowBundle: await workflowBundle(),
    shutdownGraceTime: '1s',
  });
  let summary: Awaited<ReturnType<typeof recaptionRun>> | undefined;
  let firstRunId = '';
  await Promise.all([
    ...workers.map((w: Worker) => w.run()),
    (async () => {
      try {
        const h = await env.client.workflow.start(recaptionRun, { workflowId: 'can-run', taskQueue: 'cpu-can', args: [{ config }] });
        firstRunId = h.firstExecutionRunId;
        summary = await h.result();
      } finally {
        workers.forEach((w) => w.shutdown());
      }
    })(),
  ]);
  expect(summary!.samples).toBe(15);
  expect(summary!.progress.annotate.done).toBe(5);
  expect(summary!.progress.write.done).toBe(5);
  // raw-top30 keeps the pool's top floor(15·0.3) + 1 scores, less a blank alt-text among them
  expect(summary!.kept).toBe(Math.floor(15 * 0.3) + 1 - (summary!.dropped.empty_raw_caption ?? 0));
  expect(summary!.kept).toBeGreaterThan(0);

  const firstRun = await env.client.workflow.getHandle('can-run', firstRunId).fetchHistory();
  const last = firstRun.events!.at(-1)!;
  expect(last.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();

  // the first page (3 shards, one at a time) continued-as-new too: it has more than one execution
  const executions: string[] = [];
  for await (const w of env.client.workflow.list({ query: `WorkflowId = 'can-run/annotate/page-00000'` })) executions.push(w.runId);
  expect(executions.length).toBeGreaterThan(1);
});
