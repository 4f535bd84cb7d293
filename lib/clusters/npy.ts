/**
 * Plain NumPy `.npy` arrays for the image-cluster filter: 2-D float matrices (`<f4`, `<f2`: centroids,
 * embeddings) and 1-D integer vectors (`<i8`, `<i4`: cluster ids), C order, format versions 1.0-3.0 on read,
 * 1.0 (2.0 when the header would not fit) on write.
 *
 * Written by hand against the format spec (numpy.lib.format): the npm readers we looked at are unmaintained or
 * mishandle v2/v3 headers, float16 and unaligned buffers, and the format is ~100 lines. lib/formats/subset.ts
 * writes the structured `u8,u8` subset files with the same header conventions (64-byte aligned data, header
 * padded with spaces and ended by a newline). Little-endian hosts only (every platform Node 20 ships for).
 */
import { InputError } from '../errors';
import { fromFloat16Bits, toFloat16Bits } from '../models/float16';
import { storageFor, type StorageOptions } from '../storage';

export type NpyDtype = '<f4' | '<f2' | '<i8' | '<i4';

/** Typed storage per dtype: float16 stays as raw IEEE half bits (Node 20 has no Float16Array). */
export type NpyData = Float32Array | Uint16Array | BigInt64Array | Int32Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** C-order elements; `<f2` as Uint16Array bits, `<i8` as BigInt64Array. */
  data: NpyData;
}

/** A row-major float32 matrix [rows, cols]. */
export interface FloatMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ITEMSIZE: Record<NpyDtype, number> = { '<f4': 4, '<f2': 2, '<i8': 8, '<i4': 4 };
/** numpy writes `<` on little-endian hosts, `|` only for single bytes; `=` (native) is accepted too. */
const DTYPE_ALIASES: Record<string, NpyDtype> = {
  '<f4': '<f4', '=f4': '<f4',
  '<f2': '<f2', '=f2': '<f2',
  '<i8': '<i8', '=i8': '<i8',
  '<i4': '<i4', '=i4': '<i4',
};

/** True when the bytes start with the .npy magic string. */
export function isNpy(data: Buffer): boolean {
  return data.length >= 6 && data.subarray(0, 6).equals(MAGIC);
}

function badNpy(name: string, why: string): never {
  throw new InputError('BadNpy', `${name}: ${why}`);
}

interface Header {
  dtype: NpyDtype;
  shape: number[];
  dataOffset: number;
}

function parseHeader(data: Buffer, name: string): Header {
  if (!isNpy(data)) badNpy(name, 'not a .npy file (missing \\x93NUMPY magic)');
  if (data.length < 10) badNpy(name, 'truncated header');
  const major = data[6];
  let headerLen: number;
  let pre: number;
  if (major === 1) {
    headerLen = data.readUInt16LE(8);
    pre = 10;
  } else if (major === 2 || major === 3) {
    if (data.length < 12) badNpy(name, 'truncated header');
    headerLen = data.readUInt32LE(8);
    pre = 12;
  } else {
    return badNpy(name, `unsupported .npy format version ${major}.${data[7]}`);
  }
  if (data.length < pre + headerLen) badNpy(name, 'truncated header');
  const text = data.subarray(pre, pre + headerLen).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /['"]descr['"]\s*:\s*(['"])(.*?)\1/.exec(text)?.[2];
  if (descr === undefined) {
    // Structured dtypes are written as a list of fields.
    badNpy(name, `unsupported dtype ${/['"]descr['"]\s*:\s*(\[.*?\])/.exec(text)?.[1] ?? '(none)'}; expected one of <f4, <f2, <i8, <i4`);
  }
  const dtype = DTYPE_ALIASES[descr];
  if (!dtype) badNpy(name, `unsupported dtype '${descr}'; expected one of <f4, <f2, <i8, <i4 (little-endian)`);

  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  if (fortran === undefined) badNpy(name, 'header has no fortran_order');
  if (fortran === 'True') badNpy(name, 'Fortran-order (column-major) arrays are not supported; save with np.ascontiguousarray');

  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (shapeText === undefined) badNpy(name, 'header has no shape');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+L?$/.test(s)) badNpy(name, `bad shape entry '${s}'`);
      return Number.parseInt(s, 10);
    });
  return { dtype, shape, dataOffset: pre + headerLen };
}

/** A typed array over `bytes`, sharing memory when aligned, copying otherwise (pooled Buffers often are not). */
function typedView(dtype: NpyDtype, bytes: Buffer, count: number): NpyData {
  const size = ITEMSIZE[dtype];
  const aligned = bytes.byteOffset % size === 0;
  const buffer = aligned ? bytes.buffer : new Uint8Array(bytes).buffer;
  const offset = aligned ? bytes.byteOffset : 0;
  switch (dtype) {
    case '<f4':
      return new Float32Array(buffer, offset, count);
    case '<f2':
      return new Uint16Array(buffer, offset, count);
    case '<i8':
      return new BigInt64Array(buffer, offset, count);
    case '<i4':
      return new Int32Array(buffer, offset, count);
  }
}

