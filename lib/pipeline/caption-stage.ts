/**
 * Stage 1 (GPU): a synthetic caption for every decodable image of a shard; with `caption.candidates` > 1, N
 * candidates per image go to a sibling candidates parquet (the score stage picks among them).
 */
import { encodeParquetRows } from '../formats/parquet';
import { captionCandidates } from '../models/candidates';
import type { Captioner } from '../models/types';
import { storageFor } from '../storage';
import { preparedBatches } from './batches';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { RunLayout } from './layout';
import { shardOf, type RunPlan } from './plan';
import { readInputSamples, sampleSeed } from './samples';
import { commitRows, committedSummary, type StageSummary } from './summary';
import { CANDIDATE_COLUMNS, CAPTION_COLUMNS, type CandidateRow, type CaptionRow } from './tables';

export async function captionShard(plan: RunPlan, index: number, captioner: Captioner, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, 'caption', shard.name);
  if (committed) return committed;

  const c = plan.config.caption;
  const options = { topK: c.topK, temperature: c.temperature, minLength: c.minLength, maxLength: c.maxLength, repetitionPenalty: c.repetitionPenalty };
  const rows: CaptionRow[] = [];
  const candidateRows: CandidateRow[] = [];
  const preprocess = (img: Buffer) => captioner.preprocess(img);
  // Candidates multiply the decoder rows, so the image batch shrinks to keep about batchSize rows per decode.
  const imagesPerBatch = Math.max(1, Math.floor(c.batchSize / c.candidates));
  for await (const batch of preparedBatches(readInputSamples(shard.tar), imagesPerBatch, preprocess)) {
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
        raw_caption: b.sample.rawCaption,
        synthetic_caption: candidates ? candidates[0]! : null,
        error: b.error,
        error_message: b.errorMessage,
        original_width: intOrNull(b.sample.meta?.original_width ?? b.sample.meta?.width),
        original_height: intOrNull(b.sample.meta?.original_height ?? b.sample.meta?.height),
      });
    }
    ctx.heartbeat(rows.length);
  }
  // Candidates first: the caption parquet and its marker, committed last, vouch for both.
  if (c.candidates > 1) await storage.writeAtomic(layout.candidates(shard.name), encodeParquetRows(CANDIDATE_COLUMNS, candidateRows));
  const encoded = encodeParquetRows(CAPTION_COLUMNS, rows);
  return commitRows(storage, layout, 'caption', shard.name, layout.captions(shard.name), encoded, rows.map((r) => r.error));
}

function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31 ? v : null;
}
