/**
 * Every sample accounted for, through the real stages on real tars: inputs that real pools contain (keys in folders,
 * duplicated keys and uids, metadata that is not an object, text that is not UTF-8, a missing or malformed uid, a
 * blank alt-text, a key that would escape the output, no image, a corrupt image, a zero-byte tar) each end as a
 * recorded reason or a recorded bad shard; finalize checks samples in = kept + dropped + failed and that every kept
 * sample is written once, and fails a run whose accounting does not close. A property test throws random shards at it.
 */
import { rm, readFile, writeFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import * as tar from 'tar-stream';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { decodeSubsetNpy } from '../../../lib/formats/subset';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { finalizeRun } from '../../../lib/pipeline/finalize-stage';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { writeShard } from '../../../lib/pipeline/write-stage';
import { recordShardFailure } from '../../../lib/run/failures';
import { RunLayout } from '../../../lib/run/layout';
import type { RunPlan } from '../../../lib/run/plan';
import { DECISION_TABLE, type DecisionRow } from '../../../lib/run/tables';
import { storageFor } from '../../../lib/storage';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { hasPython, runPython } from '../formats/python';

type Member = [name: string, data: Buffer | string];

async function writeTar(file: string, members: Member[]): Promise<void> {
  // tar-stream directly: our own writer refuses the member names some of these tests need.
  const pack = tar.pack();
  for (const [name, data] of members) pack.entry({ name, mtime: new Date(0) }, typeof data === 'string' ? Buffer.from(data) : data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  await writeFile(file, Buffer.concat(chunks));
}

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 40, b: 90 } } }).jpeg().toBuffer();
});

const uid = (n: number) => n.toString(16).padStart(32, '0');
const meta = (key: string, u: string | null | number, caption = 'a red square') => JSON.stringify({ key, caption, url: `http://x/${key}`, status: 'success', ...(u === null ? {} : { uid: u }) });
const sample = (key: string, u: string | null | number, caption = 'a red square', image: Buffer | null = jpeg): Member[] => [
  ...(image ? ([[`${key}.jpg`, image]] as Member[]) : []),
  [`${key}.txt`, caption],
  [`${key}.json`, meta(key, u, caption)],
];

function config(input: string, preset = 'raw', extra: object = {}) {
  return parseConfig(
    { run: { name: 'acc' }, input: { uri: input }, output: { uri: path.join(path.dirname(input), 'out') }, strategy: { preset }, models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } }, ...extra },
    'test',
  );
}

/** The CPU stages of a run that needs no model, recording a bad shard the way the activities do. */
async function runCpuStages(plan: RunPlan) {
  await computeThresholds(plan);
  for (let i = 0; i < plan.shards.length; i++) {
    for (const [stage, run] of [['select', () => selectShard(plan, i)], ['write', () => writeShard(plan, i)]] as const) {
      try {
        if ((await run()).failedEarlier) break;
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        await recordShardFailure(storageFor(plan.runUri), new RunLayout(plan.runUri), stage, { shard: plan.shards[i]!.name, type: err.type, message: err.message });
        break;
      }
    }
  }
  return finalizeRun(plan);
}

async function decisions(plan: RunPlan, shard: string): Promise<DecisionRow[]> {
  const uri = new RunLayout(plan.runUri).decisions(shard);
  return DECISION_TABLE.read(storageFor(uri), uri);
}

