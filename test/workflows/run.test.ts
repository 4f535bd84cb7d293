/**
 * The whole pipeline on a real Temporal dev server with real workers, ONNX sessions, sharp and files:
 * 2 shards end to end, then a run interrupted after its annotate stage and resumed without a GPU worker.
 */
import { writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { findTool, TEMPORAL_CLI } from '../../infra/tools';
import * as path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../lib/config/load';
import type { RunConfig } from '../../lib/config/schema';
import { decodeSubsetNpy } from '../../lib/formats/subset';
import { readWebDataset } from '../../lib/formats/webdataset';
import { generateSampleData } from '../../lib/sampledata';
import { storageFor } from '../../lib/storage';
import { RunLayout } from '../../lib/run/layout';
import { DECISION_TABLE, type DecisionRow } from '../../lib/run/tables';
import { annotationStore, type RunPlan } from '../../lib/run/plan';
import { buildWorkers } from '../../workers/build';
import { recaptionRun } from '../../workflows/run';
import { PHASE, SHARDS_DONE } from '../../workflows/search-attributes';
import { localTemporal, workflowBundle } from '../helpers/temporal';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';

const HISTORIES = path.join(__dirname, 'histories');
let env: TestWorkflowEnvironment;
let input: string;

beforeAll(async () => {
  env = await localTemporal();
  input = path.join(tempDir(), 'input');
  await generateSampleData({ out: input, shards: 2, perShard: 10, seed: 3, corrupt: 1, failures: 1 });
}, 180_000);

afterAll(async () => {
  await env?.teardown();
});

function config(name: string, output: string, preset = 'raw30-synthetic70-filtered'): RunConfig {
  return parseConfig(
    {
      run: { name, seed: 1 },
      input: { uri: input },
      output: { uri: output },
      strategy: { preset },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 12 },
      temporal: { gpuTaskQueue: `gpu-${name}`, cpuTaskQueue: `cpu-${name}`, pageSize: 1, heartbeatTimeout: '10s' },
    },
    'test',
  );
}

async function workersFor(c: RunConfig): Promise<Worker[]> {
  return buildWorkers({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    queues: ['gpu', 'cpu'],
    gpuTaskQueue: c.temporal.gpuTaskQueue,
    cpuTaskQueue: c.temporal.cpuTaskQueue,
    workflowBundle: await workflowBundle(),
    shutdownGraceTime: '1s',
  });
}

async function runWith<T>(workers: Worker[], fn: () => Promise<T>): Promise<T> {
  let result!: T;
  await Promise.all([
    ...workers.map((w) => w.run()),
    (async () => {
      try {
        result = await fn();
      } finally {
        workers.forEach((w) => w.shutdown());
      }
    })(),
  ]);
  return result;
}

