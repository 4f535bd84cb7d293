/**
 * DataComp subset files: a `.npy` array of NumPy structured dtype `u8,u8` (fields f0, f1 little-endian
 * uint64), one record per uid `(int(uid[:16], 16), int(uid[16:32], 16))`, sorted ascending. DataComp's
 * resharder binary-searches it (np.searchsorted), so order matters.
 *
 * The .npy header is written by hand (format spec: numpy.lib.format, version 1.0): no maintained npm
 * package writes structured dtypes.
 */
import { InputError } from '../errors';
import type { Storage } from '../storage';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"
/** Exactly what `np.dtype('u8,u8').descr` prints, so numpy's own header parser accepts it verbatim. */
const DESCR = "[('f0', '<u8'), ('f1', '<u8')]";
const RECORD_BYTES = 16;
const UID_RE = /^[0-9a-f]{32}$/;

/** Normalise a DataComp uid (32 hex chars) to lower case; throws InputError('InvalidUid') otherwise. */
export function normalizeUid(uid: string): string {
  const u = uid.toLowerCase();
  if (!UID_RE.test(u)) throw new InputError('InvalidUid', `not a DataComp uid (32 hex chars): ${JSON.stringify(uid)}`);
  return u;
}

/** `(int(uid[:16],16), int(uid[16:32],16))`, as DataComp computes it. */
export function uidToPair(uid: string): [bigint, bigint] {
  const u = normalizeUid(uid);
  return [BigInt(`0x${u.slice(0, 16)}`), BigInt(`0x${u.slice(16)}`)];
}

export function pairToUid(f0: bigint, f1: bigint): string {
  return f0.toString(16).padStart(16, '0') + f1.toString(16).padStart(16, '0');
}

/**
 * Encode uids as a DataComp subset .npy. Uids are normalised to lower case, de-duplicated (a subset is a
 * set) and sorted; sorting fixed-width lower-case hex strings is the same order as (f0, f1) as uint64.
 */
export function encodeSubsetNpy(uids: Iterable<string>): Buffer {
  const sorted = [...new Set(Array.from(uids, normalizeUid))].sort();
  const header = npyHeader(sorted.length);
  const out = Buffer.alloc(header.length + sorted.length * RECORD_BYTES);
  header.copy(out, 0);
  let off = header.length;
  for (const uid of sorted) {
    out.write(leHex(uid.slice(0, 16)), off, 'hex');
    out.write(leHex(uid.slice(16)), off + 8, 'hex');
    off += RECORD_BYTES;
  }
  return out;
}

/** Big-endian hex of a uint64 -> its little-endian byte order as hex. */
function leHex(be: string): string {
  let s = '';
  for (let i = be.length - 2; i >= 0; i -= 2) s += be.slice(i, i + 2);
  return s;
}

function npyHeader(count: number): Buffer {
  const dict = `{'descr': ${DESCR}, 'fortran_order': False, 'shape': (${count},), }`;
  // Version 1.0: magic(6) + version(2) + header_len(uint16 LE), then the dict padded with spaces and a
  // final newline so the data starts at a multiple of 64 bytes (what numpy >= 1.14 writes).
  const pre = MAGIC.length + 2 + 2;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const text = dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
  const buf = Buffer.alloc(total);
  MAGIC.copy(buf, 0);
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(text.length, 8);
  buf.write(text, pre, 'latin1');
  return buf;
}

export interface DecodeSubsetOptions {
  /** Name for error messages. */
  name?: string;
  /** Throw InputError('CorruptInput') unless records are strictly ascending (default true). */
  requireSorted?: boolean;
}

/** Decode a DataComp subset .npy (versions 1.0-3.0) into lower-case uids in file order. */
export function decodeSubsetNpy(data: Buffer, opts: DecodeSubsetOptions = {}): string[] {
  const name = opts.name ?? 'subset .npy';
  const fail = (why: string): never => {
    throw new InputError('CorruptInput', `${name}: ${why}`);
  };
  if (data.length < 10 || !data.subarray(0, 6).equals(MAGIC)) fail('not a .npy file');
  const major = data[6];
  let headerLen: number;
  let pre: number;
  if (major === 1) {
    headerLen = data.readUInt16LE(8);
    pre = 10;
  } else if (major === 2 || major === 3) {
    if (data.length < 12) fail('truncated header');
    headerLen = data.readUInt32LE(8);
    pre = 12;
  } else {
    return fail(`unsupported .npy version ${major}`);
  }
  if (data.length < pre + headerLen) fail('truncated header');
  const header = data.subarray(pre, pre + headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*(\[.*?\])\s*,/.exec(header)?.[1]?.replace(/\s+/g, '').replace(/"/g, "'");
  if (descr !== DESCR.replace(/\s+/g, '')) fail(`dtype must be u8,u8 (${DESCR}), got ${descr ?? 'unknown'}`);
  if (!/'fortran_order':\s*False/.test(header)) fail('fortran_order arrays are not supported');
  const shape = /'shape':\s*\((\d+),\s*\)/.exec(header);
  if (!shape) return fail('array must be 1-dimensional');
  const count = Number(shape[1]);
  const body = data.subarray(pre + headerLen);
  if (body.length !== count * RECORD_BYTES) fail(`expected ${count} records (${count * RECORD_BYTES} bytes), found ${body.length} bytes`);
  const uids: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const off = i * RECORD_BYTES;
    uids[i] = pairToUid(body.readBigUInt64LE(off), body.readBigUInt64LE(off + 8));
    if ((opts.requireSorted ?? true) && i > 0 && uids[i] <= uids[i - 1]) fail(`records not strictly ascending at index ${i}`);
  }
  return uids;
}

export async function writeSubsetNpy(storage: Storage, uri: string, uids: Iterable<string>): Promise<number> {
  const buf = encodeSubsetNpy(uids);
  await storage.writeAtomic(uri, buf);
  return (buf.length - buf.readUInt16LE(8) - 10) / RECORD_BYTES;
}

export async function readSubsetNpy(storage: Storage, uri: string, opts: Omit<DecodeSubsetOptions, 'name'> = {}): Promise<string[]> {
  return decodeSubsetNpy(await storage.readBuffer(uri), { ...opts, name: uri });
}
