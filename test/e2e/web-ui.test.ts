/**
 * The Temporal Web UI shows a run as the README says, checked in headless Chromium (Debian's, via
 * playwright-core) against a real dev server with its UI: the run by its workflow id, its static summary and
 * details, its page children, and live progress in its current details — read while the run waits for GPU
 * workers (its GPU work in the backlog), then again once a GPU worker has finished it. Each expected text is
 * taken from the server (describe, history, the `__temporal_workflow_metadata` query), not restated here.
 * RECAPTION_UPDATE_SCREENSHOTS=1 writes the screenshot to docs/images/web-ui-run.png.
 */
import * as path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Browser, Frame, Page } from 'playwright-core';
import { startRun } from '../../cli/runs';
import { startDevServer, type DevServer } from '../../infra/dev-server';
import { parseConfig } from '../../lib/config/load';
import { generateSampleData } from '../../lib/sampledata';
import { buildWorkers, runWorkers } from '../../workers/build';
import { REPO_ROOT, TINY_CAPTIONER, TINY_CLIP, tempDir } from '../helpers/paths';
import { workflowBundle } from '../helpers/temporal';
import { taskQueueBacklog, waitFor } from './backlog';
import { browserUnavailable, launchChromium } from './browser';

const NAME = 'web-ui';
const QUEUES = { gpuTaskQueue: `gpu-${NAME}`, cpuTaskQueue: `cpu-${NAME}` };
const skipped = browserUnavailable();
const describeUi = skipped ? describe.skip : describe;
if (skipped) process.stderr.write(`web-ui.test.ts SKIPPED: ${skipped}\n`);

let server: DevServer;
let connection: NativeConnection;
let client: Client;
let handle: WorkflowHandle;
let browser: Browser;
let page: Page;
const running: Array<{ abort: AbortController; done: Promise<void> }> = [];

async function startWorkers(queues: Array<'gpu' | 'cpu'>): Promise<Worker[]> {
  const workers = await buildWorkers({ connection, namespace: server.namespace, queues, ...QUEUES, workflowBundle: await workflowBundle(), shutdownGraceTime: '1s' });
  const abort = new AbortController();
  running.push({ abort, done: runWorkers(workers, abort.signal) });
  return workers;
}

/** The markdown the workflow reports as its current details (what the UI asks for). */
async function currentDetails(): Promise<string> {
  const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
  return meta.currentDetails ?? '';
}

/** The UI renders each summary/details markdown in an iframe whose `content` parameter is that markdown. */
async function frameShowing(markdown: string): Promise<Frame> {
  let found: Frame | undefined;
  await waitFor(`the UI to render ${JSON.stringify(markdown.slice(0, 60))}`, async () => {
    found = page.frames().find((f) => f.url().includes('/render?') && new URL(f.url()).searchParams.get('content') === markdown);
    return !!found;
  }, 30_000);
  // Rendered, not just fetched: the text without markdown's ** is on the frame's page.
  const plain = markdown.split('\n')[0]!.replace(/\*\*/g, '').replace(/\s+/g, ' ').trim();
  let shown = '';
  await waitFor(`the rendered text ${JSON.stringify(plain)}`, async () => {
    // (the renderer sets n/m with a fraction slash)
    shown = (await found!.innerText('body').catch(() => '')).replace(/\s+/g, ' ').replace(/\u2044/g, '/');
    return shown.includes(plain);
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; the frame shows ${JSON.stringify(shown)}`);
  });
  return found!;
}

async function openTab(testId: string): Promise<void> {
  await page.goto(`${server.uiUrl}/namespaces/${server.namespace}/workflows/${encodeURIComponent(handle.workflowId)}`);
  await page.getByTestId('workflow-id-heading').waitFor();
  await page.getByTestId(testId).click();
}

beforeAll(async () => {
  if (skipped) return;
  server = await startDevServer();
  connection = await NativeConnection.connect({ address: server.address });
  client = new Client({ connection: await Connection.connect({ address: server.address }), namespace: server.namespace });
  const dir = tempDir('recaption-web-ui-');
  await generateSampleData({ out: path.join(dir, 'in'), shards: 3, perShard: 6, seed: 3, corrupt: 1, failures: 0 });
  const config = parseConfig(
    {
      run: { name: NAME },
      input: { uri: path.join(dir, 'in') },
      output: { uri: path.join(dir, 'out') },
      strategy: { preset: 'raw30-synthetic70-filtered' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 4, maxLength: 10 },
      temporal: { ...QUEUES, pageSize: 2 },
    },
    'web-ui.test.ts',
  );
  await startWorkers(['cpu']);
  handle = (await startRun(client, config)).handle;
  // The pages have scheduled GPU work that no worker takes yet: the run is live and will stay where it is.
  await waitFor('GPU work in the backlog', async () => (await taskQueueBacklog(client, QUEUES.gpuTaskQueue)) > 0);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  for (const r of running) r.abort.abort();
  await Promise.all(running.map((r) => r.done.catch(() => undefined)));
  await connection?.close();
  await client?.connection.close();
  await server?.stop();
});

describeUi('the Temporal Web UI shows a run', () => {
  it('finds the run by its workflow id, running', async () => {
    await openTab('history-tab');
    await waitFor('the heading', async () => (await page.getByTestId('workflow-id-heading').innerText()).includes(handle.workflowId));
    await page.getByText('Running', { exact: true }).first().waitFor();
  });

  it('shows its static summary and details', async () => {
    const d = await handle.describe();
    await openTab('user-metadata-tab');
    await frameShowing((await d.staticSummary())!);
    await frameShowing((await d.staticDetails())!);
  });

  it('lists its page children', async () => {
    const history = await handle.fetchHistory();
    const children = (history.events ?? []).flatMap((e) => (e.startChildWorkflowExecutionInitiatedEventAttributes ? [e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId!] : []));
    expect(children.length).toBeGreaterThan(0);
    expect(children[0]).toBe(`${handle.workflowId}/${children[0]!.split('/')[1]}/page-00000`);
    await openTab('relationships-tab');
    for (const id of children) await page.getByText(id, { exact: true }).first().waitFor({ timeout: 30_000 });
  });

  it('shows live progress in its current details, before and after the GPU work', async () => {
    const waiting = await currentDetails();
    expect(waiting).toMatch(/\*\*phase\*\*/);
    await openTab('user-metadata-tab');
    await page.getByText('Current Details').first().waitFor();
    await frameShowing(waiting);
    const screenshot = process.env.RECAPTION_UPDATE_SCREENSHOTS ? path.join(REPO_ROOT, 'docs', 'images', 'web-ui-run.png') : path.join(tempDir('recaption-web-ui-shot-'), 'web-ui-run.png');
    await page.screenshot({ path: screenshot });
    process.stderr.write(`web-ui.test.ts: screenshot ${screenshot}\n`);

    await startWorkers(['gpu']);
    await handle.result();
    const finished = await currentDetails();
    expect(finished).not.toBe(waiting);
    expect(finished).toMatch(/\*\*phase\*\* done/);
    await openTab('user-metadata-tab');
    await frameShowing(finished);
  });
});
