/**
 * The one NumPy `.npy` codec. C-order arrays of plain little-endian numbers (`<f4`, `<f2`: centroid and embedding
 * matrices; `<i8`, `<i4`: cluster ids) and of the structured record `u8,u8` (two little-endian uint64 fields f0, f1:
 * DataComp subset files, whose rules live in subset.ts). Reads format versions 1.0-3.0; writes 1.0 (2.0 when the
 * header would not fit) exactly as `np.save` does: the header dict padded with spaces and ended by a newline so the
 * data starts on a 64-byte boundary.
 *
 * Written by hand against the format spec (numpy.lib.format): the npm readers (npyjs, numpy-parser) have no
 * structured dtypes, numpy-parser has neither float16 nor v2/v3 headers, and the format is small. Little-endian
 * hosts only (every platform Node 20 ships for), so typed arrays map the data bytes directly.
 */
import { InputError } from '../errors';
import { fromFloat16Bits, toFloat16Bits } from './float16';
import { storageFor, type StorageOptions } from '../storage';

export type NpyDtype = '<f4' | '<f2' | '<i8' | '<i4' | 'u8,u8';

/** Typed storage per dtype: float16 stays as raw IEEE half bits (Node 20 has no Float16Array). */
export type NpyData = Float32Array | Uint16Array | BigInt64Array | Int32Array | BigUint64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /**
   * C-order elements; `<f2` as Uint16Array bits, `<i8` as BigInt64Array, `u8,u8` as BigUint64Array holding each
   * record's fields in turn (f0, f1, f0, f1, ...), so its length is twice the element count.
   */
  data: NpyData;
}

/** A row-major float32 matrix [rows, cols]. */
export interface FloatMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

