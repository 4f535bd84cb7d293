/**
 * Between the phases (CPU): the pool-wide thresholds the preset needs, over EVERY scored sample of the run —
 * never per shard. Exact: reads the committed score files (a float per sample and source).
 */
import { decodeParquetRows } from '../formats/parquet';
import { resolveRule, thresholdKey, thresholdsNeeded } from '../strategies/presets';
import { topFractionThreshold } from '../strategies/thresholds';
import { storageFor } from '../storage';
import { RunLayout } from './layout';
import type { RunPlan } from './plan';

export interface ThresholdsFile {
  preset: string;
  fraction: number | null;
  thresholds: Record<string, number>;
  /** Samples in the pool each threshold was computed over. */
  poolSize: number;
  shardsScored: number;
  method: 'exact';
}

/** JSON cannot hold ±Infinity; they mean "nothing passes" / "everything passes". */
export function encodeThreshold(v: number): number | string {
  return Number.isFinite(v) ? v : v > 0 ? 'inf' : '-inf';
}
export function decodeThreshold(v: number | string): number {
  return typeof v === 'number' ? v : v === 'inf' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}

export async function computeThresholds(plan: RunPlan): Promise<Record<string, number>> {
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  if (await storage.exists(layout.thresholds)) return readThresholds(plan.runUri);

  const rule = resolveRule(plan.config.strategy.preset, plan.config.strategy.fraction);
  const raw: number[] = [];
  const syn: number[] = [];
  let shardsScored = 0;
  for (const shard of plan.shards) {
    if (!(await storage.exists(layout.done('score', shard.name)))) continue; // failed shard: not in the pool
    shardsScored++;
    const rows = await decodeParquetRows(await storage.readBuffer(layout.scores(shard.name)), { columns: ['s_raw', 's_syn'] });
    for (const r of rows) {
      if (typeof r.s_raw === 'number') raw.push(r.s_raw);
      if (typeof r.s_syn === 'number') syn.push(r.s_syn);
    }
  }
  const thresholds: Record<string, number> = {};
  for (const spec of thresholdsNeeded(rule)) {
    thresholds[thresholdKey(spec)] = topFractionThreshold(spec.source === 'raw' ? raw : syn, spec.fraction);
  }
  const file = {
    preset: plan.config.strategy.preset,
    fraction: plan.config.strategy.fraction ?? null,
    thresholds: Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, encodeThreshold(v)])),
    poolSize: raw.length,
    shardsScored,
    method: 'exact',
  };
  await storage.writeAtomic(layout.thresholds, JSON.stringify(file, null, 2));
  return thresholds;
}

export async function readThresholds(runUri: string): Promise<Record<string, number>> {
  const layout = new RunLayout(runUri);
  const file = JSON.parse(await storageFor(runUri).readText(layout.thresholds)) as { thresholds: Record<string, number | string> };
  return Object.fromEntries(Object.entries(file.thresholds).map(([k, v]) => [k, decodeThreshold(v)]));
}
