/**
 * Stage 1 (GPU): a synthetic caption for every decodable image of a shard; with `caption.candidates` > 1, N
 * candidates per image go to a sibling candidates parquet (the score stage picks among them).
 */
import { rawCaptionOf } from '../formats/img2dataset';
import { captionCandidates } from '../models/candidates';
import type { Captioner } from '../models/types';
import { CANDIDATE_TABLE, CAPTION_TABLE, type CandidateRow, type CaptionRow } from '../run/tables';
import type { RunPlan } from '../run/plan';
import { preparedBatches } from './batches';
import { runShardStage, rowsOutcome, type StageSummary } from './checkpoint';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';

/** The per-sample RNG seed: the same sample gets the same caption in any batch, retry or resume. */
export function sampleSeed(runSeed: number, sample: { uid: string | null; key: string }): string {
  return `${runSeed}:${sample.uid ?? sample.key}`;
}

export function captionShard(plan: RunPlan, index: number, captioner: Captioner, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  return runShardStage('caption', plan, index, async ({ shard, layout, storage, samples }) => {
    const c = plan.config.caption;
    const options = { topK: c.topK, temperature: c.temperature, minLength: c.minLength, maxLength: c.maxLength, repetitionPenalty: c.repetitionPenalty };
    const rows: CaptionRow[] = [];
    const candidateRows: CandidateRow[] = [];
    // Candidates multiply the decoder rows, so the image batch shrinks to keep about batchSize rows per decode.
    const imagesPerBatch = Math.max(1, Math.floor(c.batchSize / c.candidates));
    for await (const batch of preparedBatches(samples(), imagesPerBatch, (img) => captioner.preprocess(img))) {
      throwIfAborted(ctx);
      const ok = batch.filter((b) => b.pixels);
      const captions = ok.length
        ? await captionCandidates(
            captioner,
            ok.map((b) => b.pixels!),
            ok.map((b) => sampleSeed(plan.config.run.seed, b.sample)),
            c.candidates,
            options,
          )
        : [];
      let i = 0;
      for (const b of batch) {
        const candidates = b.pixels ? captions[i++]! : null;
        if (candidates && c.candidates > 1) {
          candidates.forEach((caption, k) => candidateRows.push({ key: b.sample.key, uid: b.sample.uid, candidate: k, caption }));
        }
        rows.push({
          key: b.sample.key,
          uid: b.sample.uid,
          raw_caption: rawCaptionOf(b.sample),
          synthetic_caption: candidates ? candidates[0]! : null,
          error: b.error,
          error_message: b.errorMessage,
          original_width: intOrNull(b.sample.meta?.original_width ?? b.sample.meta?.width),
          original_height: intOrNull(b.sample.meta?.original_height ?? b.sample.meta?.height),
        });
      }
      ctx.heartbeat(rows.length);
    }
    // Candidates first: the caption parquet and the stage's marker, committed after, vouch for both.
    if (c.candidates > 1) await CANDIDATE_TABLE.write(storage, layout.candidates(shard.name), candidateRows);
    await CAPTION_TABLE.write(storage, layout.captions(shard.name), rows);
    return rowsOutcome(rows.map((r) => r.error));
  });
}

function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31 ? v : null;
}
