import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import {
  Img2DatasetShardWriter,
  IMG2DATASET_TABLE,
  isDataCompUid,
  listShards,
  parseSampleKey,
  parseSampleMeta,
  parseShardStats,
  pythonJsonDumps,
  readImg2DatasetShard,
  readShardParquet,
  readShardStats,
  sampleKey,
  shardName,
  shardParquetName,
  shardStatsName,
  shardTarName,
  toImg2DatasetSample,
  type Img2DatasetSample,
} from '../../../lib/formats/img2dataset';
import { parquetColumns } from '../../../lib/formats/parquet';
import { storageFor } from '../../../lib/storage';
import { tempDir } from '../../helpers/paths';
import { hasPython, runPython } from './python';

let dir: string;
beforeAll(() => {
  dir = tempDir('recaption-i2d-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('img2dataset naming', () => {
  it('names shards {shard:08d} and keys with compute_key (DataComp: 8 + 4 digits)', () => {
    expect(shardName(3)).toBe('00000003');
    expect(shardTarName(12)).toBe('00000012.tar');
    expect(shardParquetName(12)).toBe('00000012.parquet');
    expect(shardStatsName(12)).toBe('00000012_stats.json');
    expect(sampleKey(0, 0)).toBe('000000000000');
    expect(sampleKey(3, 17)).toBe('000000030017');
    expect(sampleKey(12345678, 9999)).toBe('123456789999');
    expect(parseSampleKey('000000030017')).toEqual({ shard: 3, index: 17 });
    // img2dataset's defaults: oom_shard_count 5; 1000 per shard -> 3 sample digits
    expect(sampleKey(7, 5, { shardDigits: 5, samplesPerShard: 1000 })).toBe('00007005');
    expect(() => sampleKey(0, 10_000)).toThrow(RangeError);
  });

  it('recognises DataComp uids', () => {
    expect(isDataCompUid('0123456789abcdef0123456789abcdef')).toBe(true);
    expect(isDataCompUid('0123456789ABCDEF0123456789ABCDEF')).toBe(false);
    expect(isDataCompUid('0123')).toBe(false);
  });

  it("dumps JSON like Python's json.dumps(indent=4) (ensure_ascii)", () => {
    expect(pythonJsonDumps({ a: 'é✓', b: null, c: [1, 2] })).toBe('{\n    "a": "\\u00e9\\u2713",\n    "b": null,\n    "c": [\n        1,\n        2\n    ]\n}');
  });
});

describe('img2dataset shard writer and readers', () => {
  const uid = (i: number): string => createHash('md5').update(String(i)).digest('hex');

  async function writeShard(folder: string, shard: number): Promise<Buffer[]> {
    const st = storageFor(folder);
    const w = await Img2DatasetShardWriter.open(st, folder, shard, { startTime: 1000 });
    const images: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      if (i === 2) {
        w.writeFailure({ index: i, uid: uid(i), url: `http://x/${i}`, caption: 'lost', error_message: 'HTTP Error 404: Not Found' });
        continue;
      }
      const image = randomBytes(300);
      images.push(image);
      await w.writeSuccess({
        index: i,
        uid: uid(i),
        url: `http://x/${i}.jpg`,
        caption: i === 3 ? null : `caption ${i}`,
        image,
        width: 10 + i,
        height: 20,
        original_width: 100,
        original_height: 200,
      });
    }
    const stats = await w.close({ endTime: 1002.5 });
    expect(stats).toMatchObject({ count: 5, successes: 4, failed_to_download: 1, failed_to_resize: 0, duration: 2.5 });
    return images;
  }

  it('writes the tar, the parquet with every row, and the stats; readers return them', async () => {
    const folder = path.join(dir, 'out');
    const images = await writeShard(folder, 4);
    const st = storageFor(folder);
    expect(fs.readdirSync(folder).sort()).toEqual(['00000004.parquet', '00000004.tar', '00000004_stats.json']);

    const samples: Img2DatasetSample[] = [];
    for await (const s of readImg2DatasetShard(st, path.join(folder, '00000004.tar'))) samples.push(s);
    expect(samples.map((s) => s.key)).toEqual(['000000040000', '000000040001', '000000040003', '000000040004']);
    expect(samples.map((s) => Object.keys(s.files))).toEqual(Array(4).fill(['jpg', 'txt', 'json']));
    expect(samples.map((s) => s.image?.equals(images[samples.indexOf(s)]))).toEqual([true, true, true, true]);
    expect(samples[2].caption).toBe(''); // img2dataset writes "" for a missing caption
    const meta = samples[0].meta;
    expect(Object.keys(meta ?? {})).toEqual(IMG2DATASET_TABLE.columns.map((c) => c.name));
    expect(meta).toEqual({
      uid: uid(0),
      caption: 'caption 0',
      url: 'http://x/0.jpg',
      key: '000000040000',
      status: 'success',
      error_message: null,
      width: 10,
      height: 20,
      original_width: 100,
      original_height: 200,
      exif: '{}',
      sha256: createHash('sha256').update(images[0]).digest('hex'),
    });
    expect(samples[0].files.json.toString()).toBe(pythonJsonDumps(meta));

    const rows = await readShardParquet(st, path.join(folder, '00000004.parquet'));
    expect(rows.map((r) => [r.key, r.status])).toEqual([
      ['000000040000', 'success'],
      ['000000040001', 'success'],
      ['000000040002', 'failed_to_download'],
      ['000000040003', 'success'],
      ['000000040004', 'success'],
    ]);
    expect(rows[2]).toMatchObject({ error_message: 'HTTP Error 404: Not Found', width: null, sha256: null, exif: null, caption: 'lost' });
    const buf = fs.readFileSync(path.join(folder, '00000004.parquet'));
    expect(parquetColumns(buf).map((c) => `${c.name}:${c.type}`)).toEqual(IMG2DATASET_TABLE.columns.map((c) => `${c.name}:${c.type}`));

    const stats = await readShardStats(st, path.join(folder, '00000004_stats.json'));
    expect(stats).toEqual({
      count: 5,
      successes: 4,
      failed_to_download: 1,
      failed_to_resize: 0,
      duration: 2.5,
      start_time: 1000,
      end_time: 1002.5,
      status_dict: { success: 4, 'HTTP Error 404: Not Found': 1 },
    });
  });

  it('lists shards of a folder with their siblings, sorted by id, ignoring sub-folders and other files', async () => {
    const folder = path.join(dir, 'list');
    await writeShard(folder, 10);
    await writeShard(folder, 2);
    fs.writeFileSync(path.join(folder, '00000007.tar'), ''); // a shard without siblings
    fs.writeFileSync(path.join(folder, 'notes.txt'), '');
    fs.mkdirSync(path.join(folder, 'sub'));
    fs.writeFileSync(path.join(folder, 'sub', '00000001.tar'), '');
    const shards = await listShards(storageFor(folder), folder);
    // every tar carries its content fingerprint (size + mtime locally); the rest is laid out by name
    for (const s of shards) expect(s.fingerprint).toBe(`${fs.statSync(s.tar).size}:mtime=${fs.statSync(s.tar).mtimeMs}`);
    expect(shards.map(({ fingerprint: _f, ...rest }) => rest)).toEqual([
      { shard: 2, name: '00000002', tar: path.join(folder, '00000002.tar'), parquet: path.join(folder, '00000002.parquet'), stats: path.join(folder, '00000002_stats.json') },
      { shard: 7, name: '00000007', tar: path.join(folder, '00000007.tar'), parquet: null, stats: null },
      { shard: 10, name: '00000010', tar: path.join(folder, '00000010.tar'), parquet: path.join(folder, '00000010.parquet'), stats: path.join(folder, '00000010_stats.json') },
    ]);
    expect(await listShards(storageFor(folder), path.join(dir, 'nothing-here'))).toEqual([]);
  });

  it('abort leaves no shard files', async () => {
    const folder = path.join(dir, 'aborted');
    const w = await Img2DatasetShardWriter.open(storageFor(folder), folder, 0);
    await w.writeSuccess({ index: 0, uid: uid(0), url: 'u', caption: 'c', image: randomBytes(10), width: 1, height: 1, original_width: 1, original_height: 1 });
    await w.abort();
    expect(fs.readdirSync(folder)).toEqual([]);
  });

  it('one bad sample json does not fail the shard; bad stats / metadata are CorruptInput', () => {
    expect(() => parseSampleMeta('{"url": 1}', 'x.json')).toThrow(InputError);
    const s = toImg2DatasetSample({ key: 'k', files: { jpg: Buffer.from('x'), txt: Buffer.from('cap'), json: Buffer.from('{oops') } }, 'a.tar');
    expect(s).toMatchObject({ key: 'k', imageExt: 'jpg', caption: 'cap', meta: null, metaError: expect.stringContaining('a.tar/k.json') });
    expect(() => parseShardStats('[]', 's.json')).toThrow(/s\.json/);
    // an older img2dataset stats file (no start/end times) still parses
    expect(parseShardStats('{"count": 1, "successes": 1, "failed_to_download": 0, "failed_to_resize": 0, "duration": 2, "status_dict": {"success": 1}}')).toMatchObject({
      start_time: 0,
      end_time: 2,
    });
  });

  (hasPython('pyarrow', 'webdataset') ? it : it.skip)('python webdataset and pyarrow read the shard', async () => {
    const folder = path.join(dir, 'py');
    await writeShard(folder, 1);
    const out = runPython<{ keys: string[]; exts: string[]; uids: string[]; rows: number; types: Record<string, string> }>(
      `
import json, sys, webdataset as wds, pyarrow.parquet as pq
keys, exts, uids = [], None, []
for s in wds.WebDataset(sys.argv[1] + "/00000001.tar", shardshuffle=False):
    keys.append(s["__key__"]); exts = sorted(k for k in s if not k.startswith("__")); uids.append(json.loads(s["json"])["uid"])
t = pq.read_table(sys.argv[1] + "/00000001.parquet")
print(json.dumps({"keys": keys, "exts": exts, "uids": uids, "rows": t.num_rows, "types": {f.name: str(f.type) for f in t.schema}}))
`,
      [folder],
    );
    expect(out.keys).toEqual(['000000010000', '000000010001', '000000010003', '000000010004']);
    expect(out.exts).toEqual(['jpg', 'json', 'txt']);
    expect(out.uids).toEqual([0, 1, 3, 4].map(uid));
    expect(out.rows).toBe(5);
    expect(out.types).toMatchObject({ uid: 'string', key: 'string', width: 'int32', original_height: 'int32', sha256: 'string' });
  });
});
