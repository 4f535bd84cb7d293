import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import {
  decodeSubsetNpy,
  encodeSubsetNpy,
  pairToUid,
  readSubsetNpy,
  uidToPair,
  writeSubsetNpy,
} from '../../../lib/formats/subset';
import { storageFor } from '../../../lib/storage';
import { tempDir } from '../../helpers/paths';
import { hasPython, runPython } from './python';

/** Edge uids around the f0/f1 boundary and the top bit (signed vs unsigned comparisons). */
const EDGE = [
  'ffffffffffffffff0000000000000000',
  '0000000000000001ffffffffffffffff',
  '8000000000000000000000000000000',
  '00000000000000000000000000000000',
  '7fffffffffffffff8000000000000000',
  '7fffffffffffffff7fffffffffffffff',
  '0000000000000001fffffffffffffffe',
].map((u) => u.padEnd(32, '0'));

function uidCompare(a: string, b: string): number {
  const [a0, a1] = uidToPair(a);
  const [b0, b1] = uidToPair(b);
  if (a0 !== b0) return a0 < b0 ? -1 : 1;
  return a1 === b1 ? 0 : a1 < b1 ? -1 : 1;
}

let dir: string;
beforeAll(() => {
  dir = tempDir('recaption-subset-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('DataComp subset .npy', () => {
  it('maps uids to (int(uid[:16],16), int(uid[16:],16)) and back', () => {
    expect(uidToPair('0123456789abcdefFEDCBA9876543210')).toEqual([0x0123456789abcdefn, 0xfedcba9876543210n]);
    expect(pairToUid(1n, 2n)).toBe('00000000000000010000000000000002');
    expect(() => uidToPair('xyz')).toThrow(InputError);
  });

  it('writes records sorted by (f0, f1) as uint64, de-duplicated, and reads them back', () => {
    const random = Array.from({ length: 500 }, () => randomBytes(16).toString('hex'));
    const uids = [...EDGE, ...random, EDGE[0], EDGE[1].toUpperCase()];
    const buf = encodeSubsetNpy(uids);
    const back = decodeSubsetNpy(buf);
    const expected = [...new Set(uids.map((u) => u.toLowerCase()))].sort(uidCompare);
    expect(back).toEqual(expected);
    // header: v1.0, data 64-byte aligned, 16 bytes per record
    expect(buf.subarray(0, 8).equals(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]))).toBe(true);
    const dataStart = 10 + buf.readUInt16LE(8);
    expect(dataStart % 64).toBe(0);
    expect(buf.length - dataStart).toBe(16 * expected.length);
    // the first record is little-endian uint64 f0 then f1
    expect(buf.readBigUInt64LE(dataStart)).toBe(uidToPair(expected[0])[0]);
    expect(buf.readBigUInt64LE(dataStart + 8)).toBe(uidToPair(expected[0])[1]);
  });

  it('handles an empty subset', () => {
    expect(decodeSubsetNpy(encodeSubsetNpy([]))).toEqual([]);
  });

  it('rejects unsorted or mistyped files', () => {
    const buf = encodeSubsetNpy(['00000000000000000000000000000001', '00000000000000000000000000000002']);
    const dataStart = 10 + buf.readUInt16LE(8);
    const swapped = Buffer.from(buf);
    buf.copy(swapped, dataStart, dataStart + 16, dataStart + 32);
    buf.copy(swapped, dataStart + 16, dataStart, dataStart + 16);
    expect(() => decodeSubsetNpy(swapped, { name: 's.npy' })).toThrow(/not strictly ascending/);
    expect(decodeSubsetNpy(swapped, { requireSorted: false })).toHaveLength(2);
    const wrongType = Buffer.from(buf.toString('latin1').replace("('f1', '<u8')", "('f1', '<i8')"), 'latin1');
    expect(() => decodeSubsetNpy(wrongType)).toThrow(/u8,u8/);
    expect(() => decodeSubsetNpy(buf.subarray(0, buf.length - 3))).toThrow(InputError);
  });

  it('writes and reads through Storage', async () => {
    const uri = path.join(dir, 'subset.npy');
    expect(await writeSubsetNpy(storageFor(uri), uri, EDGE)).toBe(EDGE.length);
    expect(await readSubsetNpy(storageFor(uri), uri)).toEqual([...EDGE].sort(uidCompare));
  });

  (hasPython('numpy') ? it : it.skip)('numpy loads it as dtype u8,u8, sorted, searchsorted-ready and byte-equal to np.save', () => {
    const uids = [...EDGE, ...Array.from({ length: 50 }, () => randomBytes(16).toString('hex'))];
    const file = path.join(dir, 'np.npy');
    fs.writeFileSync(file, encodeSubsetNpy(uids));
    const out = runPython<{ dtype: boolean; descr: string; sorted: boolean; uids: string[]; found: number[]; same: boolean }>(
      `
import json, sys, io, numpy as np
a = np.load(sys.argv[1])
q = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in sys.argv[2:]], dtype=np.dtype("u8,u8"))
idx = np.searchsorted(a, q)
buf = io.BytesIO(); np.save(buf, np.sort(a))
print(json.dumps({
  "dtype": a.dtype == np.dtype("u8,u8"), "descr": str(a.dtype.descr),
  "sorted": bool((np.sort(a) == a).all()),
  "uids": ["%016x%016x" % (int(r["f0"]), int(r["f1"])) for r in a],
  "found": [int(i) for i in idx],
  "same": buf.getvalue() == open(sys.argv[1], "rb").read(),
}))
`,
      [file, ...EDGE],
    );
    const expected = [...new Set(uids)].sort(uidCompare);
    expect(out.dtype).toBe(true);
    expect(out.descr).toBe("[('f0', '<u8'), ('f1', '<u8')]");
    expect(out.sorted).toBe(true);
    expect(out.uids).toEqual(expected);
    expect(out.found).toEqual(EDGE.map((u) => expected.indexOf(u)));
    expect(out.same).toBe(true);
  });
});
