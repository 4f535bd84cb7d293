/**
 * A small fleet, as on Kubernetes: a CPU and a GPU `recaption worker` process, each with `--metrics-port` and
 * `--log-format json`, against a real dev server that serves its own /metrics. The GPU worker starts only once
 * the run has queued GPU work, so the backlog KEDA's temporal scaler reads is seen to rise (scale from zero)
 * and to drain. Then: every metric the README promises is found in a scrape of the running workers, every
 * metric the Grafana dashboard queries exists, and every log line is one JSON object, a stage's lines carrying
 * run, stage, shard and attempt.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { freePort, startDevServer, type DevServer } from '../../infra/dev-server';
import { SHARD_STAGES, STAGE_QUEUE } from '../../lib/run/stages';
import { exited, runCli, startWorkerProcess } from '../helpers/cli';
import { REPO_ROOT, TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';
import { taskQueueBacklog, waitFor } from './backlog';
import { declaredNames, has, samplesOf, scrapeText, total, type Sample } from './prometheus';

const NAME = 'fleet';
const QUEUES = { gpu: `gpu-${NAME}`, cpu: `cpu-${NAME}` };
const DASHBOARD = path.join(REPO_ROOT, 'infra', 'grafana', 'recaption-run.json');

let server: DevServer;
let serverMetrics: string;
let client: Client;
let env: NodeJS.ProcessEnv;
const workers: Record<'gpu' | 'cpu', { process: ChildProcess & { output: () => string }; port: number } | undefined> = { gpu: undefined, cpu: undefined };
const scrapes: Record<'gpu' | 'cpu', Sample[]> = { gpu: [], cpu: [] };
/** Every series name the workers and the server declare (a counter is declared before its first sample). */
const declared = new Set<string>();
let backlogBefore = 0;
let runResult: { code: number | null; stdout: string; stderr: string };

async function startWorker(kind: 'gpu' | 'cpu', extra: string[] = []): Promise<void> {
  const port = await freePort();
  const args = ['--queues', kind, '--gpu-queue', QUEUES.gpu, '--cpu-queue', QUEUES.cpu, '--metrics-port', String(port), '--log-format', 'json', '--shutdown-grace', '1s', ...extra];
  workers[kind] = { process: await startWorkerProcess(env, args), port };
}

beforeAll(async () => {
  const serverPort = await freePort();
  serverMetrics = `http://127.0.0.1:${serverPort}/metrics`;
  server = await startDevServer({ extraArgs: ['--metrics-port', String(serverPort)] });
  env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace };
  client = new Client({ connection: await Connection.connect({ address: server.address }), namespace: server.namespace });

  const dir = tempDir('recaption-fleet-');
  const input = path.join(dir, 'shards');
  expect((await runCli(['sample-data', '--out', input, '--shards', '3', '--per-shard', '6', '--corrupt', '1'])).code).toBe(0);
  const config = path.join(dir, 'run.yaml');
  writeFileSync(
    config,
    stringify({
      run: { name: NAME },
      input: { uri: input },
      output: { uri: path.join(dir, 'out') },
      strategy: { preset: 'raw30-synthetic70-filtered' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 10 },
      temporal: { gpuTaskQueue: QUEUES.gpu, cpuTaskQueue: QUEUES.cpu, heartbeatTimeout: '5s', pageSize: 2 },
    }),
  );

  await startWorker('cpu');
  const run = runCli(['run', '--config', config, '--json'], env);
  // No GPU worker yet: the GPU activities wait in the task queue's backlog, which is what KEDA scales on.
  await waitFor('GPU work in the backlog', async () => (backlogBefore = await taskQueueBacklog(client, QUEUES.gpu)) > 0);
  // The server's own gauge of it (what the dashboard's backlog panel plots), under its queue-name spelling (- → _).
  const serverQueue = QUEUES.gpu.replace(/-/g, '_');
  await waitFor('the server to report the GPU backlog', async () => total(samplesOf(await scrapeText(serverMetrics)), 'approximate_backlog_count', { taskqueue: serverQueue }) > 0, 120_000);
  await startWorker('gpu', ['--config', config]);
  runResult = await run;
  for (const kind of ['gpu', 'cpu'] as const) {
    const text = await scrapeText(`http://127.0.0.1:${workers[kind]!.port}/metrics`);
    scrapes[kind] = samplesOf(text);
    declaredNames(text).forEach((n) => declared.add(n));
  }
  const serverText = await scrapeText(serverMetrics);
  [...declaredNames(serverText), ...samplesOf(serverText).map((s) => s.name)].forEach((n) => declared.add(n));
}, 300_000);

afterAll(async () => {
  for (const w of Object.values(workers)) {
    if (!w) continue;
    w.process.kill('SIGTERM');
    await exited(w.process);
  }
  await client?.connection.close();
  await server?.stop();
});

