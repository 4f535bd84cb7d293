/**
 * Every sample accounted for, checked when a run finalizes: for each input shard, samples in = kept + dropped (with a
 * reason) + failed (with a reason), from the committed decisions; every kept sample is in the shard's committed
 * output tar (same count, same samples by digest) and has a uid for subset.npy; a shard without committed decisions
 * has a recorded failure. A run whose accounting does not close fails naming the shards and counts that differ.
 */
import { createHash } from 'node:crypto';
import { isSelectionReason } from '../reasons';
import type { DecisionRow } from '../run/tables';

/** An order-independent digest of a set of kept samples (sum of 32-bit hashes of key and uid, mod 2^32). */
export class KeptDigest {
  private sum = 0;
  add(d: Pick<DecisionRow, 'key' | 'uid'>): void {
    const h = createHash('sha256').update(`${d.key}\0${d.uid ?? ''}`).digest();
    this.sum = (this.sum + h.readUInt32LE(0)) >>> 0;
  }
  get value(): number {
    return this.sum;
  }
}

/** One shard's accounting, from its committed files. */
export interface ShardAccount {
  shard: string;
  /** Samples in the input tar (the `samples` annotation). */
  samples: number;
  kept: number;
  dropped: number;
  failed: number;
  /** What does not close, if anything. */
  problems: string[];
}

/**
 * Check one shard's decisions against its input sample count and its written output (the write stage's marker
 * counts: written, writtenDigest).
 */
export function accountShard(shard: string, tarSamples: number, decisions: DecisionRow[], written: { written?: number; writtenDigest?: number } | null, requireUid: boolean): ShardAccount {
  const problems: string[] = [];
  let kept = 0;
  let dropped = 0;
  let failed = 0;
  const digest = new KeptDigest();
  for (const d of decisions) {
    if (d.kept) {
      kept++;
      digest.add(d);
      if (d.reason !== null) problems.push(`${d.key} is kept with a reason (${d.reason})`);
      if (requireUid && d.uid === null) problems.push(`${d.key} is kept without a uid`);
    } else if (d.reason === null) problems.push(`${d.key} is not kept and has no reason`);
    else if (isSelectionReason(d.reason)) dropped++;
    else failed++;
  }
  if (decisions.length !== tarSamples) problems.push(`${decisions.length} decisions for ${tarSamples} samples in the tar`);
  if (!written) problems.push('no committed output tar');
  else {
    if (written.written !== kept) problems.push(`${written.written ?? '?'} samples written for ${kept} kept`);
    else if (written.writtenDigest !== digest.value) problems.push('the written samples are not the kept ones');
  }
  return { shard, samples: tarSamples, kept, dropped, failed, problems: problems.slice(0, 5) };
}
