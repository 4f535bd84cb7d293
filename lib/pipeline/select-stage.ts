/** Stage 3 (CPU): filter + mix — one decision for EVERY sample of the shard, under the pool-wide thresholds. */
import { inTargetClusters } from '../clusters/target';
import { FAILURE_REASONS, isSelectionReason } from '../reasons';
import type { RunPlan } from '../run/plan';
import { CAPTION_TABLE, DECISION_TABLE, SCORE_TABLE, type CaptionRow, type DecisionRow, type ScoreRow } from '../run/tables';
import { basicFilterReason } from '../strategies/basic-filter';
import { decide } from '../strategies/decide';
import { ruleOf } from '../strategies/presets';
import { countReasons, runShardStage, type StageSummary } from './checkpoint';
import { IMAGE_CLUSTER_REASON, targetClustersFor } from './image-clusters';
import { readThresholds } from './thresholds-stage';

/** Optional filters applied after the caption choice; a kept sample that fails one is dropped with its reason. */
async function applyFilters(plan: RunPlan, captions: CaptionRow[], scores: ScoreRow[], rows: DecisionRow[]): Promise<DecisionRow[]> {
  const target = await targetClustersFor(plan.config);
  if (!plan.config.filters.basic && !target) return rows;
  const byKey = new Map(captions.map((c) => [c.key, c]));
  const clusterOf = new Map(scores.map((s) => [s.key, s.cluster]));
  for (const r of rows) {
    if (!r.kept || r.caption === null) continue;
    let reason: string | null = null;
    if (target && !inTargetClusters(clusterOf.get(r.key) ?? null, target)) reason = IMAGE_CLUSTER_REASON;
    if (!reason && plan.config.filters.basic) {
      const c = byKey.get(r.key)!;
      reason = await basicFilterReason({ caption: r.caption, width: c.original_width, height: c.original_height });
    }
    if (reason) Object.assign(r, { kept: false, source: null, caption: null, reason });
  }
  return rows;
}

function decideRows(plan: RunPlan, captions: CaptionRow[], scores: ScoreRow[], thresholds: Record<string, number>): DecisionRow[] {
  const rule = ruleOf(plan.config.strategy);
  const scoreByKey = new Map(scores.map((s) => [s.key, s]));
  return captions.map((c) => {
    const s = scoreByKey.get(c.key);
    const base = {
      uid: c.uid,
      key: c.key,
      raw_caption: c.raw_caption,
      // The score stage's pick among caption candidates, when there were several.
      synthetic_caption: s?.synthetic_caption ?? c.synthetic_caption,
      s_raw: s?.s_raw ?? null,
      s_syn: s?.s_syn ?? null,
    };
    const failure = c.error ?? s?.error ?? (s ? null : FAILURE_REASONS.notScored);
    if (failure) return { ...base, kept: false, source: null, caption: null, reason: failure };
    const d = decide(rule, { sRaw: base.s_raw, sSyn: base.s_syn }, thresholds);
    const caption = d.source === 'raw' ? c.raw_caption : d.source === 'synthetic' ? base.synthetic_caption : null;
    return { ...base, kept: d.kept, source: d.source, caption, reason: d.reason };
  });
}

export function selectShard(plan: RunPlan, index: number): Promise<StageSummary> {
  return runShardStage('select', plan, index, async ({ shard, layout, storage }) => {
    const captions = await CAPTION_TABLE.read(storage, layout.captions(shard.name));
    const scores = await SCORE_TABLE.read(storage, layout.scores(shard.name));
    const rows = await applyFilters(plan, captions, scores, decideRows(plan, captions, scores, await readThresholds(plan.runUri)));
    await DECISION_TABLE.write(storage, layout.decisions(shard.name), rows);
    const kept = rows.filter((r) => r.kept);
    const dropped = rows.filter((r) => !r.kept);
    return {
      samples: rows.length,
      failed: dropped.filter((r) => r.reason && !isSelectionReason(r.reason)).length,
      counts: {
        kept: kept.length,
        raw: kept.filter((r) => r.source === 'raw').length,
        synthetic: kept.filter((r) => r.source === 'synthetic').length,
        dropped: dropped.length,
        ...countReasons(dropped.map((r) => r.reason), 'dropped'),
      },
    };
  });
}
