/**
 * Every preset end to end on the same sample data (stages as functions), writing every output; then the
 * field's own readers open them when python3 has them: pyarrow, pandas and DuckDB read the decision parquet,
 * webdataset reads the output shard, numpy reads the DataComp subset file.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encodeFloatMatrix } from '../../../lib/formats/npy';
import { parseConfig } from '../../../lib/config/load';
import { decodeSubsetNpy } from '../../../lib/formats/subset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import type { Captioner, ClipScorer } from '../../../lib/models/types';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { DECISION_TABLE, type DecisionRow } from '../../../lib/run/tables';
import { generateSampleData } from '../../../lib/sampledata';
import { PRESET_NAMES } from '../../../lib/strategies/presets';
import { hasPython, runPython } from '../formats/python';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { runAllStages } from '../../helpers/stages';

let captioner: Captioner;
let clip: ClipScorer;
let dir: string;

beforeAll(async () => {
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  dir = tempDir();
  await generateSampleData({ out: path.join(dir, 'in'), shards: 2, perShard: 8, seed: 13, corrupt: 1 });
  writeFileSync(path.join(dir, 'c.npy'), encodeFloatMatrix(Float32Array.from({ length: 4 * 32 }, (_, i) => Math.sin(i * 1.7)), 4, 32));
  writeFileSync(path.join(dir, 't.txt'), '0\n1\n');
});

afterAll(async () => {
  await captioner?.release();
  await clip?.release();
});

it.each(PRESET_NAMES)('%s writes every output, readable by the field’s tools', async (preset) => {
  const config = parseConfig(
    {
      run: { name: preset },
      input: { uri: path.join(dir, 'in') },
      output: { uri: path.join(dir, 'out') },
      strategy: { preset, ...(preset === 'mix-threshold' ? { fraction: 0.4 } : {}) },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { maxLength: 6 },
      ...(preset.endsWith('-in1k') ? { filters: { imageCluster: { centroids: path.join(dir, 'c.npy'), target: path.join(dir, 't.txt') } } } : {}),
    },
    'test',
  );
  const plan = await planRun(config);
  const summary = await runAllStages(plan, captioner, clip);
  const layout = new RunLayout(plan.runUri);
  expect(summary.samples).toBe(16);
  const decisions = await DECISION_TABLE.decode(await readFile(layout.decisions('00000000')), layout.decisions('00000000'));
  const keptAll = summary.kept;
  expect(decodeSubsetNpy(await readFile(layout.subset))).toHaveLength(keptAll);
  for (const f of [layout.manifest, layout.stats, layout.report, layout.thresholds, path.join(plan.runUri, 'report.html')]) {
    expect((await readFile(f)).length).toBeGreaterThan(0);
  }
  if (['raw', 'synthetic', 'raw30-synthetic70'].includes(preset)) {
    // these keep all but the 2 corrupt images and any sample whose caption is empty or only white space
    const empty = Number(summary.dropped.empty_raw_caption ?? 0) + Number(summary.dropped.empty_synthetic_caption ?? 0);
    expect(Object.keys(summary.dropped).filter((r) => !['decode_error', 'empty_raw_caption', 'empty_synthetic_caption'].includes(r))).toEqual([]);
    expect(keptAll + empty).toBe(14);
    if (preset === 'raw') expect(empty).toBeGreaterThan(0); // the sample data has blank alt-texts
  }

  if (hasPython('pyarrow', 'pandas', 'duckdb', 'webdataset', 'numpy')) {
    const py = runPython<{ arrow: number; pandas_kept: number; duck: number; wds: number; npy: number; sorted: boolean; dtype: string }>(
      [
        'import json, sys, pyarrow.parquet as pq, pandas as pd, duckdb, numpy as np, webdataset as wds',
        'run = sys.argv[1]',
        't = pq.read_table(f"{run}/decisions/00000000.parquet")',
        'df = pd.read_parquet(f"{run}/decisions/00000000.parquet")',
        'duck = duckdb.sql(f"select count(*) from \'{run}/decisions/*.parquet\' where kept").fetchall()[0][0]',
        'n = sum(1 for _ in wds.WebDataset(f"{run}/shards/00000000.tar", shardshuffle=False).decode())',
        'a = np.load(f"{run}/subset.npy")',
        'print(json.dumps({"arrow": t.num_rows, "pandas_kept": int(df.kept.sum()), "duck": int(duck), "wds": n, "npy": len(a),',
        '  "sorted": bool((np.sort(a, order=["f0","f1"]) == a).all()), "dtype": str(a.dtype)}))',
      ].join('\n'),
      [plan.runUri],
    );
    expect(py.arrow).toBe(decisions.length);
    expect(py.pandas_kept).toBe(decisions.filter((d) => d.kept).length);
    expect(py.duck).toBe(keptAll);
    expect(py.wds).toBe(decisions.filter((d) => d.kept).length);
    expect(py.npy).toBe(keptAll);
    expect(py.sorted).toBe(true);
    expect(py.dtype).toBe("[('f0', '<u8'), ('f1', '<u8')]");
  }
});
