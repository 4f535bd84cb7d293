/** Small per-shard stage summaries: what a stage returns, and what its commit marker stores. */
import type { Storage } from '../storage';
import type { RunLayout, ShardStage } from './layout';

export interface StageSummary {
  shard: string;
  /** true when the committed output already existed and the stage did nothing. */
  skipped: boolean;
  samples: number;
  ok: number;
  failed: number;
  /** Stage-specific small counters (kept, raw, synthetic, failure reasons...). */
  counts?: Record<string, number>;
  /** The shard failed in an earlier stage (recorded under failures/); this stage had nothing to do. */
  failedEarlier?: boolean;
}

/** The committed summary of a stage, or null if the stage has not committed for that shard. */
export async function committedSummary(
  storage: Storage,
  layout: RunLayout,
  stage: ShardStage,
  shard: string,
): Promise<StageSummary | null> {
  const uri = layout.done(stage, shard);
  if (!(await storage.exists(uri))) return null;
  const s = JSON.parse(await storage.readText(uri)) as StageSummary;
  return { ...s, skipped: true };
}

/** Commit a stage: its data files are already in place; the marker goes last. */
export async function commitStage(storage: Storage, layout: RunLayout, stage: ShardStage, summary: StageSummary): Promise<StageSummary> {
  await storage.writeAtomic(layout.done(stage, summary.shard), JSON.stringify({ ...summary, skipped: false }));
  return summary;
}

/** Record that a shard cannot be processed (bad input), for the manifest; returns the failure. */
export async function recordShardFailure(
  storage: Storage,
  layout: RunLayout,
  stage: ShardStage,
  shard: string,
  type: string,
  message: string,
): Promise<void> {
  await storage.writeAtomic(
    layout.failure(stage, shard),
    JSON.stringify({ shard, stage, type, message, at: new Date().toISOString() }, null, 2),
  );
}

export async function earlierFailure(storage: Storage, layout: RunLayout, stages: ShardStage[], shard: string): Promise<boolean> {
  for (const s of stages) if (await storage.exists(layout.failure(s, shard))) return true;
  return false;
}

export function countReasons(reasons: Array<string | null>, prefix = "failed"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of reasons) if (r) out[`${prefix}:${r}`] = (out[`${prefix}:${r}`] ?? 0) + 1;
  return out;
}

/** Write a stage's per-sample rows (already encoded) under their final name, then commit the stage. */
export async function commitRows(
  storage: Storage,
  layout: RunLayout,
  stage: ShardStage,
  shard: string,
  uri: string,
  encoded: Buffer,
  errors: Array<string | null>,
): Promise<StageSummary> {
  await storage.writeAtomic(uri, encoded);
  const failed = errors.filter((e) => e).length;
  return commitStage(storage, layout, stage, {
    shard,
    skipped: false,
    samples: errors.length,
    ok: errors.length - failed,
    failed,
    counts: countReasons(errors),
  });
}
