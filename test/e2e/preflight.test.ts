/**
 * "Every sample accounted for", as a new user meets it: the real `recaption` command against a real dev server
 * (and a real fake-gcs-server for gs://). What the input or the config gets wrong is refused before any workflow
 * starts, naming the problem, with exit code 2; a run that fails later says why instead of "Workflow execution
 * failed"; a refused attempt never replaces the finished run that `recaption status` shows.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { stringify } from 'yaml';
import { runWorkflowId } from '../../cli/runs';
import { startDevServer, type DevServer } from '../../infra/dev-server';
import { generateSampleData } from '../../lib/sampledata';
import { exited, runCli, startWorkerProcess } from '../helpers/cli';
import { startFakeGcs, type FakeGcs } from '../helpers/fake-gcs';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';

// Short enough that a CLI which waits on a workflow no worker will run (the behaviour before preflight) fails the
// test instead of hanging it; ample for a refusal, which comes before anything starts.
const CLI_TIMEOUT_MS = 60_000;

let server: DevServer;
let gcs: FakeGcs;
let connection: Connection;
let client: Client;
let env: NodeJS.ProcessEnv;
let input: string;
const QUEUES = { gpuTaskQueue: 'gpu-preflight', cpuTaskQueue: 'cpu-preflight' };

beforeAll(async () => {
  [server, gcs] = await Promise.all([startDevServer(), startFakeGcs()]);
  env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, TEMPORAL_UI_URL: server.uiUrl, STORAGE_EMULATOR_HOST: gcs.endpoint };
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  input = path.join(tempDir(), 'shards');
  await generateSampleData({ out: input, shards: 2, perShard: 4, seed: 1 });
}, 120_000);

afterAll(async () => {
  await connection?.close();
  await Promise.all([server?.stop(), gcs?.stop()]);
});

/** A run config in a fresh folder (the raw preset: CPU work only), on the shared worker's queues unless given. */
function writeConfig(name: string, extra: Record<string, unknown> = {}): { file: string; out: string } {
  const file = path.join(tempDir(), `${name}.yaml`);
  const out = path.join(path.dirname(file), 'out');
  const models = { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } };
  writeFileSync(file, stringify({ run: { name }, input: { uri: input }, output: { uri: out }, strategy: { preset: 'raw' }, models, temporal: QUEUES, ...extra }));
  return { file, out };
}

/** A path inside a regular file: no folder can be made there. */
function insideAFile(...parts: string[]): { file: string; uri: string } {
  const file = path.join(tempDir(), 'a-regular-file');
  writeFileSync(file, 'x');
  return { file, uri: path.join(file, ...parts) };
}

const run = (file: string, ...args: string[]) => runCli(['run', '--config', file, ...args], env, CLI_TIMEOUT_MS);

async function withWorker<T>(body: () => Promise<T>): Promise<T> {
  const worker = await startWorkerProcess(env, ['--gpu-queue', QUEUES.gpuTaskQueue, '--cpu-queue', QUEUES.cpuTaskQueue, '--shutdown-grace', '1s']);
  try {
    return await body();
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
  }
}