describe('every sample accounted for', () => {
  it('records each bad input as a reason, writes only what is kept, and closes the accounting', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in');
    await mkdir(input);
    await writeTar(path.join(input, '00000000.tar'), [
      ...sample('000000000000', uid(1)),
      ...sample('v1.0/000000000001', uid(2)), // a folder in the key: written as named
      ...sample('000000000002', uid(3)),
      ...sample('000000000000', uid(4)), // the first sample's key again, further on
      ['000000000004.jpg', jpeg],
      ['000000000004.txt', 'a caption'],
      ['000000000004.json', '[1, 2, 3]'], // not an object
      ...sample('000000000005', null), // no uid
      ...sample('000000000006', 'not-a-uid'),
      ...sample('000000000007', uid(1)), // the first sample's uid again
      ['000000000008.jpg', jpeg],
      ['000000000008.txt', Buffer.from([0x61, 0xff, 0xfe, 0x62])], // not UTF-8
      ['000000000008.json', meta('000000000008', uid(9))],
      ...sample('000000000009', uid(10), '   '), // a blank alt-text
      ...sample('x/../000000000010', uid(11)), // would leave the output prefix
      ...sample('000000000011', uid(12), 'no image here', null),
      ...sample('000000000012', uid(13), 'a broken image', jpeg.subarray(0, 40)),
    ]);
    await writeFile(path.join(input, '00000001.tar'), ''); // a zero-byte shard
    const plan = await planRun(config(input));
    const summary = await runCpuStages(plan);

    const rows = await decisions(plan, '00000000');
    expect(rows.map((r) => [r.key, r.kept ? 'kept' : r.reason])).toEqual([
      ['000000000000', 'kept'],
      ['v1.0/000000000001', 'kept'],
      ['000000000002', 'kept'],
      ['000000000000', 'duplicate_key'],
      ['000000000004', 'bad_metadata'],
      ['000000000005', 'missing_uid'],
      ['000000000006', 'bad_uid'],
      ['000000000007', 'duplicate_uid'],
      ['000000000008', 'bad_text'],
      ['000000000009', 'empty_raw_caption'],
      ['x/../000000000010', 'unsafe_key'],
      ['000000000011', 'missing_image'],
      ['000000000012', 'decode_error'],
    ]);
    expect(summary).toMatchObject({ shards: 2, failedShards: 1, samples: 13, kept: 3 });

    // Exactly the kept samples are written, the folder key as named, each with its own image and caption.
    const layout = new RunLayout(plan.runUri);
    const written: string[] = [];
    for await (const s of readWebDataset(storageFor(plan.runUri).createReadStream(layout.outputShard('00000000')))) {
      written.push(s.key);
      expect(JSON.parse(s.files.json!.toString()).key).toBe(s.key);
    }
    expect(written).toEqual(['000000000000', 'v1.0/000000000001', '000000000002']);
    expect(decodeSubsetNpy(await readFile(layout.subset))).toEqual([uid(1), uid(2), uid(3)]);
    if (hasPython('webdataset')) {
      const keys = runPython<string[]>('import json,sys,webdataset as wds; print(json.dumps([s["__key__"] for s in wds.WebDataset(sys.argv[1], shardshuffle=False)]))', [layout.outputShard('00000000')]);
      expect(keys).toEqual(written);
    }

    // The zero-byte tar is a recorded bad shard: no output listed for it, and the manifest says why.
    const manifest = JSON.parse(await readFile(layout.manifest, 'utf8'));
    expect(manifest.shards.find((s: { shard: string }) => s.shard === '00000001')).toMatchObject({ output: null, failed: true });
    expect(manifest.failures).toEqual([expect.objectContaining({ shard: '00000001', type: 'CorruptShard', message: expect.stringContaining('zero-byte') })]);
    for (const s of manifest.shards) if (s.output) expect(storageFor(s.output).exists(s.output)).resolves.toBe(true);
    expect(JSON.parse(await readFile(layout.stats, 'utf8'))).toMatchObject({ failed_shards: 1, samples: 13, kept: 3 });
  });

  it('records a shard whose output cannot be written as a failed shard at that stage, and lists no output for it', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in');
    await mkdir(input);
    for (const n of [0, 1]) await writeTar(path.join(input, `0000000${n}.tar`), [...sample(`00000000${n}000`, uid(30 + n)), ...sample(`00000000${n}001`, uid(40 + n))]);
    const plan = await planRun(config(input));
    const layout = new RunLayout(plan.runUri);
    // A folder where shard 1's output tar goes: not writable, and no retry would change that.
    await mkdir(path.join(layout.outputShardsDir, '00000001.tar'), { recursive: true });
    const summary = await runCpuStages(plan);
    expect(summary).toMatchObject({ failedShards: 1, samples: 2, kept: 2 });
    const manifest = JSON.parse(await readFile(layout.manifest, 'utf8'));
    expect(manifest.failures).toEqual([expect.objectContaining({ shard: '00000001', stage: 'write' })]);
    expect(manifest.shards.find((s: { shard: string }) => s.shard === '00000001')).toMatchObject({ output: null, failed: true });
    expect(decodeSubsetNpy(await readFile(layout.subset))).toEqual([uid(30), uid(40)]);
  });

  it('refuses a shard replaced since the run was planned, instead of pairing its samples with the old results', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in');
    await mkdir(input);
    await writeTar(path.join(input, '00000000.tar'), sample('000000000000', uid(50)));
    const plan = await planRun(config(input));
    await new Promise((r) => setTimeout(r, 20));
    await writeTar(path.join(input, '00000000.tar'), [...sample('000000000000', uid(51)), ...sample('000000000001', uid(52))]);
    await expect(selectShard(plan, 0)).rejects.toMatchObject({ type: 'InputChanged', message: expect.stringContaining('00000000.tar changed since the run was planned') });
  });

  it('fails a run whose accounting does not close, naming the shards and counts', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in');
    await mkdir(input);
    for (const n of [0, 1]) await writeTar(path.join(input, `0000000${n}.tar`), [...sample(`00000000${n}000`, uid(10 + n)), ...sample(`00000000${n}001`, uid(20 + n))]);
    const plan = await planRun(config(input));
    await runCpuStages(plan);
    const layout = new RunLayout(plan.runUri);
    // An output tar that is not there...
    await rm(layout.done('write', '00000001'));
    await expect(finalizeRun(plan)).rejects.toMatchObject({ type: 'AccountingMismatch', message: expect.stringMatching(/00000001 \(2 in, 2 kept, 0 dropped, 0 failed\): no committed output tar/) });
    // ...or a shard with neither decisions nor a recorded failure.
    await rm(layout.done('select', '00000000'));
    await expect(finalizeRun(plan)).rejects.toThrow(/00000000: no committed decisions and no recorded failure/);
  });

  it('closes the accounting for random shards of good, duplicated, blank, malformed and broken members', async () => {
    const kinds = ['good', 'good', 'good', 'dupKey', 'dupUid', 'blank', 'badJson', 'noUid', 'noImage', 'brokenImage', 'folderKey'] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.constantFrom(...kinds), { minLength: 0, maxLength: 10 }), { minLength: 1, maxLength: 3 }), async (shards) => {
        const dir = tempDir('recaption-prop-');
        const input = path.join(dir, 'in');
        await mkdir(input);
        let n = 0;
        for (const [s, kinds] of shards.entries()) {
          const members: Member[] = [];
          for (const kind of kinds) {
            const key = `${String(s).padStart(8, '0')}${String(n % 10000).padStart(4, '0')}`;
            const u = uid(++n);
            if (kind === 'good') members.push(...sample(key, u));
            else if (kind === 'dupKey') members.push(...sample(`${String(s).padStart(8, '0')}0000`, u));
            else if (kind === 'dupUid') members.push(...sample(key, uid(1_000_000 + s))); // a duplicate within the shard only
            else if (kind === 'blank') members.push(...sample(key, u, ' '));
            else if (kind === 'badJson') members.push([`${key}.jpg`, jpeg], [`${key}.json`, '"text"']);
            else if (kind === 'noUid') members.push(...sample(key, null));
            else if (kind === 'noImage') members.push(...sample(key, u, 'x y z', null));
            else if (kind === 'brokenImage') members.push(...sample(key, u, 'x y z', jpeg.subarray(0, 30)));
            else members.push(...sample(`d.${s}/${key}`, u));
          }
          await writeTar(path.join(input, `${String(s).padStart(8, '0')}.tar`), members);
        }
        const plan = await planRun(config(input));
        const summary = await runCpuStages(plan); // throws when the accounting does not close
        const failed = Object.entries(summary.dropped).filter(([r]) => r !== 'empty_raw_caption').reduce((a, [, v]) => a + v, 0);
        expect(summary.kept + (summary.dropped.empty_raw_caption ?? 0) + failed).toBe(summary.samples);
        // Each shard is either accounted sample by sample or a recorded bad shard (a key repeated in consecutive
        // members is one sample with a member twice: the tar is refused, as Python's webdataset refuses it).
        const manifest = JSON.parse(await readFile(new RunLayout(plan.runUri).manifest, 'utf8')) as { shards: Array<{ shard: string; samples: number; failed?: true }>; failures: Array<{ shard: string; type: string }> };
        for (const [i, kinds] of shards.entries()) {
          const row = manifest.shards[i]!;
          if (row.failed) expect(manifest.failures.find((f) => f.shard === row.shard)?.type).toBe('CorruptShard');
          else expect(row.samples).toBe(kinds.length);
        }
        const subset = decodeSubsetNpy(await readFile(new RunLayout(plan.runUri).subset));
        expect(subset).toHaveLength(summary.kept);
        await rm(dir, { recursive: true, force: true });
      }),
      { numRuns: 12, seed: 20261130 },
    );
  }, 300_000);
});