interface TypedArrayType {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NpyData;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

interface DtypeSpec {
  /** The header's `descr` value as np.save writes it (a quoted type string, or a field list for records). */
  descr: string;
  /** Typed-array elements per array element: 2 for the two fields of a `u8,u8` record. */
  lanes: number;
  array: TypedArrayType;
}

const DTYPES: Record<NpyDtype, DtypeSpec> = {
  '<f4': { descr: "'<f4'", lanes: 1, array: Float32Array },
  '<f2': { descr: "'<f2'", lanes: 1, array: Uint16Array },
  '<i8': { descr: "'<i8'", lanes: 1, array: BigInt64Array },
  '<i4': { descr: "'<i4'", lanes: 1, array: Int32Array },
  // Exactly what `np.dtype('u8,u8').descr` prints, so numpy's own header parser accepts it verbatim.
  'u8,u8': { descr: "[('f0', '<u8'), ('f1', '<u8')]", lanes: 2, array: BigUint64Array },
};

/** What `parseNpy` accepts unless told otherwise: plain numeric arrays (records are opt-in, see subset.ts). */
export const NUMERIC_DTYPES: readonly NpyDtype[] = ['<f4', '<f2', '<i8', '<i4'];

/**
 * A header `descr`, quotes and white space normalised, to its dtype. numpy writes `<` on little-endian hosts;
 * `=` (native) is accepted too.
 */
const DESCR_ALIASES: Record<string, NpyDtype> = {
  '<f4': '<f4', '=f4': '<f4',
  '<f2': '<f2', '=f2': '<f2',
  '<i8': '<i8', '=i8': '<i8',
  '<i4': '<i4', '=i4': '<i4',
  "[('f0','<u8'),('f1','<u8')]": 'u8,u8',
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

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

/** The preamble: magic, version, header length (uint16 in 1.0, uint32 in 2.0/3.0; 3.0 is utf8). */
function headerText(data: Buffer, name: string): { text: string; end: number } {
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
  return { text: data.subarray(pre, pre + headerLen).toString(major === 3 ? 'utf8' : 'latin1'), end: pre + headerLen };
}

function headerDtype(text: string, name: string, accepted: readonly NpyDtype[]): NpyDtype {
  const quoted = /['"]descr['"]\s*:\s*(['"])(.*?)\1/.exec(text)?.[2];
  // Structured dtypes are written as a list of fields.
  const fields = quoted === undefined ? /['"]descr['"]\s*:\s*(\[.*?\])/.exec(text)?.[1] : undefined;
  const key = quoted ?? fields?.replace(/\s+/g, '').replace(/"/g, "'");
  const dtype = key === undefined ? undefined : DESCR_ALIASES[key];
  if (dtype !== undefined && accepted.includes(dtype)) return dtype;
  const expected = `expected one of ${accepted.join(', ')}`;
  if (quoted !== undefined) return badNpy(name, `unsupported dtype '${quoted}'; ${expected} (little-endian)`);
  return badNpy(name, `unsupported dtype ${fields ?? '(none)'}; ${expected}`);
}

function parseHeader(data: Buffer, name: string, accepted: readonly NpyDtype[]): Header {
  const { text, end } = headerText(data, name);
  const dtype = headerDtype(text, name, accepted);

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
  return { dtype, shape, dataOffset: end };
}

/** A typed array over `bytes`, sharing memory when aligned, copying otherwise (pooled Buffers often are not). */
function typedView(dtype: NpyDtype, bytes: Buffer): NpyData {
  const { array } = DTYPES[dtype];
  const aligned = bytes.byteOffset % array.BYTES_PER_ELEMENT === 0;
  const buffer = aligned ? bytes.buffer : new Uint8Array(bytes).buffer;
  return new array(buffer, aligned ? bytes.byteOffset : 0, bytes.length / array.BYTES_PER_ELEMENT);
}

function dataBytes(dtype: NpyDtype, count: number): number {
  const { lanes, array } = DTYPES[dtype];
  return count * lanes * array.BYTES_PER_ELEMENT;
}

/**
 * Decodes a .npy whose dtype is one of `dtypes` (default: the plain numeric ones). `name` (a uri or file name) is
 * used in every error message.
 */
export function parseNpy(data: Buffer, name = '.npy', dtypes: readonly NpyDtype[] = NUMERIC_DTYPES): NpyArray {
  const { dtype, shape, dataOffset } = parseHeader(data, name, dtypes);
  const bytes = dataBytes(dtype, shape.reduce((a, b) => a * b, 1));
  const available = data.length - dataOffset;
  if (available !== bytes) {
    badNpy(name, `shape (${shape.join(', ')}) of ${dtype} needs ${bytes} data bytes, file has ${available}`);
  }
  return { dtype, shape, data: typedView(dtype, data.subarray(dataOffset, dataOffset + bytes)) };
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
  const dict = `{'descr': ${DTYPES[dtype].descr}, 'fortran_order': False, 'shape': ${shapeText}, }`;
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

/**
 * Encodes an array; `data.length` must equal the product of `shape` (twice it for `u8,u8`) and its type must
 * match `dtype`.
 */
export function encodeNpy(arr: NpyArray): Buffer {
  const { dtype, shape, data } = arr;
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`encodeNpy: bad shape (${shape.join(', ')})`);
  const { lanes, array } = DTYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count * lanes) throw new Error(`encodeNpy: ${data.length} values for shape (${shape.join(', ')})`);
  if (!(data instanceof array)) throw new Error(`encodeNpy: dtype ${dtype} needs a ${array.name}, got ${data.constructor.name}`);
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

export async function readFloatMatrix(uri: string, opts: StorageOptions = {}): Promise<FloatMatrix> {
  return decodeFloatMatrix(await storageFor(uri, opts).readBuffer(uri), uri);
}

export async function readIntVector(uri: string, opts: StorageOptions = {}): Promise<number[]> {
  return decodeIntVector(await storageFor(uri, opts).readBuffer(uri), uri);
}

/** Writes an encoded array atomically (temp name + commit), replacing any file there, as numpy.save does. */
export async function writeNpy(uri: string, arr: NpyArray, opts: StorageOptions = {}): Promise<void> {
  await storageFor(uri, opts).writeAtomic(uri, encodeNpy(arr), { replace: true });
}
