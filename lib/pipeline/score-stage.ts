/** Stage 2 (GPU): CLIP scores of the raw and the synthetic caption of every sample. */
import { decodeParquetRows, encodeParquetRows } from '../formats/parquet';
import { cosine } from '../models/similarity';
import type { ClipScorer } from '../models/types';
import { storageFor } from '../storage';
import { preparedBatches } from './batches';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { RunLayout } from './layout';
import { shardOf, type RunPlan } from './plan';
import type { NearestCentroid } from '../clusters';
import { nearestCentroidFor } from './image-clusters';
import { lookupScore, readPrecomputedScores } from './precomputed-scores';
import { readInputSamples } from './samples';
import { commitRows, committedSummary, earlierFailure, type StageSummary } from './summary';
import { SCORE_COLUMNS, type CaptionRow, type ScoreRow } from './tables';

export async function scoreShard(plan: RunPlan, index: number, clip: ClipScorer, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, 'score', shard.name);
  if (committed) return committed;
  if (await earlierFailure(storage, layout, ['caption'], shard.name)) {
    return { shard: shard.name, skipped: false, samples: 0, ok: 0, failed: 0, failedEarlier: true };
  }

  const captionRows = (await decodeParquetRows(await storage.readBuffer(layout.captions(shard.name)), {
    name: layout.captions(shard.name),
  })) as unknown as CaptionRow[];
  const byKey = new Map(captionRows.map((r) => [r.key, r]));

  const { rawScore, precomputedColumn } = plan.config.score;
  const precomputed = rawScore === 'precomputed' ? await readPrecomputedScores(shard, precomputedColumn) : null;
  const centroids = await nearestCentroidFor(plan.config);
  const rows: ScoreRow[] = [];
  for await (const batch of preparedBatches(readInputSamples(shard.tar), plan.config.score.batchSize, (img) => clip.preprocess(img))) {
    throwIfAborted(ctx);
    const usable = batch.filter((b) => b.pixels && byKey.get(b.sample.key)?.synthetic_caption != null);
    const imageEmb = usable.length ? await clip.embedImages(usable.map((b) => b.pixels!)) : [];
    const rawEmb = usable.length && !precomputed ? await clip.embedTexts(usable.map((b) => b.sample.rawCaption)) : [];
    const synEmb = usable.length ? await clip.embedTexts(usable.map((b) => byKey.get(b.sample.key)!.synthetic_caption!)) : [];
    const clusters = usable.length && centroids ? await assignClusters(centroids, imageEmb) : null;
    const scored = new Map(
      usable.map((b, i) => [
        b.sample.key,
        {
          sRaw: precomputed ? lookupScore(precomputed, b.sample) : cosine(imageEmb[i], rawEmb[i]),
          sSyn: cosine(imageEmb[i], synEmb[i]),
          cluster: clusters ? clusters[i] : null,
        },
      ]),
    );
    for (const b of batch) {
      const s = scored.get(b.sample.key);
      const captionError = byKey.get(b.sample.key)?.error ?? (byKey.has(b.sample.key) ? null : 'not_captioned');
      rows.push({
        key: b.sample.key,
        uid: b.sample.uid,
        s_raw: s ? s.sRaw : null,
        s_syn: s ? s.sSyn : null,
        error: s ? null : (b.error ?? captionError ?? 'not_scored'),
        cluster: s ? s.cluster : null,
      });
    }
    ctx.heartbeat(rows.length);
  }
  const encoded = encodeParquetRows(SCORE_COLUMNS, rows);
  return commitRows(storage, layout, 'score', shard.name, layout.scores(shard.name), encoded, rows.map((r) => r.error));
}

async function assignClusters(nc: NearestCentroid, embeddings: Float32Array[]): Promise<Int32Array> {
  const flat = new Float32Array(embeddings.length * nc.d);
  embeddings.forEach((e, i) => flat.set(e, i * nc.d));
  return nc.assign(flat, embeddings.length);
}
