import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../../lib/errors';
import {
  decodeFloatMatrix,
  decodeIntVector,
  encodeFloatMatrix,
  encodeIntVector,
  encodeNpy,
  parseNpy,
  readFloatMatrix,
  readIntVector,
  writeNpy,
} from '../../../lib/formats/npy';
import { tempDir } from '../../helpers/paths';
import { hasPython, runPython } from './python';

function expectBadNpy(fn: () => unknown, name: string, why: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('BadNpy');
    expect((err as Error).message).toContain(name);
    expect((err as Error).message).toMatch(why);
    return;
  }
  throw new Error('expected an InputError');
}

/** A .npy with an arbitrary header dict (v1.0, 64-byte aligned) and body. */
function rawNpy(dict: string, body: Buffer): Buffer {
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const text = dict + ' '.repeat(total - 10 - dict.length - 1) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1'), body]);
}

describe('npy', () => {
  it('round-trips float32 and float16 matrices', () => {
    const data = Float32Array.from({ length: 3 * 5 }, (_, i) => (i - 7) / 4); // exactly representable in fp16
    const f4 = decodeFloatMatrix(encodeFloatMatrix(data, 3, 5), 'a.npy');
    expect([f4.rows, f4.cols]).toEqual([3, 5]);
    expect(Array.from(f4.data)).toEqual(Array.from(data));
    const f2buf = encodeFloatMatrix(data, 3, 5, '<f2');
    expect(parseNpy(f2buf).dtype).toBe('<f2');
    const f2 = decodeFloatMatrix(f2buf, 'b.npy');
    expect(Array.from(f2.data)).toEqual(Array.from(data));
    // data starts on a 64-byte boundary, like numpy writes it
    expect((f2buf.length - 15 * 2) % 64).toBe(0);
  });

  it('round-trips int64 and int32 vectors, including empty ones', () => {
    const values = [0, 5, 99_999, 2 ** 40, -3];
    expect(decodeIntVector(encodeIntVector(values), 'i8.npy')).toEqual(values);
    expect(decodeIntVector(encodeIntVector([1, -2, 3], '<i4'), 'i4.npy')).toEqual([1, -2, 3]);
    expect(decodeIntVector(encodeIntVector([]), 'empty.npy')).toEqual([]);
    expect(() => encodeIntVector([2 ** 31], '<i4')).toThrow(/does not fit/);
  });

  it('round-trips u8,u8 records only where asked for', () => {
    const fields = BigUint64Array.from([1n, 2n, 2n ** 64n - 1n, 0n]);
    const buf = encodeNpy({ dtype: 'u8,u8', shape: [2], data: fields });
    expect(buf.toString('latin1', 10, 80)).toContain("'descr': [('f0', '<u8'), ('f1', '<u8')]");
    const back = parseNpy(buf, 'rec.npy', ['u8,u8']);
    expect([back.dtype, back.shape, Array.from(back.data as BigUint64Array)]).toEqual(['u8,u8', [2], Array.from(fields)]);
    expectBadNpy(() => parseNpy(buf, 'rec.npy'), 'rec.npy', /unsupported dtype/);
    expect(() => encodeNpy({ dtype: 'u8,u8', shape: [3], data: fields })).toThrow(/4 values for shape \(3\)/);
  });

  it('reads from an unaligned Buffer (copying) and writes a v2.0 header when v1.0 cannot hold it', () => {
    const enc = encodeFloatMatrix(Float32Array.from([1, 2, 3, 4]), 2, 2);
    const shifted = Buffer.alloc(enc.length + 1);
    enc.copy(shifted, 1);
    expect(Array.from(decodeFloatMatrix(shifted.subarray(1), 'x.npy').data)).toEqual([1, 2, 3, 4]);
    // a header > 64 KiB: a shape with many dims forces version 2.0
    const shape = [...Array.from({ length: 25_000 }, () => 1), 2];
    const big = encodeNpy({ dtype: '<i4', shape, data: Int32Array.from([7, 8]) });
    expect(big[6]).toBe(2);
    const back = parseNpy(big, 'big.npy');
    expect(back.shape).toEqual(shape);
    expect(Array.from(back.data as Int32Array)).toEqual([7, 8]);
  });

  it('reads and writes through storage uris', async () => {
    const dir = tempDir();
    const uri = path.join(dir, 'sub', 'c.npy');
    await writeNpy(uri, { dtype: '<f4', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    const m = await readFloatMatrix(uri);
    expect([m.rows, m.cols, Array.from(m.data)]).toEqual([2, 3, [1, 2, 3, 4, 5, 6]]);
    const ids = path.join(dir, 'ids.npy');
    writeFileSync(ids, encodeIntVector([3, 1, 2]));
    expect(await readIntVector(ids)).toEqual([3, 1, 2]);
  });

  it('rejects wrong dtype, rank, Fortran order, truncation and non-npy input with BadNpy naming the file', () => {
    const f4 = Buffer.alloc(8);
    expectBadNpy(() => decodeFloatMatrix(rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f4), 'f8.npy'), 'f8.npy', /dtype '<f8'/);
    expectBadNpy(() => decodeFloatMatrix(rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4), 'be.npy'), 'be.npy', /'>f4'/);
    expectBadNpy(() => decodeFloatMatrix(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4), 'r1.npy'), 'r1.npy', /2-D/);
    expectBadNpy(() => decodeFloatMatrix(rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", f4), 'fo.npy'), 'fo.npy', /Fortran/);
    expectBadNpy(() => decodeFloatMatrix(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f4), 'tr.npy'), 'tr.npy', /needs 24 data bytes, file has 8/);
    expectBadNpy(() => decodeIntVector(encodeFloatMatrix(Float32Array.from([1, 2]), 1, 2), 'ints.npy'), 'ints.npy', /int64 or int32/);
    expectBadNpy(() => decodeIntVector(encodeNpy({ dtype: '<i8', shape: [1, 1], data: BigInt64Array.from([1n]) }), 'r2.npy'), 'r2.npy', /1-D/);
    expectBadNpy(
      () => decodeIntVector(rawNpy("{'descr': [('f0', '<u8'), ('f1', '<u8')], 'fortran_order': False, 'shape': (0,), }", Buffer.alloc(0)), 'subset.npy'),
      'subset.npy',
      /unsupported dtype/,
    );
    expectBadNpy(() => parseNpy(Buffer.from('hello world, not numpy'), 'text.npy'), 'text.npy', /magic/);
  });

  it('storage reads report the uri in errors', async () => {
    const dir = tempDir();
    const uri = path.join(dir, 'wrong.npy');
    writeFileSync(uri, encodeIntVector([1, 2]));
    await expect(readFloatMatrix(uri)).rejects.toThrow(new RegExp(`${uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: expected a float32 or float16 matrix`));
  });

  (hasPython('numpy') ? it : it.skip)('numpy reads what we write and we read what numpy writes', () => {
    const dir = tempDir();
    const ours = {
      f4: path.join(dir, 'f4.npy'),
      f2: path.join(dir, 'f2.npy'),
      i8: path.join(dir, 'i8.npy'),
      i4: path.join(dir, 'i4.npy'),
    };
    const mat = Float32Array.from({ length: 4 * 3 }, (_, i) => Math.fround(Math.sin(i) * 3));
    writeFileSync(ours.f4, encodeFloatMatrix(mat, 4, 3));
    writeFileSync(ours.f2, encodeFloatMatrix(mat, 4, 3, '<f2'));
    writeFileSync(ours.i8, encodeIntVector([5, 0, 2 ** 40]));
    writeFileSync(ours.i4, encodeIntVector([-1, 7], '<i4'));
    const theirs = path.join(dir, 'np');
    const out = runPython<{ f4: number[][]; f4dtype: string; f2eq: boolean; f2dtype: string; i8: number[]; i4: number[]; same: boolean }>(
      `
import json, sys, numpy as np, io
d = json.loads(sys.argv[1]); base = sys.argv[2]
f4 = np.load(d['f4']); f2 = np.load(d['f2']); i8 = np.load(d['i8']); i4 = np.load(d['i4'])
buf = io.BytesIO(); np.save(buf, f4)
same = buf.getvalue() == open(d['f4'], 'rb').read()
np.save(base + '_f4.npy', (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5))
np.save(base + '_f2.npy', (np.arange(6, dtype=np.float16).reshape(3, 2) / 4))
np.save(base + '_i8.npy', np.array([9, 1, 123456789012], dtype=np.int64))
np.save(base + '_i4.npy', np.array([3, -4], dtype=np.int32))
np.save(base + '_fo.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
print(json.dumps({'f4': f4.tolist(), 'f4dtype': f4.dtype.str, 'f2eq': bool((f2 == f4.astype(np.float16)).all()),
  'f2dtype': f2.dtype.str, 'i8': i8.tolist(), 'i4': i4.tolist(), 'same': same}))
`,
      [JSON.stringify(ours), theirs],
    );
    expect(out.f4dtype).toBe('<f4');
    expect(out.f4.flat()).toEqual(Array.from(mat));
    expect(out.same).toBe(true); // byte-identical to np.save
    expect(out.f2dtype).toBe('<f2');
    expect(out.f2eq).toBe(true); // our float16 rounding equals numpy's astype(float16)
    expect(out.i8).toEqual([5, 0, 2 ** 40]);
    expect(out.i4).toEqual([-1, 7]);

    const f4 = decodeFloatMatrix(readFileSync(`${theirs}_f4.npy`), 'np_f4');
    expect([f4.rows, f4.cols, Array.from(f4.data)]).toEqual([2, 3, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]]);
    const f2 = decodeFloatMatrix(readFileSync(`${theirs}_f2.npy`), 'np_f2');
    expect([f2.rows, f2.cols, Array.from(f2.data)]).toEqual([3, 2, [0, 0.25, 0.5, 0.75, 1, 1.25]]);
    expect(decodeIntVector(readFileSync(`${theirs}_i8.npy`), 'np_i8')).toEqual([9, 1, 123456789012]);
    expect(decodeIntVector(readFileSync(`${theirs}_i4.npy`), 'np_i4')).toEqual([3, -4]);
    expectBadNpy(() => decodeFloatMatrix(readFileSync(`${theirs}_fo.npy`), `${theirs}_fo.npy`), `${theirs}_fo.npy`, /Fortran/);
  });
});
