/**
 * raw-top30-in1k: raw-top30 ∩ DataComp's image-cluster filter. The annotate stage records each image's nearest
 * centroid (checked against a brute-force argmax over the same CLIP embeddings); selection keeps exactly the
 * raw-top30 samples whose cluster is in the target set.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../../lib/config/load';
import { encodeFloatMatrix } from '../../../lib/formats/npy';
import { readWebDataset } from '../../../lib/formats/webdataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import { RunLayout } from '../../../lib/run/layout';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { selectShard } from '../../../lib/pipeline/select-stage';
import { DECISION_TABLE } from '../../../lib/run/tables';
import { computeThresholds } from '../../../lib/pipeline/thresholds-stage';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { annotations } from '../../helpers/annotations';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { givenModels } from '../../helpers/stages';

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
    expect(plan.annotations.compute).toEqual(['rawScores', 'clusters']);
    // Annotating clusters without the nearest-centroid model would leave every sample without one: refused.
    await expect(annotateShard(plan, 0, async () => ({ captioner: null, clip, centroids: null }))).rejects.toThrow(/were not loaded/);
    for (let i = 0; i < 2; i++) await annotateShard(plan, i, givenModels(captioner, clip)(plan));
    const tau = (await computeThresholds(plan))['raw@0.3'];
    let checked = 0;
    let dropped = 0;
    for (let i = 0; i < 2; i++) {
      await selectShard(plan, i);
      const name = plan.shards[i].name;
      const raw = await annotations.rawScores(plan, i);
      const clusters = await annotations.clusters(plan, i);
      const decisions = await DECISION_TABLE.decode(await storage.readBuffer(layout.decisions(name)), layout.decisions(name));
      let position = 0;
      for await (const s of readWebDataset(storage.createReadStream(plan.shards[i].tar))) {
        const row = { key: raw[position]!.key, s_raw: raw[position]!.s_raw, cluster: clusters[position]!.cluster };
        position++;
        expect(row.key).toBe(s.key);
        if (row.s_raw === null) {
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
        const usable = d.raw_caption.trim() !== '';
        expect(d.kept).toBe(row.s_raw! >= tau && inTarget && usable);
        if (row.s_raw! >= tau && !usable) expect(d.reason).toBe('empty_raw_caption');
        else if (row.s_raw! >= tau && !inTarget) {
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
