/**
 * Two attempts at the same work at once (a Temporal retry while the first attempt still runs, a duplicated
 * activity): with no-clobber commits neither overwrites the other, both end with the committed result, and the run's
 * outputs equal a run without the duplicates — on local files and on a real fake-gcs-server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { loadClip } from '../../../lib/models';
import type { ClipScorer } from '../../../lib/models/types';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import { committedSummary, runShardStage, type ShardWork, type StageOutcome } from '../../../lib/pipeline/checkpoint';
import { finalizeRun } from '../../../lib/pipeline/finalize-stage';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../../lib/pipeline/write-stage';
import { RunLayout } from '../../../lib/run/layout';
import { DECISION_TABLE } from '../../../lib/run/tables';
import { generateSampleData } from '../../../lib/sampledata';
import { joinUri, storageFor } from '../../../lib/storage';
import { startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { givenModels, runAllStages } from '../../helpers/stages';

let gcs: FakeGcs;
let clip: ClipScorer;
let localInput: string;
const savedEnv = process.env.STORAGE_EMULATOR_HOST;
const SAMPLES = { shards: 2, perShard: 8, seed: 21, corrupt: 1 };

beforeAll(async () => {
  gcs = await startFakeGcs();
  process.env.STORAGE_EMULATOR_HOST = gcs.endpoint;
  await gcs.createBucket('race');
  localInput = path.join(tempDir(), 'in');
  await generateSampleData({ out: localInput, ...SAMPLES });
  await generateSampleData({ out: 'gs://race/in', ...SAMPLES });
  clip = await loadClip(TINY_CLIP);
});

afterAll(async () => {
  await clip?.release();
  if (savedEnv === undefined) delete process.env.STORAGE_EMULATOR_HOST;
  else process.env.STORAGE_EMULATOR_HOST = savedEnv;
  await gcs?.stop();
});

const config = (input: string, output: string) =>
  parseConfig(
    {
      run: { name: 'race', seed: 3 },
      input: { uri: input },
      output: { uri: output },
      strategy: { preset: 'raw-top30' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      // chunks of 2 samples: the racing attempts commit, list, assemble and drop many chunks of the same shard
      annotations: { chunkSize: 2 },
      score: { batchSize: 2 },
    },
    'test',
  );

/** What Temporal does with an attempt's failure: retry what may heal (never an InputError). Counts the retries. */
let retries = 0;
async function retrying<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof InputError || n >= 3) throw err;
      retries++;
    }
  }
}

/** Every name under a local folder (temp files included) or every object under a gs:// prefix. */
async function everything(root: string): Promise<string[]> {
  if (root.startsWith('gs://')) return storageFor(root).list(root);
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join((e as fs.Dirent & { parentPath: string }).parentPath, e.name));
}

let outputs = 0;
const backends = [
  { name: 'local files', input: () => localInput, output: () => path.join(tempDir(), 'out') },
  { name: 'fake-gcs-server', input: () => 'gs://race/in', output: () => `gs://race/out${outputs++}` },
];

describe.each(backends)('racing attempts on $name', (backend) => {
  it('runShardStage twice at once on one shard: one marker is committed, and both attempts return it', async () => {
    const plan = await planRun(config(backend.input(), backend.output()));
    // Both attempts finish their work before either commits its marker, so both try to commit it.
    let arrived = 0;
    let release!: () => void;
    const bothDone = new Promise<void>((r) => (release = r));
    const work = (id: string) => async (w: ShardWork): Promise<StageOutcome> => {
      const wrote = await w.storage.writeAtomic(joinUri(w.layout.runUri, 'probe', `${w.shard.name}.txt`), id);
      if (++arrived === 2) release();
      await bothDone;
      return { samples: 8, failed: 0, counts: { [`by-${id}`]: 1, wroteData: wrote.committed ? 1 : 0 } };
    };
    const [a, b] = await Promise.all([runShardStage('write', plan, 0, work('a')), runShardStage('write', plan, 0, work('b'))]);
    expect(b).toEqual(a);
    expect(a.skipped).toBe(false);
    const layout = new RunLayout(plan.runUri);
    const storage = storageFor(plan.runUri);
    expect(await committedSummary(storage, layout, 'write', '00000000')).toEqual(a);
    expect(['by-a', 'by-b']).toContain(Object.keys(a.counts!).find((k) => k.startsWith('by-')));
    // the data file was committed once too, by one of them
    expect(['a', 'b']).toContain(await storage.readText(joinUri(plan.runUri, 'probe', '00000000.txt')));
    // a later attempt finds the marker and does nothing
    const again = await runShardStage('write', plan, 0, async () => {
      throw new Error('a committed stage ran again');
    });
    expect(again).toEqual({ ...a, skipped: true });
  });

  it('every stage run twice at once gives one committed result per shard, equal to a run without duplicates', async () => {
    retries = 0;
    const out = backend.output();
    const cfg = config(backend.input(), out);
    // planned twice at once: both get the committed plan (its shard list and time), not each their own
    const [plan, plan2] = await Promise.all([planRun(cfg), planRun(cfg)]);
    expect(plan2).toEqual(plan);
    const load = givenModels(null, clip)(plan);
    const twice = async <T>(run: () => Promise<T>): Promise<[T, T]> => Promise.all([retrying(run), retrying(run)]);
    const same = <T extends { skipped?: boolean }>([x, y]: [T, T]) => expect({ ...y, skipped: false }).toEqual({ ...x, skipped: false });
    const layout = new RunLayout(plan.runUri);
    const storage = storageFor(plan.runUri);
    for (let i = 0; i < plan.shards.length; i++) {
      const pair = await twice(() => annotateShard(plan, i, load));
      same(pair);
      expect(await committedSummary(storage, layout, 'annotate', plan.shards[i]!.name)).toEqual({ ...pair[0], skipped: false });
    }
    const [t1, t2] = await twice(() => computeThresholds(plan));
    expect(t2).toEqual(t1);
    for (let i = 0; i < plan.shards.length; i++) {
      same(await twice(() => selectShard(plan, i)));
      same(await twice(() => writeShard(plan, i)));
    }
    const summary = await finalizeRun(plan);

    // The same run, once, without duplicates (local, fresh annotations).
    const refPlan = await planRun(config(localInput, path.join(tempDir(), 'ref')));
    const reference = await runAllStages(refPlan, null, clip);
    const refLayout = new RunLayout(refPlan.runUri);
    const local = storageFor(refPlan.runUri);
    expect({ samples: summary.samples, kept: summary.kept, dropped: summary.dropped, thresholds: summary.thresholds }).toEqual({
      samples: reference.samples,
      kept: reference.kept,
      dropped: reference.dropped,
      thresholds: reference.thresholds,
    });
    for (const shard of plan.shards) {
      expect(await DECISION_TABLE.read(storage, layout.decisions(shard.name))).toEqual(await DECISION_TABLE.read(local, refLayout.decisions(shard.name)));
      expect((await storage.readBuffer(layout.outputShard(shard.name))).equals(await local.readBuffer(refLayout.outputShard(shard.name)))).toBe(true);
    }
    // nothing half-done left: no temp file, no chunk of a shard whose annotation is committed
    const left = await everything(out);
    expect(left.filter((f) => /\.tmp-[0-9a-f]{16}$/.test(f) || f.includes('.chunks/'))).toEqual([]);
    // a duplicated attempt may have to be retried once (a chunk it listed was dropped by the winner), never failed
    expect(retries).toBeLessThanOrEqual(2 * plan.shards.length);
  });
});
