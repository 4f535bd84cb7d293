/**
 * The checkpoint protocol every shard stage follows (`runShardStage`):
 *
 *   1. a stage whose commit marker `work/<stage>/<shard>.done.json` exists is done: its stored summary is
 *      returned at once (this is what makes a resumed run skip committed work);
 *   2. a shard with a recorded failure (failures/<stage>/<shard>.json) in an earlier stage, or one in this stage
 *      that a new execution kept, is not touched (a new execution of the run first clears the records of the
 *      shards it retries: lib/run/failures.ts);
 *   3. otherwise the stage does its work, writing each data file atomically under its final name;
 *   4. the marker, holding the stage's small summary, is written last — so its presence means the data is
 *      complete, and a stage interrupted anywhere before it simply runs again.
 *
 * Every commit is no-clobber (lib/storage CommitOptions): two attempts at one shard (a retry while the first still
 * runs) never overwrite each other's files; the first marker committed is the shard's, and both return it.
 */
import { InputError } from '../errors';
import { readImg2DatasetShard, type Img2DatasetSample } from '../formats/img2dataset';
import { storageFor, type Storage } from '../storage';
import { contentId } from '../run/annotations';
import { failedInAny, keptFailure } from '../run/failures';
import { RunLayout } from '../run/layout';
import { shardOf, type PlannedShard, type RunPlan } from '../run/plan';
import { stagesBefore, type ShardStage } from '../run/stages';

/** What a shard stage returns, and what its commit marker stores. Small: it crosses Temporal. */
export interface StageSummary {
  shard: string;
  /** true when the committed output already existed and the stage did nothing. */
  skipped: boolean;
  samples: number;
  /** Samples this stage could not process (each recorded with its reason in the stage's rows). */
  failed: number;
  /** Stage-specific small counters (kept, raw, synthetic, failure reasons...). */
  counts?: Record<string, number>;
  /** The shard's failure is recorded (under failures/) in an earlier stage, or kept in this one; this stage did nothing. */
  failedEarlier?: boolean;
}

/** What a stage's own work reports; the protocol adds the shard's name and commits it. */
export type StageOutcome = Pick<StageSummary, 'samples' | 'failed' | 'counts'>;

/** Everything a stage's work needs to find its input and write its output. */
export interface ShardWork {
  plan: RunPlan;
  shard: PlannedShard;
  layout: RunLayout;
  /** The run folder's storage. */
  storage: Storage;
  /** One streamed pass over the shard's input tar. */
  samples(): AsyncGenerator<Img2DatasetSample>;
}

/** Run `work` for shard `index` of the plan under the checkpoint protocol (see the header). */
export async function runShardStage(stage: ShardStage, plan: RunPlan, index: number, work: (w: ShardWork) => Promise<StageOutcome>): Promise<StageSummary> {
  const shard = shardOf(plan, index);
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const committed = await committedSummary(storage, layout, stage, shard.name);
  if (committed) return { ...committed, skipped: true };
  // Or in this stage, when a new execution kept that failure (lib/run/failures.ts RetryPlan.keep). A failure of this
  // stage recorded by this execution (an earlier attempt that timed out) does not stop a retried attempt.
  if ((await failedInAny(storage, layout, stagesBefore(stage), shard.name)) || (await keptFailure(storage, layout, stage, shard.name))) {
    return { shard: shard.name, skipped: false, samples: 0, failed: 0, failedEarlier: true };
  }
  await checkUnchanged(shard);
  const samples = () => readImg2DatasetShard(storageFor(shard.tar), shard.tar);
  const outcome = await work({ plan, shard, layout, storage, samples });
  const summary: StageSummary = { shard: shard.name, skipped: false, ...outcome };
  if ((await storage.writeAtomic(layout.done(stage, shard.name), JSON.stringify(summary))).committed) return summary;
  // Another attempt at this shard (a retry while this one still ran) committed first: its marker is the record,
  // and every attempt reports it (its data files won their own commits the same way).
  const winner = await committedSummary(storage, layout, stage, shard.name);
  if (!winner) throw new Error(`${layout.done(stage, shard.name)}: committed by another attempt, then gone`);
  return winner;
}

/**
 * The input shard is the one the run planned: its annotations and decisions are addressed by its content, and a
 * replaced tar would pair samples with another's results.
 */
async function checkUnchanged(shard: PlannedShard): Promise<void> {
  const st = await storageFor(shard.tar).stat(shard.tar);
  if (!st) throw new InputError('MissingInput', `input shard ${shard.tar} is gone since the run was planned`);
  if (contentId(st.fingerprint) !== shard.content) {
    throw new InputError(
      'InputChanged',
      `input shard ${shard.tar} changed since the run was planned: restore the planned file (same bytes; locally also ` +
        `its modification time, e.g. cp -p) and resume, or start a new run (new run.name) over the new input — it reuses every annotation`,
    );
  }
}

/** The summary a stage committed for a shard, or null when it has not committed. */
export async function committedSummary(storage: Storage, layout: RunLayout, stage: ShardStage, shard: string): Promise<StageSummary | null> {
  const marker = layout.done(stage, shard);
  if (!(await storage.exists(marker))) return null;
  try {
    return JSON.parse(await storage.readText(marker)) as StageSummary;
  } catch (err) {
    throw new InputError('CorruptInput', `${marker}: not valid JSON: ${(err as Error).message}`);
  }
}

/** The outcome of a stage that writes one row per sample, from each row's error (null: ok). */
export function rowsOutcome(errors: Array<string | null>): StageOutcome {
  const failed = errors.filter((e) => e).length;
  return { samples: errors.length, failed, counts: countReasons(errors, 'failed') };
}

/** `{ "<prefix>:<reason>": n }` for the non-null reasons. */
export function countReasons(reasons: Array<string | null>, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of reasons) if (r) out[`${prefix}:${r}`] = (out[`${prefix}:${r}`] ?? 0) + 1;
  return out;
}