/** Decodes any supported .npy (see NpyDtype). `name` (a uri or file name) is used in every error message. */
export function parseNpy(data: Buffer, name = '.npy'): NpyArray {
  const { dtype, shape, dataOffset } = parseHeader(data, name);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = count * ITEMSIZE[dtype];
  const available = data.length - dataOffset;
  if (available !== bytes) {
    badNpy(name, `shape (${shape.join(', ')}) of ${dtype} needs ${bytes} data bytes, file has ${available}`);
  }
  return { dtype, shape, data: typedView(dtype, data.subarray(dataOffset, dataOffset + bytes), count) };
}

/** A 2-D `<f4` or `<f2` array as float32 (float16 is widened exactly). */
export function decodeFloatMatrix(data: Buffer, name = '.npy'): FloatMatrix {
  const arr = parseNpy(data, name);
  if (arr.dtype !== '<f4' && arr.dtype !== '<f2') badNpy(name, `expected a float32 or float16 matrix, got dtype ${arr.dtype}`);
  if (arr.shape.length !== 2) badNpy(name, `expected a 2-D matrix, got shape (${arr.shape.join(', ')})`);
  const [rows, cols] = arr.shape as [number, number];
  const floats = arr.dtype === '<f4' ? (arr.data as Float32Array) : fromFloat16Bits(arr.data as Uint16Array);
  return { data: floats, rows, cols };
}

/** A 1-D `<i8` or `<i4` array as plain numbers (values must be safe integers). */
export function decodeIntVector(data: Buffer, name = '.npy'): number[] {
  const arr = parseNpy(data, name);
  if (arr.dtype !== '<i8' && arr.dtype !== '<i4') badNpy(name, `expected an int64 or int32 vector, got dtype ${arr.dtype}`);
  if (arr.shape.length !== 1) badNpy(name, `expected a 1-D vector, got shape (${arr.shape.join(', ')})`);
  if (arr.dtype === '<i4') return Array.from(arr.data as Int32Array);
  const src = arr.data as BigInt64Array;
  const out = new Array<number>(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) badNpy(name, `value ${v} at index ${i} is not a safe integer`);
    out[i] = Number(v);
  }
  return out;
}

/** The header for `dtype`/`shape`: version 1.0 unless it exceeds 64 KiB, data 64-byte aligned. */
function npyHeader(dtype: NpyDtype, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = 1;
  let pre = 10;
  let total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  if (total - pre > 0xffff) {
    major = 2;
    pre = 12;
    total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  }
  const text = dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
  const buf = Buffer.alloc(total);
  MAGIC.copy(buf, 0);
  buf[6] = major;
  buf[7] = 0;
  if (major === 1) buf.writeUInt16LE(text.length, 8);
  else buf.writeUInt32LE(text.length, 8);
  buf.write(text, pre, 'latin1');
  return buf;
}

/** Encodes an array; `data.length` must equal the product of `shape` and its type must match `dtype`. */
export function encodeNpy(arr: NpyArray): Buffer {
  const { dtype, shape, data } = arr;
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`encodeNpy: bad shape (${shape.join(', ')})`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`encodeNpy: ${data.length} values for shape (${shape.join(', ')})`);
  const expected = { '<f4': Float32Array, '<f2': Uint16Array, '<i8': BigInt64Array, '<i4': Int32Array }[dtype];
  if (!(data instanceof expected)) throw new Error(`encodeNpy: dtype ${dtype} needs a ${expected.name}, got ${data.constructor.name}`);
  const header = npyHeader(dtype, shape);
  const out = Buffer.alloc(header.length + data.byteLength);
  header.copy(out, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** A [rows, cols] float matrix as `<f4` (default) or `<f2` (round-to-nearest-even). */
export function encodeFloatMatrix(data: Float32Array, rows: number, cols: number, dtype: '<f4' | '<f2' = '<f4'): Buffer {
  if (data.length !== rows * cols) throw new Error(`encodeFloatMatrix: ${data.length} values for [${rows}, ${cols}]`);
  return encodeNpy({ dtype, shape: [rows, cols], data: dtype === '<f4' ? data : toFloat16Bits(data) });
}

/** A 1-D integer vector as `<i8` (default, what numpy writes for Python ints) or `<i4`. */
export function encodeIntVector(values: ArrayLike<number>, dtype: '<i8' | '<i4' = '<i8'): Buffer {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isSafeInteger(v) || (dtype === '<i4' && (v < -0x80000000 || v > 0x7fffffff))) {
      throw new Error(`encodeIntVector: value ${v} at index ${i} does not fit ${dtype}`);
    }
  }
  const data = dtype === '<i8' ? BigInt64Array.from(Array.from(values), (v) => BigInt(v)) : Int32Array.from(values);
  return encodeNpy({ dtype, shape: [values.length], data });
}

export async function readNpy(uri: string, opts: StorageOptions = {}): Promise<NpyArray> {
  return parseNpy(await storageFor(uri, opts).readBuffer(uri), uri);
}

export async function readFloatMatrix(uri: string, opts: StorageOptions = {}): Promise<FloatMatrix> {
  return decodeFloatMatrix(await storageFor(uri, opts).readBuffer(uri), uri);
}

export async function readIntVector(uri: string, opts: StorageOptions = {}): Promise<number[]> {
  return decodeIntVector(await storageFor(uri, opts).readBuffer(uri), uri);
}

/** Writes an encoded array atomically (temp name + commit). */
export async function writeNpy(uri: string, arr: NpyArray, opts: StorageOptions = {}): Promise<void> {
  await storageFor(uri, opts).writeAtomic(uri, encodeNpy(arr));
}
