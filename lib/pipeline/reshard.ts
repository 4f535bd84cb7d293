/**
 * Optional resharding of the kept samples into fixed-size WebDataset shards (`output.samplesPerShard`), the
 * layout training jobs expect (equal shards split evenly across data-loader workers). Planned from the
 * per-shard kept counts alone: output shard i holds global kept samples [i·N, (i+1)·N), i.e. a few
 * contiguous (input shard, offset, count) segments — so every output shard can be written independently
 * and idempotently (temp name, then commit), and a resumed run skips those already written.
 *
 * The segments move when the kept counts do (a resume that retries a failed shard adds its samples in the
 * middle), so a tar already there is reused only if it was written for the same segments:
 * `resharded/_segments.json` records them. It is committed before any tar of its plan, once every tar that
 * differs from it is removed — so whatever a crash leaves, each tar present matches the recorded segments.
 */
import { z } from 'zod';
import { readWebDataset } from '../formats/webdataset';
import { writeTarAtomically } from './atomic-tar';
import { storageFor, type Storage } from '../storage';
import { NO_CONTEXT, throwIfAborted, type StageContext } from './context';
import { RunLayout } from '../run/layout';
import type { RunPlan } from '../run/plan';

const SegmentSchema = z.object({
  /** Name of the per-input-shard output tar to read from. */
  shard: z.string(),
  /** Skip this many kept samples of that tar, then take `count`. */
  offset: z.number().int(),
  count: z.number().int(),
});
export type Segment = z.infer<typeof SegmentSchema>;

/** `resharded/_segments.json`: output tar i holds `shards[i]`. */
const SegmentsRecord = z.object({ samplesPerShard: z.number().int(), shards: z.array(z.array(SegmentSchema)) });
type SegmentsRecord = z.infer<typeof SegmentsRecord>;

/** Output shard i → the segments it is made of. `kept[j]` = kept samples of `shards[j]`. */
export function planReshard(shards: string[], kept: number[], perShard: number): Segment[][] {
  if (!(perShard > 0)) throw new RangeError(`samplesPerShard must be > 0, got ${perShard}`);
  const out: Segment[][] = [];
  let current: Segment[] = [];
  let room = perShard;
  shards.forEach((shard, j) => {
    let offset = 0;
    let left = kept[j];
    while (left > 0) {
      const take = Math.min(left, room);
      current.push({ shard, offset, count: take });
      offset += take;
      left -= take;
      room -= take;
      if (room === 0) {
        out.push(current);
        current = [];
        room = perShard;
      }
    }
  });
  if (current.length) out.push(current);
  return out;
}

/** Write output shard `index` from its segments (not yet committed); returns the samples written. */
async function writeReshard(storage: Storage, layout: RunLayout, index: number, segments: Segment[], ctx: StageContext): Promise<number> {
  const uri = layout.resharded(index);
  const expected = segments.reduce((a, s) => a + s.count, 0);
  await writeTarAtomically(storage, uri, async (writer) => {
    for (const seg of segments) {
      let i = 0;
      const source = storage.createReadStream(layout.outputShard(seg.shard));
      for await (const sample of readWebDataset(source, { name: layout.outputShard(seg.shard) })) {
        if (i >= seg.offset + seg.count) break;
        if (i++ >= seg.offset) await writer.write(sample);
      }
      source.destroy();
      throwIfAborted(ctx);
      ctx.heartbeat(writer.count);
    }
    if (writer.count !== expected) throw new Error(`resharded ${uri}: wrote ${writer.count} samples, planned ${expected}`);
  });
  return expected;
}

/**
 * The recorded segments, or null when there are none or they do not parse (then no tar is trusted). A failed read
 * is thrown, to be retried: the tars may be fine.
 */
async function readSegments(storage: Storage, uri: string): Promise<SegmentsRecord | null> {
  if (!(await storage.exists(uri))) return null;
  const text = await storage.readText(uri);
  try {
    return SegmentsRecord.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

/**
 * Remove every resharded tar not written for `segments` (stale after the kept counts moved, or beyond the new end).
 * Returns the indexes of the tars kept (one listing, rather than a lookup per output shard) and how many were removed.
 */
async function removeStale(storage: Storage, layout: RunLayout, segments: Segment[][], perShard: number): Promise<{ kept: Set<number>; removed: number }> {
  const recorded = await readSegments(storage, layout.reshardedSegments);
  const same = (i: number) =>
    recorded !== null && recorded.samplesPerShard === perShard && i < segments.length && JSON.stringify(recorded.shards[i]) === JSON.stringify(segments[i]);
  const kept = new Set<number>();
  let removed = 0;
  for (const uri of await storage.list(layout.reshardedDir)) {
    const m = /\/(\d{8})\.tar$/.exec(uri);
    if (!m) continue;
    if (same(Number(m[1]))) kept.add(Number(m[1]));
    else {
      await storage.remove(uri);
      removed++;
    }
  }
  return { kept, removed };
}

/**
 * Reshard a finished run's kept samples (sequentially here; each output shard is independent). Returns the
 * output shards of the plan, and how many tars of an earlier plan were removed as stale.
 */
export async function reshardRun(
  plan: RunPlan,
  keptByShard: Map<string, number>,
  perShard: number,
  ctx: StageContext = NO_CONTEXT,
): Promise<{ shards: number; removedStale: number }> {
  const storage = storageFor(plan.runUri);
  const layout = new RunLayout(plan.runUri);
  const shards = plan.shards.map((s) => s.name).filter((n) => (keptByShard.get(n) ?? 0) > 0);
  const segments = planReshard(shards, shards.map((n) => keptByShard.get(n)!), perShard);
  const { kept, removed } = await removeStale(storage, layout, segments, perShard);
  const record: SegmentsRecord = { samplesPerShard: perShard, shards: segments };
  await storage.writeAtomic(layout.reshardedSegments, JSON.stringify(record), { replace: true });
  for (let i = 0; i < segments.length; i++) if (!kept.has(i)) await writeReshard(storage, layout, i, segments[i]!, ctx);
  return { shards: segments.length, removedStale: removed };
}
