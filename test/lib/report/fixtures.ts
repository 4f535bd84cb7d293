/** Hand-built run folders (decision parquets + manifest + thresholds) with answers known in advance. */
import { DECISION_TABLE, type DecisionRow } from '../../../lib/run/tables';
import { joinUri, storageFor } from '../../../lib/storage';

export interface FixtureRun {
  name: string;
  preset: string;
  shards: Record<string, Array<Partial<DecisionRow>>>;
  thresholds?: Record<string, number | string>;
  failures?: Array<{ shard: string; stage: string; type: string; message: string }>;
  /** Shards in the manifest (default: the keys of `shards`). */
  planned?: string[];
}

let nextKey = 0;

export function row(r: Partial<DecisionRow>): DecisionRow {
  const key = r.key ?? String(nextKey++).padStart(12, '0');
  return {
    uid: r.uid ?? key.padStart(32, 'a'),
    key,
    kept: r.kept ?? false,
    source: r.source ?? null,
    caption: r.caption ?? (r.kept ? (r.source === 'raw' ? (r.raw_caption ?? '') : (r.synthetic_caption ?? null)) : null),
    raw_caption: r.raw_caption ?? '',
    synthetic_caption: r.synthetic_caption ?? null,
    s_raw: r.s_raw ?? null,
    s_syn: r.s_syn ?? null,
    reason: r.reason ?? null,
  };
}

/** Write the run under `root/<name>` and return its uri. */
export async function writeRun(root: string, run: FixtureRun): Promise<string> {
  const runUri = joinUri(root, run.name);
  const storage = storageFor(runUri);
  const planned = run.planned ?? Object.keys(run.shards);
  for (const [shard, rows] of Object.entries(run.shards)) {
    await storage.writeAtomic(joinUri(runUri, 'decisions', `${shard}.parquet`), DECISION_TABLE.encode(rows.map(row)));
  }
  const thresholds = run.thresholds ?? {};
  await storage.writeAtomic(
    joinUri(runUri, 'thresholds.json'),
    JSON.stringify({ preset: run.preset, fraction: null, thresholds, poolSize: 99, shardsScored: planned.length, method: 'exact' }),
  );
  for (const f of run.failures ?? []) {
    await storage.writeAtomic(joinUri(runUri, 'failures', f.stage, `${f.shard}.json`), JSON.stringify(f));
  }
  await storage.writeAtomic(
    joinUri(runUri, 'manifest.json'),
    JSON.stringify({
      version: 1,
      run: run.name,
      runUri,
      createdAt: '2024-01-01T00:00:00.000Z',
      finishedAt: '2024-01-01T01:00:00.000Z',
      config: { run: { name: run.name, seed: 0 }, strategy: { preset: run.preset } },
      configHash: 'abc123',
      thresholds,
      shards: planned.map((shard) => ({ shard, input: `${shard}.tar`, output: null, samples: 0, kept: 0 })),
      failures: run.failures ?? [],
    }),
  );
  return runUri;
}

/**
 * The known-answer run (scores at x.xxx5 so each sits in the middle of a 0.001 fine bin):
 *   00000000: kept raw (0.3205 / 0.1005), kept synthetic (0.1005 / 0.3505), dropped (0.1505 / 0.2005), decode_error
 *   00000001: kept raw (0.4005 / 0.2505), dropped (-0.0505 / 0.0505) with an empty raw caption, empty_image
 */
export const KNOWN: FixtureRun = {
  name: 'known',
  preset: 'raw30-synthetic70-filtered',
  thresholds: { 'raw@0.3': 0.3 },
  shards: {
    '00000000': [
      { kept: true, source: 'raw', raw_caption: 'A red car on the street', synthetic_caption: 'a car parked', s_raw: 0.3205, s_syn: 0.1005 },
      { kept: true, source: 'synthetic', raw_caption: 'img_0042.jpg', synthetic_caption: 'a dog running on the beach', s_raw: 0.1005, s_syn: 0.3505 },
      { raw_caption: 'click here', synthetic_caption: 'a red car on a road', s_raw: 0.1505, s_syn: 0.2005, reason: 'below_thresholds' },
      { raw_caption: 'best day ever', reason: 'decode_error' },
    ],
    '00000001': [
      { kept: true, source: 'raw', raw_caption: 'the red car on the street at night', synthetic_caption: 'a car at night', s_raw: 0.4005, s_syn: 0.2505 },
      { raw_caption: '', synthetic_caption: 'a blurry photo', s_raw: -0.0505, s_syn: 0.0505, reason: 'below_thresholds' },
      { raw_caption: 'sunset', reason: 'empty_image' },
    ],
  },
};

/** Pure junk alt-text: everything scored low and was dropped. */
export const JUNK: FixtureRun = {
  name: 'junk',
  preset: 'raw-top30',
  thresholds: { 'raw@0.3': 'inf' },
  shards: {
    '00000000': ['', '!!!', 'IMG_1234.JPG', 'untitled', 'DSC0001', 'click here'].map((raw_caption, i) => ({
      raw_caption,
      synthetic_caption: 'a photo of something',
      s_raw: 0.01 * i,
      s_syn: 0.2,
      reason: 'below_raw_threshold',
    })),
  },
};

/** Every image failed: no scores at all. */
export const ALL_FAILED: FixtureRun = {
  name: 'allfailed',
  preset: 'raw30-synthetic70-filtered',
  thresholds: { 'raw@0.3': '-inf' },
  shards: {
    '00000000': [
      { raw_caption: 'a cat', reason: 'decode_error' },
      { raw_caption: 'a dog', reason: 'decode_error' },
      { raw_caption: 'huge', reason: 'too_many_pixels' },
    ],
  },
};

/** A plan.json naming each shard's input tar (the fields of RunPlan the report reads). */
export async function writePlan(runUri: string, tars: Record<string, string>): Promise<void> {
  const shards = Object.entries(tars).map(([name, tar]) => ({ name, tar, parquet: null }));
  await storageFor(runUri).writeAtomic(joinUri(runUri, 'plan.json'), JSON.stringify({ version: 1, runName: 'plan', runUri, shards }));
}