async function expectNoWorkflow(runName: string): Promise<void> {
  await expect(client.workflow.getHandle(runWorkflowId(runName)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('recaption run: preflight', () => {
  it('refuses an output folder that cannot be written, naming it and why, before any workflow starts', async () => {
    const { uri: out } = insideAFile('out');
    const { file } = writeConfig('pf-unwritable', { output: { uri: out } });
    const r = await run(file);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining(`output.uri: cannot write to ${out}`) });
    expect(r.stderr).toContain('BadPath');
    expect(r.stderr).toContain('a part of the path is a file, not a folder');
    await expectNoWorkflow('pf-unwritable');
  });

  it('refuses a gs:// output in a bucket that does not exist', async () => {
    const { file } = writeConfig('pf-nobucket', { output: { uri: 'gs://no-such-bucket/recaption' } });
    const r = await run(file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('output.uri: cannot write to gs://no-such-bucket/recaption');
    expect(r.stderr).toMatch(/MissingBucket: bucket gs:\/\/no-such-bucket does not exist/);
    await expectNoWorkflow('pf-nobucket');
  });

  it('refuses a changed config under the name of a finished run, field by field; status still shows the finished run', async () => {
    const { file, out } = writeConfig('pf-done');
    // temporal.* does not change outputs: not a change a run refuses
    const { file: changed } = writeConfig('pf-done', { output: { uri: out }, strategy: { preset: 'raw-top30' }, caption: { maxLength: 12 }, temporal: { ...QUEUES, pageSize: 7 } });
    await withWorker(async () => {
      const first = await runCli(['run', '--config', file], env); // a whole run: the default timeout
      expect({ code: first.code, stderr: first.stderr }).toMatchObject({ code: 0 });
      // with the worker up, as users have it: nothing may start a new execution of the finished run
      const r = await run(changed);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2 });
      expect(r.stderr).toContain(`run "pf-done" at ${path.join(out, 'pf-done')} was started with another config`);
      expect(r.stderr).toContain('strategy.preset: "raw" -> "raw-top30"');
      expect(r.stderr).toContain('caption.maxLength: 40 -> 12'); // the default it ran with
      expect(r.stderr).not.toContain('temporal');
      expect(r.stderr).toContain('use a new run.name — it reuses every annotation already computed — or restore the original config to resume');
    });
    const s = await runCli(['status', 'pf-done'], env, CLI_TIMEOUT_MS);
    expect({ code: s.code, stderr: s.stderr }).toMatchObject({ code: 0 });
    expect(s.stdout).toMatch(/COMPLETED/);
    expect(s.stdout).toMatch(/write\s+2\/2 shards/);
  });

  it('attaches to a running run of the same config, and never to one of another config', async () => {
    // Queues no worker polls: the run stays RUNNING (before its plan exists) while we try.
    const queues = { temporal: { gpuTaskQueue: 'gpu-nobody', cpuTaskQueue: 'cpu-nobody' } };
    const { file, out } = writeConfig('pf-live', queues);
    try {
      const started = await run(file, '--detach');
      expect({ code: started.code, stderr: started.stderr }).toMatchObject({ code: 0, stderr: expect.stringContaining('started run pf-live') });
      const { runId } = await client.workflow.getHandle(runWorkflowId('pf-live')).describe();
      const same = await run(file, '--detach');
      expect({ code: same.code, stderr: same.stderr }).toMatchObject({ code: 0, stderr: expect.stringContaining('attached to running run pf-live') });

      const { file: changed } = writeConfig('pf-live', { ...queues, output: { uri: out }, strategy: { preset: 'synthetic' } });
      const r = await run(changed, '--detach');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('run "pf-live" is running with another config');
      expect(r.stderr).toContain('recaption status pf-live');
      expect(r.stderr).not.toContain('attached');
      // still the first execution, untouched
      const d = await client.workflow.getHandle(runWorkflowId('pf-live')).describe();
      expect({ status: d.status.name, runId: d.runId }).toEqual({ status: 'RUNNING', runId });
    } finally {
      await client.workflow.getHandle(runWorkflowId('pf-live')).terminate('test done');
    }
  });

  it("shows a workflow's failure by its root cause: bad input found while planning exits 2 with its type and message", async () => {
    // Planning writes key.json under the annotations folder, which preflight does not probe: put it inside a file.
    const { uri: annotations } = insideAFile('annotations');
    const { file } = writeConfig('pf-plan-fails', { strategy: { preset: 'raw-top30' }, annotations: { uri: annotations } });
    await withWorker(async () => {
      const r = await run(file);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2 });
      expect(r.stderr).toContain('run pf-plan-fails failed — BadPath: cannot write');
      expect(r.stderr).toContain(annotations);
      expect(r.stderr).not.toContain('Workflow execution failed');

      const s = await runCli(['status', 'pf-plan-fails'], env, CLI_TIMEOUT_MS);
      expect(s.stdout).toMatch(/FAILED/);
      expect(s.stdout).toMatch(/failed\s+BadPath: cannot write/);
    });
  });
});
