/**
 * DataComp subset files: a `.npy` array of NumPy structured dtype `u8,u8` (fields f0, f1 little-endian
 * uint64), one record per uid `(int(uid[:16], 16), int(uid[16:32], 16))`, sorted ascending. DataComp's
 * resharder binary-searches it (np.searchsorted), so order matters. The bytes are npy.ts's business; this
 * module holds only the subset rules (uid <-> record, normalise, de-duplicate, sort, check the order on read).
 */
import { InputError } from '../errors';
import type { CommitOptions, Storage } from '../storage';
import { encodeNpy, parseNpy, type NpyArray } from './npy';

const UID_RE = /^[0-9a-f]{32}$/;

/** Normalise a DataComp uid (32 hex chars) to lower case; throws InputError('InvalidUid') otherwise. */
export function normalizeUid(uid: string): string {
  const u = uid.toLowerCase();
  if (!UID_RE.test(u)) throw new InputError('InvalidUid', `not a DataComp uid (32 hex chars): ${JSON.stringify(uid)}`);
  return u;
}

/** `(int(uid[:16],16), int(uid[16:32],16))`, as DataComp computes it. */
export function uidToPair(uid: string): [bigint, bigint] {
  return fieldsOf(normalizeUid(uid));
}

/** The (f0, f1) record of an already normalised uid. */
function fieldsOf(u: string): [bigint, bigint] {
  return [BigInt(`0x${u.slice(0, 16)}`), BigInt(`0x${u.slice(16)}`)];
}

export function pairToUid(f0: bigint, f1: bigint): string {
  return f0.toString(16).padStart(16, '0') + f1.toString(16).padStart(16, '0');
}

/**
 * Normalised to lower case, de-duplicated (a subset is a set) and sorted; sorting fixed-width lower-case hex
 * strings is the same order as (f0, f1) as uint64.
 */
function subsetOrder(uids: Iterable<string>): string[] {
  return [...new Set(Array.from(uids, normalizeUid))].sort();
}

function encodeSorted(sorted: readonly string[]): Buffer {
  const fields = new BigUint64Array(sorted.length * 2);
  sorted.forEach((uid, i) => {
    [fields[2 * i], fields[2 * i + 1]] = fieldsOf(uid);
  });
  return encodeNpy({ dtype: 'u8,u8', shape: [sorted.length], data: fields });
}

/** Encode uids as a DataComp subset .npy (normalised, de-duplicated and sorted first). */
export function encodeSubsetNpy(uids: Iterable<string>): Buffer {
  return encodeSorted(subsetOrder(uids));
}

export interface DecodeSubsetOptions {
  /** Name for error messages. */
  name?: string;
  /** Throw InputError('CorruptInput') unless records are strictly ascending (default true). */
  requireSorted?: boolean;
}

/** The file's `u8,u8` array. A subset file is pipeline data, so a malformed one is CorruptInput like every other. */
function parseRecords(data: Buffer, name: string): NpyArray {
  try {
    return parseNpy(data, name, ['u8,u8']);
  } catch (err) {
    if (err instanceof InputError && err.type === 'BadNpy') throw new InputError('CorruptInput', err.message);
    throw err;
  }
}

/** Decode a DataComp subset .npy (versions 1.0-3.0) into lower-case uids in file order. */
export function decodeSubsetNpy(data: Buffer, opts: DecodeSubsetOptions = {}): string[] {
  const name = opts.name ?? 'subset .npy';
  const fail = (why: string): never => {
    throw new InputError('CorruptInput', `${name}: ${why}`);
  };
  const arr = parseRecords(data, name);
  if (arr.shape.length !== 1) fail('array must be 1-dimensional');
  const records = arr.data as BigUint64Array;
  const uids: string[] = new Array(records.length / 2);
  for (let i = 0; i < uids.length; i++) {
    uids[i] = pairToUid(records[2 * i]!, records[2 * i + 1]!);
    if ((opts.requireSorted ?? true) && i > 0 && uids[i] <= uids[i - 1]) fail(`records not strictly ascending at index ${i}`);
  }
  return uids;
}

/** Writes the subset atomically (no-clobber unless `opts.replace`); returns how many distinct uids it holds. */
export async function writeSubsetNpy(storage: Storage, uri: string, uids: Iterable<string>, opts?: CommitOptions): Promise<number> {
  const sorted = subsetOrder(uids);
  await storage.writeAtomic(uri, encodeSorted(sorted), opts);
  return sorted.length;
}

export async function readSubsetNpy(storage: Storage, uri: string, opts: Omit<DecodeSubsetOptions, 'name'> = {}): Promise<string[]> {
  return decodeSubsetNpy(await storage.readBuffer(uri), { ...opts, name: uri });
}
