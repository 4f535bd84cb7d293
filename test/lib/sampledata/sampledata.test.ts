import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import {
  IMG2DATASET_TABLE,
  isDataCompUid,
  listShards,
  readImg2DatasetShard,
  readShardParquet,
  readShardStats,
  sampleKey,
  type Img2DatasetSample,
} from '../../../lib/formats/img2dataset';
import { storageFor } from '../../../lib/storage';
import { describeScene, generateSampleData, type SampleDataSummary } from '../../../lib/sampledata';
import { startFakeGcs, type FakeGcs } from '../../helpers/fake-gcs';
import { tempDir } from '../../helpers/paths';

let dir: string;
beforeAll(() => {
  dir = tempDir('recaption-sampledata-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function readShard(tar: string): Promise<Img2DatasetSample[]> {
  const out: Img2DatasetSample[] = [];
  for await (const s of readImg2DatasetShard(storageFor(tar), tar)) out.push(s);
  return out;
}

describe('generateSampleData', () => {
  let out: string;
  let summary: SampleDataSummary;
  let ms: number;
  beforeAll(async () => {
    out = path.join(dir, 'small');
    const t0 = performance.now();
    summary = await generateSampleData({ out, shards: 2, perShard: 16, seed: 7, failures: 2, corrupt: 2 });
    ms = performance.now() - t0;
  });

  it('is fast', () => {
    // Typically well under a second; the bound only catches pathological slowness on a loaded machine.
    expect(ms).toBeLessThan(5000);
  });

  it('writes exactly the img2dataset DataComp layout', () => {
    expect(fs.readdirSync(out).sort()).toEqual([
      '00000000.parquet',
      '00000000.tar',
      '00000000_stats.json',
      '00000001.parquet',
      '00000001.tar',
      '00000001_stats.json',
    ]);
    expect(summary).toMatchObject({ rows: 32, samples: 28, failures: 4, corrupt: 4, perShard: 16, seed: 7 });
    expect(summary.shards.map((s) => [s.shard, s.tar, s.samples, s.failures, s.corrupt])).toEqual([
      [0, path.join(out, '00000000.tar'), 14, 2, 2],
      [1, path.join(out, '00000001.tar'), 14, 2, 2],
    ]);
  });

  it('tar members are {key}.jpg/.txt/.json per sample, keys by the img2dataset formula, json matches the parquet', async () => {
    for (const shard of summary.shards) {
      const samples = await readShard(shard.tar);
      const rows = await readShardParquet(storageFor(shard.parquet), shard.parquet);
      expect(rows).toHaveLength(16);
      expect(rows.map((r) => r.key)).toEqual(Array.from({ length: 16 }, (_, i) => sampleKey(shard.shard, i)));
      const successes = rows.filter((r) => r.status === 'success');
      expect(samples.map((s) => s.key)).toEqual(successes.map((r) => r.key));
      for (const s of samples) {
        expect(Object.keys(s.files)).toEqual(['jpg', 'txt', 'json']);
        expect(s.key).toMatch(/^\d{12}$/);
        const row = rows.find((r) => r.key === s.key);
        expect(s.meta).toEqual(row);
        expect(Object.keys(s.meta ?? {})).toEqual(IMG2DATASET_TABLE.columns.map((c) => c.name));
        expect(s.caption).toBe(row?.caption);
        expect(s.meta?.sha256).toBe(createHash('sha256').update(s.image as Buffer).digest('hex'));
        expect(s.meta?.exif).toBe('{}');
      }
    }
  });

  it('uids are unique 32-hex DataComp uids; failures are parquet-only rows with nulls', async () => {
    const all = [];
    for (const shard of summary.shards) all.push(...(await readShardParquet(storageFor(shard.parquet), shard.parquet)));
    expect(all.every((r) => isDataCompUid(r.uid))).toBe(true);
    expect(new Set(all.map((r) => r.uid)).size).toBe(32);
    const failed = all.filter((r) => r.status === 'failed_to_download');
    expect(failed).toHaveLength(4);
    for (const f of failed) {
      expect(f.error_message).toEqual(expect.any(String));
      expect(f).toMatchObject({ width: null, height: null, original_width: null, original_height: null, exif: null, sha256: null });
      expect(summary.truth[f.uid as string].status).toBe('failed_to_download');
    }
    expect(all.filter((r) => r.status === 'success').every((r) => r.error_message === null)).toBe(true);
  });

  it('stats json has img2dataset fields and counts', async () => {
    for (const shard of summary.shards) {
      const raw = JSON.parse(fs.readFileSync(shard.stats, 'utf8')) as Record<string, unknown>;
      expect(Object.keys(raw)).toEqual(['count', 'successes', 'failed_to_download', 'failed_to_resize', 'duration', 'start_time', 'end_time', 'status_dict']);
      const stats = await readShardStats(storageFor(shard.stats), shard.stats);
      expect(stats).toMatchObject({ count: 16, successes: 14, failed_to_download: 2, failed_to_resize: 0 });
      expect(stats.end_time - stats.start_time).toBeCloseTo(stats.duration, 6);
      expect(Object.values(stats.status_dict).reduce((a, b) => a + b, 0)).toBe(16);
      expect(stats.status_dict.success).toBe(14);
    }
  });

  it('good images are real JPEGs of the recorded size; corrupt ones fail to decode even leniently', async () => {
    let good = 0;
    let bad = 0;
    for (const shard of summary.shards) {
      for (const s of await readShard(shard.tar)) {
        const truth = summary.truth[s.meta?.uid as string];
        if (truth.corrupt) {
          bad++;
          await expect(sharp(s.image as Buffer, { failOn: 'none' }).raw().toBuffer()).rejects.toThrow();
          continue;
        }
        good++;
        const m = await sharp(s.image as Buffer).metadata();
        expect(m.format).toBe('jpeg');
        expect([m.width, m.height]).toEqual([s.meta?.width, s.meta?.height]);
        expect(Math.max(m.width, m.height)).toBeLessThanOrEqual(512);
        expect(Math.min(m.width, m.height)).toBeGreaterThanOrEqual(1);
        expect([s.meta?.original_width, s.meta?.original_height]).toEqual([truth.original_width, truth.original_height]);
      }
    }
    expect([good, bad]).toEqual([24, 4]);
    expect(new Set(Object.values(summary.truth).flatMap((t) => (t.corrupt ? [t.corrupt] : [])))).toEqual(new Set(['truncated', 'garbage']));
  });

  it('ground truth describes each scene; accurate captions contain it, others do not', () => {
    for (const t of Object.values(summary.truth)) {
      expect(t.description).toBe(describeScene(t.scene));
      expect(t.description).toMatch(/^(a|an|two|three) .+ on an? \w+ background/);
      if (t.captionKind === 'accurate') expect(t.caption.toLowerCase()).toContain(t.description.toLowerCase().replace(/\.$/, ''));
      if (t.captionKind === 'empty') expect(t.caption).toBe('');
      if (t.captionKind === 'junk' || t.captionKind === 'vague') expect(t.caption).not.toContain('background');
    }
  });

  it('is deterministic in the seed', async () => {
    const again = path.join(dir, 'again');
    await generateSampleData({ out: again, shards: 2, perShard: 16, seed: 7, failures: 2, corrupt: 2 });
    for (const f of fs.readdirSync(out)) {
      expect(fs.readFileSync(path.join(again, f)).equals(fs.readFileSync(path.join(out, f)))).toBe(true);
    }
    const other = await generateSampleData({ out: path.join(dir, 'other'), shards: 1, perShard: 16, seed: 8 });
    expect(Object.keys(other.truth)).not.toEqual(Object.keys(summary.truth).slice(0, 16));
  });

  it('produces every caption kind over a larger run', async () => {
    const big = await generateSampleData({ out: path.join(dir, 'kinds'), shards: 1, perShard: 120, seed: 1 });
    const kinds = new Set(Object.values(big.truth).map((t) => t.captionKind));
    expect(kinds).toEqual(new Set(['accurate', 'vague', 'junk', 'empty']));
    const shapes = new Set(Object.values(big.truth).flatMap((t) => t.scene.shapes.map((s) => s.kind)));
    expect(shapes.size).toBeGreaterThanOrEqual(5);
    expect(Object.values(big.truth).some((t) => t.scene.word)).toBe(true);
    const aspect = Object.values(big.truth).map((t) => t.width / t.height);
    expect(Math.min(...aspect)).toBeLessThan(0.75);
    expect(Math.max(...aspect)).toBeGreaterThan(1.33);
  });

  it('validates its options', async () => {
    await expect(generateSampleData({ out: path.join(dir, 'bad'), shards: 1, perShard: 4, failures: 3, corrupt: 2 })).rejects.toThrow(RangeError);
    await expect(generateSampleData({ out: path.join(dir, 'bad'), shards: 1, perShard: 0 })).rejects.toThrow(RangeError);
  });
});

describe('generateSampleData to gs:// (fake-gcs-server)', () => {
  let gcs: FakeGcs;
  beforeAll(async () => {
    gcs = await startFakeGcs();
    await gcs.createBucket('samples');
  });
  afterAll(async () => {
    await gcs?.stop();
  });

  it('writes the same layout to a bucket, readable through Storage', async () => {
    const opts = { gcsApiEndpoint: gcs.endpoint };
    const out = 'gs://samples/datacomp/small';
    const summary = await generateSampleData({ out, shards: 2, perShard: 8, seed: 3, failures: 1, corrupt: 1, storage: opts });
    const st = storageFor(out, opts);
    const shards = await listShards(st, out);
    expect(shards.map((s) => [s.tar, s.parquet, s.stats])).toEqual(summary.shards.map((s) => [s.tar, s.parquet, s.stats]));
    expect(shards[1].tar).toBe('gs://samples/datacomp/small/00000001.tar');
    let n = 0;
    for await (const s of readImg2DatasetShard(st, shards[0].tar)) {
      expect(isDataCompUid(s.meta?.uid)).toBe(true);
      n++;
    }
    expect(n).toBe(7);
    // identical bytes to a local run with the same seed
    const local = path.join(dir, 'gcs-twin');
    await generateSampleData({ out: local, shards: 2, perShard: 8, seed: 3, failures: 1, corrupt: 1 });
    expect((await st.readBuffer(shards[0].tar)).equals(fs.readFileSync(path.join(local, '00000000.tar')))).toBe(true);
  });
});
