/** Resharding the kept samples into fixed-size shards: the plan, and the written shards on a real run. */
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { planReshard } from '../../../lib/pipeline/reshard';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { runAllStages } from '../../helpers/stages';

it('plans contiguous segments of exactly N samples', () => {
  expect(planReshard(['a', 'c'], [3, 5], 4)).toEqual([
    [{ shard: 'a', offset: 0, count: 3 }, { shard: 'c', offset: 0, count: 1 }],
    [{ shard: 'c', offset: 1, count: 4 }],
  ]);
  expect(planReshard(['a'], [10], 4).map((s) => s.reduce((n, x) => n + x.count, 0))).toEqual([4, 4, 2]);
  expect(planReshard([], [], 4)).toEqual([]);
});

it('writes the kept samples into fixed-size shards, in order, bytes untouched', async () => {
  const dir = tempDir();
  await generateSampleData({ out: path.join(dir, 'in'), shards: 2, perShard: 8, seed: 5, corrupt: 1 });
  const config = parseConfig(
    {
      run: { name: 'rs' },
      input: { uri: path.join(dir, 'in') },
      output: { uri: path.join(dir, 'out'), samplesPerShard: 5 },
      strategy: { preset: 'raw' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { maxLength: 6 },
    },
    'test',
  );
  const plan = await planRun(config);
  const captioner = await loadCaptioner(TINY_CAPTIONER);
  const clip = await loadClip(TINY_CLIP);
  let summary: Awaited<ReturnType<typeof runAllStages>>;
  try {
    summary = await runAllStages(plan, captioner, clip);
  } finally {
    await captioner.release();
    await clip.release();
  }
  // raw keeps all but the 2 corrupt images and the blank alt-texts
  expect(summary.kept).toBe(14 - (summary.dropped.empty_raw_caption ?? 0));
  expect(summary.resharded).toBe(Math.ceil(summary.kept / 5));

  const storage = storageFor(plan.runUri);
  const layout = new RunLayout(plan.runUri);
  const original: Array<[string, string]> = [];
  for (const s of plan.shards) {
    for await (const x of readWebDataset(storage.createReadStream(layout.outputShard(s.name)))) original.push([x.key, x.files.jpg.toString('base64')]);
  }
  const sizes: number[] = [];
  const resharded: Array<[string, string]> = [];
  for (let i = 0; i < summary.resharded; i++) {
    let n = 0;
    for await (const x of readWebDataset(storage.createReadStream(new RunLayout(plan.runUri).resharded(i)))) {
      resharded.push([x.key, x.files.jpg.toString('base64')]);
      n++;
    }
    sizes.push(n);
  }
  // every output shard but the last holds exactly 5
  expect(sizes).toEqual([...Array(summary.resharded - 1).fill(5), summary.kept - 5 * (summary.resharded - 1)]);
  expect(summary.resharded).toBeGreaterThanOrEqual(2);
  expect(resharded).toEqual(original);
});