describe('recaptionRun on a real dev server', () => {
  it('runs 2 shards end to end and writes every output', async () => {
    const out = tempDir();
    const c = config('e2e', out);
    const summary = await runWith(await workersFor(c), () =>
      env.client.workflow.execute(recaptionRun, { workflowId: 'e2e-run', taskQueue: c.temporal.cpuTaskQueue, args: [{ config: c }] }),
    );
    const layout = RunLayout.of(out, 'e2e');
    const storage = storageFor(out);

    // 2 shards × (10 rows − 1 failed download) = 18 samples in the tars, 1 corrupt image each.
    expect(summary.shards).toBe(2);
    expect(summary.samples).toBe(18);
    expect(summary.dropped.decode_error).toBe(2);
    expect(summary.progress.annotate).toEqual({ done: 2, skipped: 0, failed: 0 });
    expect(summary.progress.write.done).toBe(2);

    const decisions: DecisionRow[] = [];
    for (const shard of ['00000000', '00000001']) {
      decisions.push(...((await DECISION_TABLE.decode(await storage.readBuffer(layout.decisions(shard)), layout.decisions(shard)))));
    }
    expect(decisions).toHaveLength(18);
    const kept = decisions.filter((d) => d.kept);
    expect(summary.kept).toBe(kept.length);
    expect(kept.length).toBeGreaterThan(0);
    // The filtered mix: raw where s_raw >= tau, synthetic where s_syn >= the same tau, else dropped.
    const tau = Number(summary.thresholds['raw@0.3']);
    for (const d of decisions.filter((x) => x.reason !== 'decode_error')) {
      // (a blank alt-text is never kept: such a sample goes on to its synthetic caption)
      if (d.s_raw! >= tau && d.raw_caption.trim() !== '') expect([d.kept, d.source, d.caption]).toEqual([true, 'raw', d.raw_caption]);
      else if (d.s_syn! >= tau) expect([d.kept, d.source, d.caption]).toEqual([true, 'synthetic', d.synthetic_caption]);
      else expect([d.kept, d.reason]).toEqual([false, 'below_thresholds']);
      expect(d.synthetic_caption!.length).toBeGreaterThan(0);
    }

    // Output shards hold exactly the kept samples, image bytes untouched, chosen caption, provenance.
    const inputImages = new Map<string, Buffer>();
    for (const shard of ['00000000', '00000001']) {
      for await (const s of readWebDataset(storageFor(input).createReadStream(path.join(input, `${shard}.tar`)))) inputImages.set(s.key, s.files.jpg);
    }
    const written: string[] = [];
    for (const shard of ['00000000', '00000001']) {
      for await (const s of readWebDataset(storage.createReadStream(layout.outputShard(shard)))) {
        const d = kept.find((k) => k.key === s.key)!;
        expect(d).toBeDefined();
        expect(s.files.jpg.equals(inputImages.get(s.key)!)).toBe(true);
        expect(s.files.txt.toString()).toBe(d.caption);
        const meta = JSON.parse(s.files.json.toString());
        expect(meta.uid).toBe(d.uid);
        expect(meta.recaption.source).toBe(d.source);
        written.push(s.key);
      }
    }
    expect(written.sort()).toEqual(kept.map((k) => k.key).sort());

    // DataComp subset file: the kept uids, sorted.
    const uids = decodeSubsetNpy(await storage.readBuffer(layout.subset));
    expect(uids).toEqual(kept.map((k) => k.uid!).sort());

    const manifest = JSON.parse(await readFile(layout.manifest, 'utf8'));
    expect(manifest.configHash).toMatch(/^[0-9a-f]{16}$/);
    expect(Object.keys(manifest.models.clip.files)).toContain('onnx/vision_model.onnx');
    expect(manifest.thresholds['raw@0.3']).toBe(summary.thresholds['raw@0.3']);
    const report = JSON.parse(await readFile(layout.report, 'utf8'));
    expect(report.kind).toBe('recaption-report');
    expect(await readFile(summary.outputs.reportHtml, 'utf8')).toContain('<svg');

    const d = await env.client.workflow.getHandle('e2e-run').describe();
    expect(d.typedSearchAttributes.get(PHASE)).toBe('done');
    expect(d.typedSearchAttributes.get(SHARDS_DONE)).toBe(2);

    // Determinism: the recorded histories replay against the current workflow code.
    for (const id of ['e2e-run', 'e2e-run/annotate/page-00000', 'e2e-run/select/page-00001']) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, id);
      // RECAPTION_RECORD_HISTORIES=1 refreshes the fixtures that replay.test.ts checks future code against.
      if (process.env.RECAPTION_RECORD_HISTORIES === '1') {
        // The Temporal CLI writes the canonical proto3 JSON that historyFromJSON reads.
        const json = execFileSync(findTool(TEMPORAL_CLI)!, ['workflow', 'show', '--address', env.address, '--workflow-id', id, '--output', 'json']);
        writeFileSync(path.join(HISTORIES, `${id.replace(/\//g, '__')}.json`), json);
      }
    }
  });

  it('resumes a run interrupted after its annotate stage, without annotating again', async () => {
    const out = tempDir();
    const c = config('resume', out, 'raw-top30');
    const layout = RunLayout.of(out, 'resume');
    const storage = storageFor(out);

    // First execution: terminated as soon as both shards' annotations are committed.
    await runWith(await workersFor(c), async () => {
      const h = await env.client.workflow.start(recaptionRun, { workflowId: 'resume-run', taskQueue: c.temporal.cpuTaskQueue, args: [{ config: c }] });
      const deadline = Date.now() + 240_000;
      while (!((await storage.exists(layout.done('annotate', '00000000'))) && (await storage.exists(layout.done('annotate', '00000001'))))) {
        if (Date.now() > deadline) throw new Error('annotate stage did not commit');
        await new Promise((r) => setTimeout(r, 100));
      }
      await h.terminate('test: interrupt after annotate');
    });
    const plan = JSON.parse(await readFile(layout.plan, 'utf8')) as RunPlan;
    const annotated = annotationStore(plan).file('rawScores', plan.shards[0]!);
    const mtime = (await stat(annotated)).mtimeMs;

    // Second execution over the same run, with no GPU worker at all: the annotations are found and reused.
    const cpuOnly = await buildWorkers({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      queues: ['cpu'],
      cpuTaskQueue: c.temporal.cpuTaskQueue,
      workflowBundle: await workflowBundle(),
      shutdownGraceTime: '1s',
    });
    const summary = await runWith(cpuOnly, () =>
      env.client.workflow.execute(recaptionRun, { workflowId: 'resume-run', taskQueue: c.temporal.cpuTaskQueue, args: [{ config: c }] }),
    );
    expect(summary.progress.annotate).toEqual({ done: 2, skipped: 2, failed: 0 });
    expect((await stat(annotated)).mtimeMs).toBe(mtime);
    expect(summary.samples).toBe(18);
  });
});
