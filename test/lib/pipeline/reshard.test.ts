/** Resharding the kept samples into fixed-size shards: the plan, and the written shards on a real run. */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { planReshard, reshardRun } from '../../../lib/pipeline/reshard';
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
  /** Every resharded tar's samples, and each tar's size. */
  const readResharded = async () => {
    const sizes: number[] = [];
    const samples: Array<[string, string]> = [];
    for (const uri of (await storage.list(layout.reshardedDir)).filter((u) => u.endsWith('.tar'))) {
      let n = 0;
      for await (const x of readWebDataset(storage.createReadStream(uri))) {
        samples.push([x.key, x.files.jpg.toString('base64')]);
        n++;
      }
      sizes.push(n);
    }
    return { sizes, samples };
  };
  const first = await readResharded();
  // every output shard but the last holds exactly 5
  expect(first.sizes).toEqual([...Array(summary.resharded - 1).fill(5), summary.kept - 5 * (summary.resharded - 1)]);
  expect(summary.resharded).toBeGreaterThanOrEqual(2);
  expect(first.samples).toEqual(original);

  // As a resume does: an earlier execution resharded without shard 0 (it had failed), this one has it back. The
  // segments moved, so the earlier tars are removed and rewritten, not reused: no sample lost or listed twice.
  const manifest = JSON.parse(await readFile(layout.manifest, 'utf8')) as { shards: Array<{ shard: string; kept: number }>; outputs: { resharded: object } };
  expect(manifest.outputs.resharded).toMatchObject({ shards: summary.resharded, segments: layout.reshardedSegments });
  const kept = new Map(manifest.shards.map((r) => [r.shard, r.kept]));
  const withoutShard0 = new Map([...kept].filter(([shard]) => shard !== plan.shards[0]!.name));
  const earlier = await reshardRun(plan, withoutShard0, 5);
  expect(earlier.removedStale).toBeGreaterThan(0);
  expect((await readResharded()).samples).toEqual(original.slice(kept.get(plan.shards[0]!.name)));
  const again = await reshardRun(plan, kept, 5);
  expect(again).toEqual({ shards: summary.resharded, removedStale: expect.any(Number) });
  expect(again.removedStale).toBeGreaterThan(0);
  expect((await readResharded()).samples).toEqual(original);
  // The same segments again: every tar is reused as it is.
  const mtimes = await Promise.all(first.sizes.map((_, i) => storage.stat(layout.resharded(i))));
  expect(await reshardRun(plan, kept, 5)).toEqual({ shards: summary.resharded, removedStale: 0 });
  expect(await Promise.all(first.sizes.map((_, i) => storage.stat(layout.resharded(i))))).toEqual(mtimes);
  // An unreadable record trusts no tar: all are written again, with the same samples.
  await storage.writeAtomic(layout.reshardedSegments, '{not json', { replace: true });
  expect(await reshardRun(plan, kept, 5)).toEqual({ shards: summary.resharded, removedStale: summary.resharded });
  expect((await readResharded()).samples).toEqual(original);
});
