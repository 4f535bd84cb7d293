/**
 * Stage 2 (CPU): filter + mix — one decision for EVERY sample of the shard, under the pool-wide thresholds, from the
 * annotations the strategy reads (and nothing else, so a decision never depends on what other runs computed).
 */
import { inTargetClusters } from '../clusters/target';
import { InputError } from '../errors';
import { FAILURE_REASONS, isSelectionReason } from '../reasons';
import type { ModelGroup } from '../run/annotations';
import { annotationStore, type RunPlan } from '../run/plan';
import {
  CAPTIONS_TABLE,
  CLUSTERS_TABLE,
  DECISION_TABLE,
  RAW_SCORES_TABLE,
  SYNTHETIC_SCORES_TABLE,
  type CaptionRow,
  type ClusterRow,
  type DecisionRow,
  type RawScoreRow,
  type SampleRow,
  type SyntheticScoreRow,
} from '../run/tables';
import { basicFilterReason } from '../strategies/basic-filter';
import { decide } from '../strategies/decide';
import { ruleInputs, ruleOf } from '../strategies/presets';
import { storageFor } from '../storage';
import { sampleRows } from './annotate-stage';
import { countReasons, runShardStage, type ShardWork, type StageSummary } from './checkpoint';
import { NO_CONTEXT, type StageContext } from './context';
import { IMAGE_CLUSTER_REASON, targetClustersFor } from './image-clusters';
import { lookupScore, readPrecomputedScores, type PrecomputedScores } from './precomputed-scores';
import { readThresholds } from './thresholds-stage';

/** The annotations a decision reads, one row per tar position (a group the strategy does not read is null). */
interface ShardAnnotations {
  samples: SampleRow[];
  captions: CaptionRow[] | null;
  rawScores: RawScoreRow[] | null;
  syntheticScores: SyntheticScoreRow[] | null;
  clusters: ClusterRow[] | null;
  precomputed: PrecomputedScores | null;
}

async function readAnnotations(w: ShardWork, ctx: StageContext): Promise<ShardAnnotations> {
  const { plan, shard } = w;
  const samples = await sampleRows(w, ctx);
  const store = annotationStore(plan);
  const files = storageFor(store.root);
  const read = new Set(plan.annotations.read);
  const group = async <R extends { key: string }>(g: ModelGroup, table: { read(s: typeof files, uri: string): Promise<R[]> }): Promise<R[] | null> => {
    if (!read.has(g)) return null;
    const uri = store.file(g, shard);
    // Gone since the annotate phase found them (someone deleted them): no retry brings them back.
    if (!(await files.exists(uri))) throw new InputError('MissingAnnotations', `select ${shard.name}: ${g} annotations ${uri} are missing (deleted since): start the run under a new run.name to annotate the shard again`);
    const rows = await table.read(files, uri);
    rows.forEach((r, i) => {
      if (r.key !== samples[i]?.key) throw new Error(`${uri}: row ${i} is ${r.key}, the tar's sample ${i} is ${samples[i]?.key ?? 'absent'}`);
    });
    if (rows.length !== samples.length) throw new Error(`${uri}: ${rows.length} rows for ${samples.length} samples`);
    return rows;
  };
  const precomputed = ruleInputs(ruleOf(plan.config.strategy)).scores.has('raw') && plan.config.score.rawScore === 'precomputed';
  return {
    samples,
    captions: await group('captions', CAPTIONS_TABLE),
    rawScores: await group('rawScores', RAW_SCORES_TABLE),
    syntheticScores: await group('syntheticScores', SYNTHETIC_SCORES_TABLE),
    clusters: await group('clusters', CLUSTERS_TABLE),
    precomputed: precomputed ? await readPrecomputedScores(shard, plan.config.score.precomputedColumn) : null,
  };
}

/** Optional filters applied after the caption choice; a kept sample that fails one is dropped with its reason. */
async function applyFilters(plan: RunPlan, a: ShardAnnotations, rows: DecisionRow[]): Promise<DecisionRow[]> {
  const target = await targetClustersFor(plan.config);
  if (!plan.config.filters.basic && !target) return rows;
  for (const [i, r] of rows.entries()) {
    if (!r.kept || r.caption === null) continue;
    let reason: string | null = null;
    if (target && !inTargetClusters(a.clusters?.[i]?.cluster ?? null, target)) reason = IMAGE_CLUSTER_REASON;
    if (!reason && plan.config.filters.basic) {
      const s = a.samples[i]!;
      reason = await basicFilterReason({ caption: r.caption, width: s.original_width, height: s.original_height });
    }
    if (reason) Object.assign(r, { kept: false, source: null, caption: null, reason });
  }
  return rows;
}

function decideRows(plan: RunPlan, a: ShardAnnotations, thresholds: Record<string, number>): DecisionRow[] {
  const rule = ruleOf(plan.config.strategy);
  return a.samples.map((s, i) => {
    const syn = a.syntheticScores?.[i];
    const base = {
      uid: s.uid,
      key: s.key,
      raw_caption: s.raw_caption,
      // The kept candidate when best-of-N chose among several, else candidate 0.
      synthetic_caption: syn?.synthetic_caption ?? a.captions?.[i]?.synthetic_caption ?? null,
      s_raw: a.precomputed ? lookupScore(a.precomputed, s) : (a.rawScores?.[i]?.s_raw ?? null),
      s_syn: syn?.s_syn ?? null,
    };
    const failure =
      s.error ??
      (a.captions && base.synthetic_caption === null ? FAILURE_REASONS.notCaptioned : null) ??
      ((a.rawScores && base.s_raw === null) || (a.syntheticScores && base.s_syn === null) ? FAILURE_REASONS.notScored : null);
    if (failure) return { ...base, kept: false, source: null, caption: null, reason: failure };
    const usable = { raw: s.raw_caption.trim() !== '', synthetic: (base.synthetic_caption ?? '').trim() !== '' };
    const d = decide(rule, { sRaw: base.s_raw, sSyn: base.s_syn, usable }, thresholds);
    const caption = d.source === 'raw' ? s.raw_caption : d.source === 'synthetic' ? base.synthetic_caption : null;
    return { ...base, kept: d.kept, source: d.source, caption, reason: d.reason };
  });
}

export function selectShard(plan: RunPlan, index: number, ctx: StageContext = NO_CONTEXT): Promise<StageSummary> {
  return runShardStage('select', plan, index, async (w) => {
    const a = await readAnnotations(w, ctx);
    const rows = await applyFilters(plan, a, decideRows(plan, a, await readThresholds(plan.runUri)));
    await DECISION_TABLE.write(w.storage, w.layout.decisions(w.shard.name), rows);
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
