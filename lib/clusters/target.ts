/**
 * DataComp's image-based filter around a NearestCentroid: the target is the set of centroids hit by the
 * reference embeddings (ImageNet-1k train, CLIP L/14); a pool sample is kept iff its own nearest centroid is in
 * the target. The target set can be computed once and cached as a `.npy` int64 vector (`writeTargetList`).
 */
import { InputError } from '../errors';
import { decodeIntVector, encodeIntVector, isNpy } from '../formats/npy';
import { storageFor, type StorageOptions } from '../storage';
import type { NearestCentroid } from './nearest';

export interface TargetClustersOptions {
  /** Rows handed to `nc.assign` at a time (default 65,536): bounds the int32 result buffer, not ORT memory. */
  batchRows?: number;
  /** Called after every batch with the number of rows done (for heartbeats / progress bars). */
  onProgress?: (rowsDone: number, rowsTotal: number) => void;
}

/** The set of centroid ids that the `n` reference embeddings ([n, nc.d] row-major) are nearest to. */
export async function targetClusters(reference: Float32Array, n: number, nc: NearestCentroid, opts: TargetClustersOptions = {}): Promise<Set<number>> {
  if (reference.length !== n * nc.d) {
    throw new InputError('BadEmbeddings', `reference embeddings: ${reference.length} values for ${n} rows of dimension ${nc.d}`);
  }
  const batch = opts.batchRows ?? 65_536;
  const target = new Set<number>();
  for (let start = 0; start < n; start += batch) {
    const rows = Math.min(batch, n - start);
    const ids = await nc.assign(reference.subarray(start * nc.d, (start + rows) * nc.d), rows);
    for (const id of ids) target.add(id);
    opts.onProgress?.(start + rows, n);
  }
  return target;
}

/** The image-cluster filter's rule for one sample: its nearest centroid (null: none assigned) is a target centroid. */
export function inTargetClusters(cluster: number | null, target: ReadonlySet<number>): boolean {
  return cluster !== null && target.has(cluster);
}

/** Decodes a target list: `.npy` int64/int32 vector (detected by its magic bytes) or text, one index per line. */
function decodeTargetList(data: Buffer, name: string, k?: number): Set<number> {
  let ids: number[];
  if (isNpy(data)) {
    ids = decodeIntVector(data, name);
  } else {
    ids = [];
    const lines = data.toString('utf8').split(/\r?\n/);
    lines.forEach((raw, i) => {
      const line = raw.replace(/#.*$/, '').trim(); // blank lines and `#` comments are ignored
      if (line === '') return;
      if (!/^\d+$/.test(line)) throw new InputError('BadTargetList', `${name}: line ${i + 1}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
      ids.push(Number(line));
    });
  }
  const target = new Set<number>();
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0 || (k !== undefined && id >= k)) {
      throw new InputError('BadTargetList', `${name}: centroid id ${id} out of range${k !== undefined ? ` [0, ${k})` : ''}`);
    }
    target.add(id);
  }
  return target;
}

/**
 * Reads a target list from a local path or gs:// uri: a `.npy` int64/int32 vector or a text file of indices.
 * With `k`, ids outside [0, k) are rejected (a list made for another centroid file).
 */
export async function readTargetList(uri: string, opts: StorageOptions & { k?: number } = {}): Promise<Set<number>> {
  return decodeTargetList(await storageFor(uri, opts).readBuffer(uri), uri, opts.k);
}

/** Writes a target set as a sorted `.npy` int64 vector (numpy: `np.load(uri)`). */
export async function writeTargetList(uri: string, target: Iterable<number>, opts: StorageOptions = {}): Promise<void> {
  const sorted = Float64Array.from(new Set(target)).sort();
  // A file the user asked for (`recaption image-clusters --out`): a rerun rewrites it.
  await storageFor(uri, opts).writeAtomic(uri, encodeIntVector(sorted, '<i8'), { replace: true });
}
