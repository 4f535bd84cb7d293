/**
 * Thin helpers over hyparquet (read) and hyparquet-writer (write) with explicit column types, so files
 * are typed the same whatever the data (no guessing from values, works for zero rows) and read back by
 * pyarrow, pandas and DuckDB. Files are written whole (one buffer): our per-shard parquets are small
 * (~10k rows), and a whole-object write is what makes them atomic on GCS.
 */
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { InputError } from '../errors';
import type { Storage } from '../storage';

/** Column types we write. STRING is UTF-8 BYTE_ARRAY; INT64 is read back as number (see int64 option). */
export type ParquetColumnType = 'STRING' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE' | 'BOOLEAN';

export interface ParquetColumnSpec {
  name: string;
  type: ParquetColumnType;
  /** OPTIONAL (nulls allowed) when true, REQUIRED otherwise. Default true. */
  nullable?: boolean;
}

export interface ParquetColumnData extends ParquetColumnSpec {
  /** One value per row; null/undefined for missing values of nullable columns. */
  data: ReadonlyArray<unknown>;
}

export interface EncodeParquetOptions {
  /** Key-value metadata stored in the footer (e.g. our format version). */
  metadata?: Record<string, string>;
  /** Rows per row group (default: hyparquet-writer's [1000, 100000]). */
  rowGroupSize?: number;
}

export type ParquetRow = Record<string, unknown>;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function checkValue(col: ParquetColumnSpec, v: unknown, row: number): unknown {
  if (v === null || v === undefined) {
    if (col.nullable === false) throw new TypeError(`parquet column ${col.name} is not nullable (row ${row})`);
    return null;
  }
  const bad = (): never => {
    throw new TypeError(`parquet column ${col.name} (${col.type}) got ${typeof v} ${String(v)} at row ${row}`);
  };
  switch (col.type) {
    case 'STRING':
      return typeof v === 'string' ? v : bad();
    case 'BOOLEAN':
      return typeof v === 'boolean' ? v : bad();
    case 'FLOAT':
    case 'DOUBLE':
      return typeof v === 'number' ? v : bad();
    case 'INT32':
      return typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? v : bad();
    case 'INT64':
      // hyparquet-writer takes bigint for INT64; accept safe JS integers too.
      if (typeof v === 'bigint') return v;
      return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : bad();
  }
}

/** Encode columns (all the same length) as a parquet file. */
export function encodeParquetColumns(columns: ParquetColumnData[], opts: EncodeParquetOptions = {}): Buffer {
  if (columns.length === 0) throw new TypeError('parquet needs at least one column');
  const n = columns[0].data.length;
  const names = new Set<string>();
  const columnData: ColumnSource[] = columns.map((col) => {
    if (col.data.length !== n) throw new TypeError(`parquet column ${col.name} has ${col.data.length} values, expected ${n}`);
    if (names.has(col.name)) throw new TypeError(`duplicate parquet column ${col.name}`);
    names.add(col.name);
    return {
      name: col.name,
      type: col.type,
      nullable: col.nullable ?? true,
      data: col.data.map((v, i) => checkValue(col, v, i)),
    };
  });
  const ab = parquetWriteBuffer({
    columnData,
    ...(opts.rowGroupSize ? { rowGroupSize: opts.rowGroupSize } : {}),
    ...(opts.metadata ? { kvMetadata: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })) } : {}),
  });
  return Buffer.from(ab);
}

/** Encode row objects under an explicit schema (missing fields are null). */
export function encodeParquetRows<T extends object>(
  schema: ParquetColumnSpec[],
  rows: Iterable<T>,
  opts: EncodeParquetOptions = {},
): Buffer {
  const data: unknown[][] = schema.map(() => []);
  for (const row of rows) {
    const r = row as Record<string, unknown>;
    schema.forEach((col, i) => data[i].push(r[col.name]));
  }
  return encodeParquetColumns(
    schema.map((col, i) => ({ ...col, data: data[i] })),
    opts,
  );
}

