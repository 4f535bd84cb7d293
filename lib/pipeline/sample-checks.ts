/**
 * What makes a sample unusable before its image is even decoded: metadata that is not a JSON object, text that is
 * not UTF-8, a key that cannot be written back, a key or uid that an earlier sample of the tar already has (the
 * stages never let two samples share data), a missing or malformed uid. Stateful over one pass of a tar, in order.
 */
import { unsafeKeyReason } from '../formats/webdataset';
import type { Img2DatasetSample } from '../formats/img2dataset';
import { FAILURE_REASONS as WHY } from '../reasons';

export interface SampleProblem {
  reason: string;
  message: string;
}

export class SampleChecks {
  private readonly keys = new Set<string>();
  private readonly uids = new Set<string>();

  constructor(
    private readonly shard: string,
    private readonly requireUid: boolean,
  ) {}

  /** The sample's first problem, or null; call for every sample of the tar, in tar order. */
  check(s: Img2DatasetSample): SampleProblem | null {
    const firstKey = !this.keys.has(s.key);
    this.keys.add(s.key);
    const firstUid = s.uid === null || !this.uids.has(s.uid);
    if (s.uid !== null) this.uids.add(s.uid);
    if (s.metaError) return { reason: WHY.badMetadata, message: s.metaError };
    if (s.textError) return { reason: WHY.badText, message: s.textError };
    const unsafe = unsafeKeyReason(s.key);
    if (unsafe) return { reason: WHY.unsafeKey, message: `${this.shard}: key ${JSON.stringify(s.key)}: ${unsafe}` };
    if (!firstKey) return { reason: WHY.duplicateKey, message: `${this.shard}: key ${s.key} appears earlier in the tar` };
    if (this.requireUid && s.uid === null) return { reason: s.meta && s.meta.uid !== undefined && s.meta.uid !== null ? WHY.badUid : WHY.missingUid, message: s.uidError ?? `${s.key}: no uid` };
    if (!firstUid) return { reason: WHY.duplicateUid, message: `${this.shard}: uid ${s.uid} of ${s.key} appears earlier in the tar` };
    return null;
  }
}
