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
import { RunLayout } from '../../lib/run/layout';
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
    while (!(await storage.exists(layout.done('caption', '00000000')))) {
      if (Date.now() > deadline) throw new Error('no caption committed');
      await new Promise((r) => setTimeout(r, 100));
    }
    worker.kill('SIGKILL');
    await exited(worker);
    const firstCaption = await readFile(layout.done('caption', '00000000'), 'utf8');

    worker = await startWorkerProcess(env, queueArgs('crash'));
    try {
      const r = await run;
      expect(r.code).toBe(0);
      const done = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'done');
      expect(done.summary.samples).toBe(18);
      expect(done.summary.shards).toBe(3);
      // the shard captioned before the crash was committed once and not rewritten
      expect(await readFile(layout.done('caption', '00000000'), 'utf8')).toBe(firstCaption);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
  });
});