describe('a worker fleet: backlog, metrics, logs', () => {
  it('runs to the end; the GPU backlog rose while no GPU worker ran and drained after', async () => {
    expect({ code: runResult.code, stderr: runResult.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    expect(backlogBefore).toBeGreaterThan(0);
    expect(await taskQueueBacklog(client, QUEUES.gpu)).toBe(0);
    expect(await taskQueueBacklog(client, QUEUES.cpu, ['workflow', 'activity'])).toBe(0);
  });

  it("serves each stage's metrics from the worker of its queue", () => {
    for (const stage of SHARD_STAGES) {
      const samples = scrapes[STAGE_QUEUE[stage]];
      expect({ stage, done: total(samples, 'recaption_stage_shards_total', { stage, outcome: 'done' }) }).toEqual({ stage, done: 3 });
      expect(total(samples, 'recaption_stage_samples_total', { stage })).toBeGreaterThan(0);
      expect(total(samples, 'recaption_stage_duration_seconds_count', { stage })).toBe(3);
      expect(total(samples, 'recaption_stage_duration_seconds_sum', { stage })).toBeGreaterThan(0);
    }
    // One corrupt image per shard: the GPU stage skips it with its reason.
    const gpuSkipped = scrapes.gpu.filter((s) => s.name === 'recaption_stage_samples_skipped_total' && s.labels.kind === 'failed');
    expect(gpuSkipped.map((s) => s.labels.reason)).toContain('decode_error');
    expect(gpuSkipped.filter((s) => s.labels.reason === 'decode_error').reduce((a, s) => a + s.value, 0)).toBeGreaterThanOrEqual(3);
    // The selection drops samples by rule, with their reasons.
    expect(scrapes.cpu.some((s) => s.name === 'recaption_stage_samples_skipped_total' && s.labels.kind === 'dropped' && s.value > 0)).toBe(true);
  });

  it('serves models loaded, busy time, and the Temporal SDK metrics beside ours', () => {
    expect(total(scrapes.gpu, 'recaption_models_loaded', { kind: 'clip' })).toBe(1);
    expect(total(scrapes.gpu, 'recaption_models_loaded', { kind: 'captioner' })).toBe(1);
    expect(total(scrapes.cpu, 'recaption_models_loaded')).toBe(0); // CPU workers load no model
    expect(total(scrapes.gpu, 'recaption_activity_busy_seconds_total', { task_queue: QUEUES.gpu })).toBeGreaterThan(0);
    expect(total(scrapes.gpu, 'recaption_activities_running', { task_queue: QUEUES.gpu })).toBe(0);
    for (const kind of ['gpu', 'cpu'] as const) {
      // From the SDK's own exporter (Runtime telemetryOptions), served on the same port.
      expect(has(scrapes[kind], 'temporal_worker_task_slots_available', { task_queue: QUEUES[kind] })).toBe(true);
      expect(total(scrapes[kind], 'temporal_activity_execution_latency_count', { task_queue: QUEUES[kind] })).toBeGreaterThan(0);
      expect(has(scrapes[kind], 'process_cpu_seconds_total')).toBe(true);
    }
  });

  it('the Grafana dashboard queries only metrics that exist, and covers every panel the run needs', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    // KEDA's own exporter, not run here (KEDA v2.20.2 pkg/metricscollector/prommetrics.go: keda_scaler_metrics_value).
    const elsewhere = new Set(['keda_scaler_metrics_value']);
    const missing: string[] = [];
    for (const { panel, expr: templated } of exprs) {
      // Grafana's variables, as Grafana substitutes them before Prometheus sees the query.
      const expr = templated.replace(/\$__(range|rate_interval)/g, '5m').replace(/\$(job|datasource)/g, '.*');
      const tree = parser.parse(expr);
      let errors = 0;
      tree.iterate({
        enter: (node) => {
          if (node.type.isError) errors++;
          if (node.name === 'VectorSelector') {
            const id = node.node.getChild('Identifier');
            const name = id ? expr.slice(id.from, id.to) : '';
            if (!declared.has(name) && !elsewhere.has(name)) missing.push(`${panel}: ${name}`);
          }
        },
      });
      expect({ panel, expr, errors }).toEqual({ panel, expr, errors: 0 });
    }
    expect(missing).toEqual([]);
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const needed of ['shards per stage', 'samples/s', 'failures', 'backlog']) expect(titles).toContain(needed);
  });

  it('logs one JSON object per line; every stage line carries run, stage, shard and attempt', () => {
    const stageLines: Array<Record<string, unknown>> = [];
    for (const kind of ['gpu', 'cpu'] as const) {
      const lines = workers[kind]!.process.output().split('\n').filter((l) => l.trim());
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`${kind} worker wrote a line that is not JSON: ${line}`);
        }
        expect(entry).toMatchObject({ time: expect.any(String), level: expect.any(String), message: expect.any(String) });
        if (entry.stage !== undefined) stageLines.push(entry);
      }
    }
    for (const entry of stageLines) expect(entry).toMatchObject({ run: NAME, stage: expect.any(String), shard: expect.stringMatching(/^\d{8}$/), attempt: expect.any(Number) });
    expect([...new Set(stageLines.map((e) => e.stage))].sort()).toEqual([...SHARD_STAGES].sort());
    expect(stageLines.filter((e) => String(e.message).includes(' done: ')).length).toBe(3 * SHARD_STAGES.length);
  });
});
