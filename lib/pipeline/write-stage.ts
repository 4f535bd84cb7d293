/**
 * Stage 4 (CPU): the output WebDataset shard of the kept samples — original image bytes untouched, `.txt` the
 * chosen caption, `.json` the original metadata plus provenance — streamed to a temp name and committed. Samples are
 * matched to their decisions by tar position (never by key alone: a duplicated key must not take another's decision),
 * and keys are written as the input named them (folders included).
 */
import type { CaptionSource } from '../strategies/presets';
import type { RunPlan } from '../run/plan';
import { DECISION_TABLE } from '../run/tables';
import { KeptDigest } from './accounting';
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
    const digest = new KeptDigest();
    let position = 0;
    const written = await writeTarAtomically(storage, layout.outputShard(shard.name), async (writer) => {
      for await (const sample of samples()) {
        const d = decisions[position++];
        if (position % 256 === 0) {
          throwIfAborted(ctx);
          ctx.heartbeat(position);
        }
        if (d?.key !== sample.key) throw new Error(`write ${shard.name}: sample ${position - 1} of the tar is ${sample.key}, its decision ${d?.key ?? 'absent'}`);
        if (!d.kept) continue;
        if (!sample.image || !sample.imageExt || d.caption === null || d.source === null) {
          throw new Error(`write ${shard.name}: kept sample ${d.key} has ${sample.image ? 'no caption' : 'no image'}`);
        }
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
        digest.add(d);
      }
    });
    if (position !== decisions.length) throw new Error(`write ${shard.name}: the tar has ${position} samples, the decisions ${decisions.length}`);
    return { samples: position, failed: 0, counts: { written, writtenDigest: digest.value } };
  });
}
