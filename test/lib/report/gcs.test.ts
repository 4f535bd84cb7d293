/** The report of a run stored on GCS (a real fake-gcs-server): listing, reads and atomic writes via gs://. */
import { buildReport, writeReport } from '../../../lib/report';
import { storageFor } from '../../../lib/storage';
import { startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { KNOWN, writeRun } from './fixtures';

let gcs: FakeGcs;
const saved = process.env.STORAGE_EMULATOR_HOST;

beforeAll(async () => {
  gcs = await startFakeGcs();
  process.env.STORAGE_EMULATOR_HOST = gcs.endpoint;
  await gcs.createBucket('runs');
});

afterAll(async () => {
  if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
  else process.env.STORAGE_EMULATOR_HOST = saved;
  await gcs?.stop();
});

it('builds and writes the report of a gs:// run', async () => {
  const runUri = await writeRun('gs://runs/out', KNOWN);
  expect(runUri).toBe('gs://runs/out/known');
  const w = await writeReport(runUri);
  expect(w).toMatchObject({ json: 'gs://runs/out/known/report.json', html: 'gs://runs/out/known/report.html' });
  expect(w.report.counts).toMatchObject({ samples: 7, kept: 3 });
  const storage = storageFor(runUri);
  expect(JSON.parse(await storage.readText(w.json)).counts.kept).toBe(3);
  expect(await storage.readText(w.html)).toContain('<svg class="plot"');
  // a sibling run whose name starts the same is not mixed in
  await writeRun('gs://runs/out', { ...KNOWN, name: 'known2' });
  expect((await buildReport(runUri)).counts.samples).toBe(7);
});
