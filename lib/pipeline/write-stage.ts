/**
 * Stage 4 (CPU): the output WebDataset shard of the kept samples — original image bytes untouched, `.txt` the
 * chosen caption, `.json` the original metadata plus provenance — streamed to a temp name and committed.
 */
import type { CaptionSource } from '../strategies/presets';
import type { RunPlan } from '../run/plan';
import { DECISION_TABLE } from '../run/tables';
import { writeTarAtomically } from './atomic-tar';
import { runShardStage, type StageSummary } from './checkpoint';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';

/** The `recaption` object added to each written sample's `.json`. */
interface Provenance {
  source: CaptionSource;
  raw_caption: string;
  synthetic_caption: string | null;
  s_raw: number | null;
  s_syn: number | null;
  strategy: string;
  fraction: number | null;
  run: string;
}

export function writeShard(plan: RunPlan, index: number, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  return runShardStage('write', plan, index, async ({ shard, layout, storage, samples }) => {
    const decisions = await DECISION_TABLE.read(storage, layout.decisions(shard.name));
    const kept = new Map(decisions.filter((d) => d.kept).map((d) => [d.key, d]));
    let seen = 0;
    const written = await writeTarAtomically(storage, layout.outputShard(shard.name), async (writer) => {
      for await (const sample of samples()) {
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
    return { samples: seen, failed: 0, counts: { written } };
  });
}
