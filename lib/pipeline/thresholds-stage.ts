/**
 * Between the phases (CPU): the pool-wide thresholds the preset needs, over EVERY scored sample of the run —
 * never per shard. Exact: reads the committed score annotations (a float per sample and source).
 */
import { failedInAny } from '../run/failures';
import { RunLayout } from '../run/layout';
import { annotationStore, type RunPlan } from '../run/plan';
import { RAW_SCORES_TABLE, SYNTHETIC_SCORES_TABLE } from '../run/tables';
import { locateRank, ScoreHistogram, thresholdInBin } from '../strategies/pool-threshold';
import { ruleOf, thresholdKey, thresholdsNeeded } from '../strategies/presets';
import { storageFor } from '../storage';
import { NO_CONTEXT, type StageContext } from './context';
import { readPrecomputedScores } from './precomputed-scores';

interface ThresholdsFile {
  preset: string;
  fraction: number | null;
  thresholds: Record<string, number | string>;
  /** Scored samples in the pool, per caption source. */
  poolSize: Record<'raw' | 'synthetic', number>;
  shardsScored: number;
  method: string;
  /** Where s_raw came from (the report says which). */
  rawScore: string;
}

/** JSON cannot hold ±Infinity; they mean "nothing passes" / "everything passes". */
export function encodeThreshold(v: number): number | string {
  return Number.isFinite(v) ? v : v > 0 ? 'inf' : '-inf';
}
function decodeThreshold(v: number | string): number {
  return typeof v === 'number' ? v : v === 'inf' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}

type Source = 'raw' | 'synthetic';

/** Every annotated score of `sources` over the run's shards (a shard that failed as a whole is not in the pool). */
async function forEachScore(plan: RunPlan, sources: ReadonlySet<Source>, onShard: () => void, fn: (source: Source, v: number) => void): Promise<number> {
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const store = annotationStore(plan);
  const files = storageFor(store.root);
  let shardsScored = 0;
  for (const shard of plan.shards) {
    if (await failedInAny(storage, layout, ['annotate'], shard.name)) continue;
    shardsScored++;
    if (sources.has('raw')) {
      for (const r of await RAW_SCORES_TABLE.read(files, store.file('rawScores', shard))) if (r.s_raw !== null) fn('raw', r.s_raw);
    }
    if (sources.has('synthetic')) {
      const uri = store.file('syntheticScores', shard);
      for (const r of await SYNTHETIC_SCORES_TABLE.decode(await files.readBuffer(uri), uri, ['s_syn'])) if (r.s_syn !== null) fn('synthetic', r.s_syn);
    }
    onShard();
  }
  return shardsScored;
}

/**
 * Exact pool-wide thresholds in bounded memory (lib/strategies/pool-threshold): pass 1 merges per-shard
 * histograms, pass 2 collects only the scores in the bin that holds rank floor(n·f).
 */
export async function computeThresholds(plan: RunPlan, ctx: StageContext = NO_CONTEXT): Promise<Record<string, number>> {
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  if (await storage.exists(layout.thresholds)) return readThresholds(plan.runUri);

  const rule = ruleOf(plan.config.strategy);
  const specs = thresholdsNeeded(rule);
  let progress = 0;
  const tick = () => ctx.heartbeat(++progress);
  const hist: Record<Source, ScoreHistogram> = { raw: new ScoreHistogram(), synthetic: new ScoreHistogram() };
  // With precomputed raw scores, the raw pool is the metadata (every sibling-parquet row), as in DataComp.
  const metadataRaw = plan.config.score.rawScore === 'precomputed';
  const pools = new Set(specs.map((t) => t.source));
  const annotated = new Set([...pools].filter((src) => !(src === 'raw' && metadataRaw)));
  const forEach = async (fn: (src: Source, v: number) => void) => {
    const n = await forEachScore(plan, annotated, tick, fn);
    if (metadataRaw && pools.has('raw')) {
      for (const shard of plan.shards) {
        const p = await readPrecomputedScores(shard, plan.config.score.precomputedColumn);
        for (const v of p.byUid.values()) fn('raw', v);
        for (const v of p.byKey.values()) fn('raw', v);
        tick();
      }
    }
    return n;
  };
  const shardsScored = await forEach((src, v) => hist[src].add(v));
  const located = specs.map((spec) => ({ spec, loc: locateRank(hist[spec.source], spec.fraction), values: [] as number[] }));
  if (located.some((l) => l.loc.kind === 'bin')) {
    await forEach((src, v) => {
      for (const l of located) if (l.spec.source === src && l.loc.kind === 'bin' && hist[src].bin(v) === l.loc.bin) l.values.push(v);
    });
  }
  const thresholds: Record<string, number> = {};
  for (const l of located) thresholds[thresholdKey(l.spec)] = thresholdInBin(l.values, l.loc);
  const file: ThresholdsFile = {
    preset: plan.config.strategy.preset,
    fraction: plan.config.strategy.fraction ?? null,
    thresholds: Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, encodeThreshold(v)])),
    poolSize: { raw: hist.raw.total, synthetic: hist.synthetic.total },
    shardsScored,
    method: 'exact (two-pass histogram selection)',
    rawScore: metadataRaw ? `precomputed: ${plan.config.score.precomputedColumn} over the metadata pool` : 'computed',
  };
  // No-clobber: select reads the committed file, so a concurrent attempt that committed first decides for both.
  if (!(await storage.writeAtomic(layout.thresholds, JSON.stringify(file, null, 2))).committed) return readThresholds(plan.runUri);
  return thresholds;
}

export async function readThresholds(runUri: string): Promise<Record<string, number>> {
  const layout = new RunLayout(runUri);
  const file = JSON.parse(await storageFor(runUri).readText(layout.thresholds)) as { thresholds: Record<string, number | string> };
  return Object.fromEntries(Object.entries(file.thresholds).map(([k, v]) => [k, decodeThreshold(v)]));
}
