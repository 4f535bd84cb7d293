/**
 * Stage 4 (CPU): the output WebDataset shard of the kept samples — original image bytes untouched, `.txt` the
 * chosen caption, `.json` the original metadata plus provenance — streamed to a temp name and committed.
 */
import { decodeParquetRows } from '../formats/parquet';
import { storageFor } from '../storage';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { writeTarAtomically } from './atomic-tar';
import { RunLayout } from './layout';
import { shardOf, type RunPlan } from './plan';
import { readInputSamples } from './samples';
import { commitStage, committedSummary, earlierFailure, type StageSummary } from './summary';
import type { DecisionRow } from './tables';

export interface Provenance {
  source: 'raw' | 'synthetic';
  raw_caption: string;
  synthetic_caption: string | null;
  s_raw: number | null;
  s_syn: number | null;
  strategy: string;
  fraction: number | null;
  run: string;
}

export async function writeShard(plan: RunPlan, index: number, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, 'write', shard.name);
  if (committed) return committed;
  if (await earlierFailure(storage, layout, ['caption', 'score'], shard.name)) {
    return { shard: shard.name, skipped: false, samples: 0, ok: 0, failed: 0, failedEarlier: true };
  }
  const decisions = (await decodeParquetRows(await storage.readBuffer(layout.decisions(shard.name)), {
    name: layout.decisions(shard.name),
  })) as unknown as DecisionRow[];
  const kept = new Map(decisions.filter((d) => d.kept).map((d) => [d.key, d]));

  let seen = 0;
  const written = await writeTarAtomically(storage, layout.outputShard(shard.name), async (writer) => {
    for await (const sample of readInputSamples(shard.tar)) {
      if (++seen % 256 === 0) {
        throwIfAborted(ctx);
        ctx.heartbeat(seen);
      }
      const d = kept.get(sample.key);
      if (!d || !sample.image || !sample.imageExt || d.caption === null || d.source === null) continue;
      const provenance: Provenance = {
        source: d.source,
        raw_caption: d.raw_caption,
        synthetic_caption: d.synthetic_caption,
        s_raw: d.s_raw,
        s_syn: d.s_syn,
        strategy: plan.config.strategy.preset,
        fraction: plan.config.strategy.fraction ?? null,
        run: plan.runName,
      };
      await writer.write({
        key: sample.key,
        files: {
          [sample.imageExt]: sample.image,
          txt: Buffer.from(d.caption, 'utf8'),
          json: Buffer.from(JSON.stringify({ ...(sample.meta ?? {}), recaption: provenance }), 'utf8'),
        },
      });
    }
  });
  return commitStage(storage, layout, 'write', {
    shard: shard.name,
    skipped: false,
    samples: seen,
    ok: written,
    failed: 0,
    counts: { written },
  });
}
