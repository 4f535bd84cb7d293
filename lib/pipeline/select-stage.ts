/** Stage 3 (CPU): filter + mix — one decision for EVERY sample of the shard, under the pool-wide thresholds. */
import { decodeParquetRows, encodeParquetRows } from '../formats/parquet';
import { basicFilterReason } from '../strategies/basic-filter';
import { decide } from '../strategies/decide';
import { ruleOf } from '../strategies/presets';
import { storageFor } from '../storage';
import { IMAGE_CLUSTER_REASON, targetClustersFor } from './image-clusters';
import { RunLayout } from './layout';
import { shardOf, type RunPlan } from './plan';
import { commitStage, committedSummary, countReasons, earlierFailure, type StageSummary } from './summary';
import { DECISION_COLUMNS, type CaptionRow, type DecisionRow, type ScoreRow } from './tables';
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
    if (target) {
      const cluster = clusterOf.get(r.key);
      if (cluster === null || cluster === undefined || !target.has(cluster)) reason = IMAGE_CLUSTER_REASON;
    }
    if (!reason && plan.config.filters.basic) {
      const c = byKey.get(r.key)!;
      reason = await basicFilterReason({ caption: r.caption, width: c.original_width, height: c.original_height });
    }
    if (reason) Object.assign(r, { kept: false, source: null, caption: null, reason });
  }
  return rows;
}

export function decideRows(
  plan: RunPlan,
  captions: CaptionRow[],
  scores: ScoreRow[],
  thresholds: Record<string, number>,
): DecisionRow[] {
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
    const failure = c.error ?? s?.error ?? (s ? null : 'not_scored');
    if (failure) return { ...base, kept: false, source: null, caption: null, reason: failure };
    const d = decide(rule, { sRaw: base.s_raw, sSyn: base.s_syn }, thresholds);
    const caption = d.source === 'raw' ? c.raw_caption : d.source === 'synthetic' ? base.synthetic_caption : null;
    return { ...base, kept: d.kept, source: d.source, caption, reason: d.reason };
  });
}

export async function selectShard(plan: RunPlan, index: number): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, 'select', shard.name);
  if (committed) return committed;
  if (await earlierFailure(storage, layout, ['caption', 'score'], shard.name)) {
    return { shard: shard.name, skipped: false, samples: 0, ok: 0, failed: 0, failedEarlier: true };
  }
  const read = async <T>(uri: string) => (await decodeParquetRows(await storage.readBuffer(uri), { name: uri })) as unknown as T[];
  const captions = await read<CaptionRow>(layout.captions(shard.name));
  const scores = await read<ScoreRow>(layout.scores(shard.name));
  const rows = await applyFilters(plan, captions, scores, decideRows(plan, captions, scores, await readThresholds(plan.runUri)));
  await storage.writeAtomic(layout.decisions(shard.name), encodeParquetRows(DECISION_COLUMNS, rows));
  const kept = rows.filter((r) => r.kept);
  const failed = rows.filter((r) => !r.kept && r.reason && !r.reason.startsWith('below_') && !r.reason.includes('_filter:')).length;
  return commitStage(storage, layout, 'select', {
    shard: shard.name,
    skipped: false,
    samples: rows.length,
    ok: rows.length - failed,
    failed,
    counts: {
      kept: kept.length,
      raw: kept.filter((r) => r.source === 'raw').length,
      synthetic: kept.filter((r) => r.source === 'synthetic').length,
      dropped: rows.length - kept.length,
      ...countReasons(rows.filter((r) => !r.kept).map((r) => r.reason), 'dropped'),
    },
  });
}
