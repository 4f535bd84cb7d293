/**
 * raw-top30-in1k: raw-top30 ∩ DataComp's image-cluster filter. The score stage records each image's nearest
 * centroid (checked against a brute-force argmax over the same CLIP embeddings); selection keeps exactly the
 * raw-top30 samples whose cluster is in the target set.
 */
import { StageModels } from '../../../lib/pipeline/stage-models';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { encodeFloatMatrix } from '../../../lib/formats/npy';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { captionShard } from '../../../lib/pipeline/caption-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { scoreShard } from '../../../lib/pipeline/score-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { DECISION_TABLE, SCORE_TABLE, type DecisionRow, type ScoreRow } from '../../../lib/run/tables';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';

it('keeps raw-top30 samples whose nearest centroid is in the target, with assignments a brute force agrees with', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in');
  await generateSampleData({ out: input, shards: 2, perShard: 9, seed: 8, corrupt: 1 });
  const K = 6;
  const D = 32; // the tiny CLIP's embedding width
  let seed = 99;
  const centroids = Float32Array.from({ length: K * D }, () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5);
  writeFileSync(path.join(dir, 'centroids.npy'), encodeFloatMatrix(centroids, K, D));
  writeFileSync(path.join(dir, 'target.txt'), '# clusters hit by the reference set\n0\n2\n4\n');

  const base = {
    run: { name: 'in1k' },
    input: { uri: input },
    output: { uri: path.join(dir, 'out') },
    models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
    caption: { maxLength: 6 },
  };
  expect(() => parseConfig({ ...base, strategy: { preset: 'raw-top30-in1k' } }, 'c')).toThrow(/filters\.imageCluster: is required/);
  const config = parseConfig(
    { ...base, strategy: { preset: 'raw-top30-in1k' }, filters: { imageCluster: { centroids: path.join(dir, 'centroids.npy'), target: path.join(dir, 'target.txt') } } },
    'c',
  );
  const plan = await planRun(config);
  const captioner = await loadCaptioner(TINY_CAPTIONER);
  const clip = await loadClip(TINY_CLIP);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  try {
    await captionShard(plan, 0, captioner);
    // Scoring a filtered run without its nearest-centroid model would drop every sample: refused.
    await expect(scoreShard(plan, 0, { clip, centroids: null })).rejects.toThrow(/needs the nearest-centroid model/);
    for (let i = 0; i < 2; i++) {
      await captionShard(plan, i, captioner);
      await scoreShard(plan, i, { clip, centroids: await new StageModels().centroids(plan.config) });
    }
    const tau = (await computeThresholds(plan))['raw@0.3'];
    let checked = 0;
    let dropped = 0;
    for (let i = 0; i < 2; i++) {
      await selectShard(plan, i);
      const name = plan.shards[i].name;
      const scores = await SCORE_TABLE.decode(await readFile(layout.scores(name)), layout.scores(name));
      const decisions = await DECISION_TABLE.decode(await storage.readBuffer(layout.decisions(name)), layout.decisions(name));
      for await (const s of readWebDataset(storage.createReadStream(plan.shards[i].tar))) {
        const row = scores.find((r) => r.key === s.key)!;
        if (row.error) {
          expect(row.cluster).toBeNull();
          continue;
        }
        const [emb] = await clip.embedImages([await clip.preprocess(s.files.jpg)]);
        let best = 0;
        let bestDot = -Infinity;
        for (let k = 0; k < K; k++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += emb[d] * centroids[k * D + d];
          if (dot > bestDot) [best, bestDot] = [k, dot];
        }
        expect(row.cluster).toBe(best);
        const d = decisions.find((x) => x.key === s.key)!;
        const inTarget = [0, 2, 4].includes(best);
        expect(d.kept).toBe(row.s_raw! >= tau && inTarget);
        if (row.s_raw! >= tau && !inTarget) {
          expect(d.reason).toBe('image_filter:not_in_target_clusters');
          dropped++;
        }
        checked++;
      }
    }
    expect(checked).toBe(16);
    expect(dropped).toBeGreaterThan(0);
  } finally {
    await captioner.release();
    await clip.release();
  }
});
