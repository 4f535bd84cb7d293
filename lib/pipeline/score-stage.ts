/**
 * Stage 2 (GPU): CLIP scores of the raw and the synthetic caption of every sample, and with the image-cluster
 * filter each image's nearest centroid. With several caption candidates, every candidate is scored and the kept
 * one (best by CLIP score, or the first) becomes the sample's synthetic caption.
 */
import type { NearestCentroid } from '../clusters/nearest';
import { rawCaptionOf } from '../formats/img2dataset';
import { bestCandidate } from '../models/candidates';
import { cosine } from '../models/similarity';
import type { ClipScorer } from '../models/types';
import { FAILURE_REASONS } from '../reasons';
import type { RunPlan } from '../run/plan';
import { CANDIDATE_TABLE, CAPTION_TABLE, SCORE_TABLE, type ScoreRow } from '../run/tables';
import type { Storage } from '../storage';
import { preparedBatches } from './batches';
import { runShardStage, rowsOutcome, type StageSummary } from './checkpoint';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { lookupScore, readPrecomputedScores } from './precomputed-scores';

/** The models the score stage runs: the CLIP scorer, and the nearest-centroid graph when the run filters by image cluster. */
export interface ScoreModels {
  clip: ClipScorer;
  centroids: NearestCentroid | null;
}

export async function scoreShard(plan: RunPlan, index: number, models: ScoreModels, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  const { clip, centroids } = models;
  if (plan.config.filters.imageCluster && !centroids) {
    // Without it every sample would lose its cluster and be dropped by the filter, silently.
    throw new Error(`run ${plan.runName} filters by image cluster: the score stage needs the nearest-centroid model`);
  }
  return runShardStage('score', plan, index, async ({ shard, layout, storage, samples }) => {
    const captionRows = await CAPTION_TABLE.read(storage, layout.captions(shard.name));
    const byKey = new Map(captionRows.map((r) => [r.key, r]));
    const { candidates: nCandidates, pick } = plan.config.caption;
    const candidates = nCandidates > 1 ? await readCandidates(storage, layout.candidates(shard.name)) : null;
    /** The texts to score for a sample: its candidates, or its one synthetic caption. */
    const textsOf = (key: string): string[] => candidates?.get(key) ?? [byKey.get(key)!.synthetic_caption!];

    const { rawScore, precomputedColumn } = plan.config.score;
    const precomputed = rawScore === 'precomputed' ? await readPrecomputedScores(shard, precomputedColumn) : null;
    const rows: ScoreRow[] = [];
    for await (const batch of preparedBatches(samples(), plan.config.score.batchSize, (img) => clip.preprocess(img))) {
      throwIfAborted(ctx);
      const usable = batch.filter((b) => b.pixels && byKey.get(b.sample.key)?.synthetic_caption != null);
      const texts = usable.map((b) => textsOf(b.sample.key));
      // Started together: the JS work of one (stacking, tokenising) runs while ORT computes another.
      const [imageEmb, rawEmb, synEmb] = usable.length
        ? await Promise.all([
            clip.embedImages(usable.map((b) => b.pixels!)),
            precomputed ? Promise.resolve([]) : clip.embedTexts(usable.map((b) => rawCaptionOf(b.sample))),
            clip.embedTexts(texts.flat()),
          ])
        : [[], [], []];
      const clusters = usable.length && centroids ? await assignClusters(centroids, imageEmb) : null;
      let offset = 0;
      const scored = new Map(
        usable.map((b, i) => {
          const candScores = texts[i]!.map((_, k) => cosine(imageEmb[i], synEmb[offset + k]));
          offset += candScores.length;
          const choice = candidates && pick === 'clip' ? bestCandidate(candScores) : 0;
          return [
            b.sample.key,
            {
              sRaw: precomputed ? lookupScore(precomputed, b.sample) : cosine(imageEmb[i], rawEmb[i]),
              sSyn: candScores[choice]!,
              cluster: clusters ? clusters[i]! : null,
              choice: candidates ? { index: choice, caption: texts[i]![choice]!, firstScore: candScores[0]! } : null,
            },
          ];
        }),
      );
      for (const b of batch) {
        const s = scored.get(b.sample.key);
        const captionError = byKey.get(b.sample.key)?.error ?? (byKey.has(b.sample.key) ? null : FAILURE_REASONS.notCaptioned);
        rows.push({
          key: b.sample.key,
          uid: b.sample.uid,
          s_raw: s ? s.sRaw : null,
          s_syn: s ? s.sSyn : null,
          error: s ? null : (b.error ?? captionError ?? FAILURE_REASONS.notScored),
          cluster: s ? s.cluster : null,
          synthetic_choice: s?.choice ? s.choice.index : null,
          synthetic_caption: s?.choice ? s.choice.caption : null,
          s_syn_first: s?.choice ? s.choice.firstScore : null,
        });
      }
      ctx.heartbeat(rows.length);
    }
    await SCORE_TABLE.write(storage, layout.scores(shard.name), rows);
    return rowsOutcome(rows.map((r) => r.error));
  });
}

async function assignClusters(nc: NearestCentroid, embeddings: Float32Array[]): Promise<Int32Array> {
  const flat = new Float32Array(embeddings.length * nc.d);
  embeddings.forEach((e, i) => flat.set(e, i * nc.d));
  return nc.assign(flat, embeddings.length);
}

/** Candidates by sample key, in candidate order. */
async function readCandidates(storage: Storage, uri: string): Promise<Map<string, string[]>> {
  const rows = await CANDIDATE_TABLE.read(storage, uri);
  const byKey = new Map<string, string[]>();
  for (const r of [...rows].sort((a, b) => a.candidate - b.candidate)) {
    const list = byKey.get(r.key) ?? [];
    list.push(r.caption);
    byKey.set(r.key, list);
  }
  return byKey;
}
