/** Stage 1 (GPU): a synthetic caption for every decodable image of a shard. */
import { encodeParquetRows } from '../formats/parquet';
import type { Captioner } from '../models/types';
import { storageFor } from '../storage';
import { preparedBatches } from './batches';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { RunLayout } from './layout';
import { shardOf, type RunPlan } from './plan';
import { readInputSamples, sampleSeed } from './samples';
import { commitRows, committedSummary, type StageSummary } from './summary';
import { CAPTION_COLUMNS, type CaptionRow } from './tables';

export async function captionShard(plan: RunPlan, index: number, captioner: Captioner, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, 'caption', shard.name);
  if (committed) return committed;

  const c = plan.config.caption;
  const options = { topK: c.topK, temperature: c.temperature, minLength: c.minLength, maxLength: c.maxLength, repetitionPenalty: c.repetitionPenalty };
  const rows: CaptionRow[] = [];
  const preprocess = (img: Buffer) => captioner.preprocess(img);
  for await (const batch of preparedBatches(readInputSamples(shard.tar), c.batchSize, preprocess)) {
    throwIfAborted(ctx);
    const ok = batch.filter((b) => b.pixels);
    const captions = ok.length
      ? await captioner.caption(
          ok.map((b) => b.pixels!),
          ok.map((b) => sampleSeed(plan.config.run.seed, b.sample)),
          options,
        )
      : [];
    let i = 0;
    for (const b of batch) {
      rows.push({
        key: b.sample.key,
        uid: b.sample.uid,
        raw_caption: b.sample.rawCaption,
        synthetic_caption: b.pixels ? captions[i++] : null,
        error: b.error,
        error_message: b.errorMessage,
        original_width: intOrNull(b.sample.meta?.original_width ?? b.sample.meta?.width),
        original_height: intOrNull(b.sample.meta?.original_height ?? b.sample.meta?.height),
      });
    }
    ctx.heartbeat(rows.length);
  }
  const encoded = encodeParquetRows(CAPTION_COLUMNS, rows);
  return commitRows(storage, layout, 'caption', shard.name, layout.captions(shard.name), encoded, rows.map((r) => r.error));
}

function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31 ? v : null;
}
