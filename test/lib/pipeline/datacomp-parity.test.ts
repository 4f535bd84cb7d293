/**
 * A DataComp-style pool whose shards carry `clip_l14_similarity_score` in their sibling parquets: `raw-top30`
 * with precomputed raw scores keeps exactly the uids DataComp's own rule keeps — threshold over the whole
 * metadata pool (failed downloads included), sorted descending at floor(n·0.3), keep >= — checked against a
 * plain sort here and against NumPy (DataComp's implementation) when python3 has it.
 */
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { decodeParquetRows, encodeParquetRows } from '../../../lib/formats/parquet';
import { IMG2DATASET_TABLE } from '../../../lib/formats/img2dataset';
import { finalizeRun } from '../../../lib/pipeline/finalize-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { writeShard } from '../../../lib/pipeline/write-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { DECISION_TABLE, type DecisionRow } from '../../../lib/run/tables';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { hasPython, runPython } from '../formats/python';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';

it('raw-top30 on precomputed clip_l14_similarity_score keeps exactly the uids DataComp keeps', async () => {
  const input = path.join(tempDir(), 'pool');
  await generateSampleData({ out: input, shards: 3, perShard: 12, seed: 21, failures: 2 });
  const storage = storageFor(input);
  const metadata: Array<{ uid: string; score: number; status: string }> = [];
  let k = 0;
  for (const shard of ['00000000', '00000001', '00000002']) {
    const uri = path.join(input, `${shard}.parquet`);
    const rows = await decodeParquetRows(await storage.readBuffer(uri));
    for (const r of rows) {
      // float32 scores with deliberate ties, like the real column
      r.clip_l14_similarity_score = Math.fround(0.15 + ((k++ * 37) % 23) / 100);
      metadata.push({ uid: r.uid as string, score: r.clip_l14_similarity_score as number, status: r.status as string });
    }
    // rewrites the generated parquet with the score column: an explicit replace
    await storage.writeAtomic(uri, encodeParquetRows([...IMG2DATASET_TABLE.columns, { name: 'clip_l14_similarity_score', type: 'FLOAT' }], rows), { replace: true });
  }

  const config = parseConfig(
    {
      run: { name: 'dc' },
      input: { uri: input },
      output: { uri: tempDir() },
      strategy: { preset: 'raw-top30' },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { maxLength: 6 },
      score: { rawScore: 'precomputed' },
    },
    'test',
  );
  const plan = await planRun(config);
  // raw-top30 on the pool's own scores needs no model at all: no annotate stage, no GPU worker.
  expect(plan.annotations.compute).toEqual([]);
  const t = await computeThresholds(plan);
  for (let i = 0; i < 3; i++) {
    await selectShard(plan, i);
    await writeShard(plan, i);
  }
  const summary = await finalizeRun(plan);

  // DataComp's rule over the metadata pool (36 rows, 6 of them failed downloads)
  expect(metadata).toHaveLength(36);
  const desc = metadata.map((m) => m.score).sort((a, b) => b - a);
  const tau = desc[Math.floor(desc.length * 0.3)];
  expect(t['raw@0.3']).toBe(tau);
  if (hasPython('numpy')) {
    const np = runPython<{ tau: number }>(
      'import json,sys,numpy as np; s=np.array(json.loads(sys.argv[1]),dtype=np.float32); n=int(len(s)*0.3); print(json.dumps({"tau": float(-np.sort(-s)[n])}))',
      [JSON.stringify(metadata.map((m) => m.score))],
    );
    expect(np.tau).toBe(tau);
  }
  // DataComp keeps every downloaded sample at or above tau; we also drop a blank alt-text (no caption to train on)
  // and say so: that is the one difference.
  const blank = new Set<string>();
  for (const shard of ['00000000', '00000001', '00000002']) {
    const uri = path.join(input, `${shard}.parquet`);
    for (const r of await decodeParquetRows(await storage.readBuffer(uri))) if (typeof r.caption !== 'string' || r.caption.trim() === '') blank.add(r.uid as string);
  }
  const atTau = metadata.filter((m) => m.status === 'success' && m.score >= tau);
  const expected = atTau.filter((m) => !blank.has(m.uid)).map((m) => m.uid).sort();
  expect(expected.length).toBeGreaterThan(5);

  const layout = new RunLayout(plan.runUri);
  const kept: string[] = [];
  for (const shard of ['00000000', '00000001', '00000002']) {
    const rows = await DECISION_TABLE.decode(await storageFor(plan.runUri).readBuffer(layout.decisions(shard)), layout.decisions(shard));
    for (const r of rows) {
      if (r.kept) kept.push(r.uid!);
      expect(r.s_raw).toBe(metadata.find((m) => m.uid === r.uid)!.score);
      if (blank.has(r.uid!) && r.s_raw! >= tau) expect(r.reason).toBe('empty_raw_caption');
    }
  }
  expect(kept.sort()).toEqual(expected);
  expect(summary.kept).toBe(expected.length);
  const stats = JSON.parse(await storageFor(plan.runUri).readText(layout.stats));
  expect(stats.raw_score).toBe('precomputed (clip_l14_similarity_score)');
});
