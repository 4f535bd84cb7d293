/**
 * The same stages with input and output on GCS (a real fake-gcs-server speaking the JSON API):
 * every read, atomic write, listing and commit marker goes through @google-cloud/storage.
 */
import { parseConfig } from '../../../lib/config/load';
import { decodeSubsetNpy } from '../../../lib/formats/subset';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { DECISION_TABLE, type DecisionRow } from '../../../lib/run/tables';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { TINY_CAPTIONER, TINY_CLIP } from '../../helpers/paths';
import { annotationFile } from '../../helpers/annotations';
import { noModels, runAllStages } from '../../helpers/stages';

let gcs: FakeGcs;
const saved = process.env.STORAGE_EMULATOR_HOST;

beforeAll(async () => {
  gcs = await startFakeGcs();
  process.env.STORAGE_EMULATOR_HOST = gcs.endpoint;
  await gcs.createBucket('pool');
});

afterAll(async () => {
  if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
  else process.env.STORAGE_EMULATOR_HOST = saved;
  await gcs?.stop();
});

it('runs every stage from gs:// input to gs:// output', async () => {
  await generateSampleData({ out: 'gs://pool/shards', shards: 2, perShard: 5, seed: 4, corrupt: 1 });
  const config = parseConfig(
    {
      run: { name: 'gcs-run' },
      input: { uri: 'gs://pool/shards' },
      output: { uri: 'gs://pool/curated' },
      strategy: { preset: 'raw30-synthetic70' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { maxLength: 8 },
    },
    'test',
  );
  const plan = await planRun(config);
  expect(plan.runUri).toBe('gs://pool/curated/gcs-run');
  expect(plan.shards.map((s) => s.tar)).toEqual(['gs://pool/shards/00000000.tar', 'gs://pool/shards/00000001.tar']);
  const captioner = await loadCaptioner(TINY_CAPTIONER);
  const clip = await loadClip(TINY_CLIP);
  try {
    const summary = await runAllStages(plan, captioner, clip);
    // raw30-synthetic70 drops nothing but the undecodable images
    expect(summary.samples).toBe(10);
    expect(summary.kept).toBe(8);
    expect(summary.dropped).toEqual({ decode_error: 2 });

    const storage = storageFor('gs://pool');
    const layout = new RunLayout(plan.runUri);
    const decisions = await DECISION_TABLE.decode(await storage.readBuffer(layout.decisions('00000001')), layout.decisions('00000001'));
    expect(decisions).toHaveLength(5);
    let written = 0;
    for await (const s of readWebDataset(storage.createReadStream(layout.outputShard('00000001')))) {
      expect(decisions.find((d) => d.key === s.key)?.caption).toBe(s.files.txt.toString());
      written++;
    }
    expect(written).toBe(4);
    expect(decodeSubsetNpy(await storage.readBuffer(layout.subset))).toHaveLength(8);
    expect((await annotateShard(plan, 0, noModels)).skipped).toBe(true);
    // the shared annotations sit next to the runs, on the bucket
    expect(plan.annotations.root).toBe('gs://pool/curated/_annotations');
    expect(await storage.exists(annotationFile(plan, 'captions', 1))).toBe(true);
  } finally {
    await captioner.release();
    await clip.release();
  }
});