export interface DecodeParquetOptions {
  /** Only these columns (default: all). */
  columns?: string[];
  /** How INT64 values come back: 'number' (default; throws past 2^53) or 'bigint'. */
  int64?: 'number' | 'bigint';
  /** Name for error messages. */
  name?: string;
}

function toArrayBuffer(data: Buffer | Uint8Array | ArrayBuffer): ArrayBuffer {
  if (data instanceof ArrayBuffer) return data;
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

function corrupt(name: string | undefined, err: unknown): InputError {
  return new InputError('CorruptInput', `${name ?? 'parquet file'}: cannot read parquet: ${(err as Error).message}`);
}

/** Decode a whole parquet file into row objects keyed by column name. Nulls come back as null. */
export async function decodeParquetRows(
  data: Buffer | Uint8Array | ArrayBuffer,
  opts: DecodeParquetOptions = {},
): Promise<ParquetRow[]> {
  const file = toArrayBuffer(data);
  let rows: ParquetRow[];
  try {
    rows = await parquetReadObjects({ file, ...(opts.columns ? { columns: opts.columns } : {}) });
  } catch (err) {
    throw corrupt(opts.name, err);
  }
  const asBigint = opts.int64 === 'bigint';
  for (const row of rows) {
    for (const k of Object.keys(row)) {
      const v = row[k];
      if (v === undefined) row[k] = null;
      else if (typeof v === 'bigint' && !asBigint) {
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new RangeError(`${opts.name ?? 'parquet'}: ${k}=${v} does not fit a JS number; read with int64: 'bigint'`);
        }
        row[k] = Number(v);
      }
    }
  }
  return rows;
}

/** Column names and our types of a parquet file's top-level columns (types we do not write map to null). */
export function parquetColumns(data: Buffer | Uint8Array | ArrayBuffer, name?: string): Array<{ name: string; type: ParquetColumnType | null; nullable: boolean }> {
  let tree: ReturnType<typeof parquetSchema>;
  try {
    tree = parquetSchema(parquetMetadata(toArrayBuffer(data)));
  } catch (err) {
    throw corrupt(name, err);
  }
  return tree.children.map((c) => {
    const el = c.element;
    let type: ParquetColumnType | null = null;
    if (el.type === 'BYTE_ARRAY' && (el.converted_type === 'UTF8' || el.logical_type?.type === 'STRING')) type = 'STRING';
    else if (el.type === 'INT32' && !el.converted_type && !el.logical_type) type = 'INT32';
    else if (el.type === 'INT64' && !el.converted_type && !el.logical_type) type = 'INT64';
    else if (el.type === 'FLOAT' || el.type === 'DOUBLE' || el.type === 'BOOLEAN') type = el.type;
    return { name: el.name, type, nullable: el.repetition_type !== 'REQUIRED' };
  });
}

/** Read a parquet file from storage as row objects. MissingInput if absent, CorruptInput if unreadable. */
export async function readParquetRows(storage: Storage, uri: string, opts: DecodeParquetOptions = {}): Promise<ParquetRow[]> {
  return decodeParquetRows(await storage.readBuffer(uri), { name: uri, ...opts });
}

/** Write columns as a parquet file, atomically. */
export async function writeParquetColumns(
  storage: Storage,
  uri: string,
  columns: ParquetColumnData[],
  opts?: EncodeParquetOptions,
): Promise<void> {
  await storage.writeAtomic(uri, encodeParquetColumns(columns, opts));
}

/** Write row objects under an explicit schema as a parquet file, atomically. */
export async function writeParquetRows<T extends object>(
  storage: Storage,
  uri: string,
  schema: ParquetColumnSpec[],
  rows: Iterable<T>,
  opts?: EncodeParquetOptions,
): Promise<void> {
  await storage.writeAtomic(uri, encodeParquetRows(schema, rows, opts));
}
