/**
 * Thin helpers over hyparquet (read) and hyparquet-writer (write) with explicit column types, so files
 * are typed the same whatever the data (no guessing from values, works for zero rows) and read back by
 * pyarrow, pandas and DuckDB. Files are written whole (one buffer): our per-shard parquets are small
 * (~10k rows), and a whole-object write is what makes them atomic on GCS.
 */
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer';
import { InputError } from '../errors';
import type { Commit, CommitOptions, Storage } from '../storage';

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

/** The JS value of each column type as it is read back (INT64 as a safe integer number). */
interface ColumnValues {
  STRING: string;
  INT32: number;
  INT64: number;
  FLOAT: number;
  DOUBLE: number;
  BOOLEAN: boolean;
}

export interface ColumnDecl {
  type: ParquetColumnType;
  /** Default true. */
  nullable?: boolean;
  /** STRING columns holding one of a fixed set of values (checked on read, typed as their union). */
  values?: readonly string[];
}

export type ColumnDecls = Record<string, ColumnDecl>;

type ValueOf<D extends ColumnDecl> = D extends { values: readonly (infer V)[] } ? V : ColumnValues[D['type']];

/** The row type a table's column declarations describe. */
export type RowOf<C extends ColumnDecls> = {
  -readonly [K in keyof C]: C[K] extends { nullable: false } ? ValueOf<C[K]> : ValueOf<C[K]> | null;
};

const TYPE_CHECK: Record<ParquetColumnType, (v: unknown) => boolean> = {
  STRING: (v) => typeof v === 'string',
  INT32: (v) => Number.isInteger(v),
  INT64: (v) => Number.isInteger(v),
  FLOAT: (v) => typeof v === 'number',
  DOUBLE: (v) => typeof v === 'number',
  BOOLEAN: (v) => typeof v === 'boolean',
};

/**
 * A parquet table declared once: its columns give both the file schema and the row type, and rows read back are
 * checked against it, so a reader gets typed rows or a CorruptInput error that names the file, row and column.
 * A nullable column missing from a file (written before the column existed) reads as null.
 */
export class ParquetTable<C extends ColumnDecls> {
  readonly columns: ParquetColumnSpec[];

  constructor(private readonly decls: C) {
    this.columns = Object.entries(decls).map(([name, d]) => ({ name, type: d.type, nullable: d.nullable ?? true }));
  }

  encode(rows: Iterable<RowOf<C>>, opts?: EncodeParquetOptions): Buffer {
    return encodeParquetRows(this.columns, rows, opts);
  }

  /** Every column of every row. */
  decode(data: Buffer | Uint8Array | ArrayBuffer, name: string): Promise<Array<RowOf<C>>>;
  /** Only `columns` (the others are not decoded at all). */
  decode<K extends keyof C & string>(data: Buffer | Uint8Array | ArrayBuffer, name: string, columns: K[]): Promise<Array<Pick<RowOf<C>, K>>>;
  async decode(data: Buffer | Uint8Array | ArrayBuffer, name: string, columns?: string[]): Promise<ParquetRow[]> {
    const wanted = columns ?? Object.keys(this.decls);
    const present = new Set(parquetColumns(data, name).map((c) => c.name));
    const absent = wanted.filter((c) => !present.has(c));
    for (const c of absent) {
      if (this.decls[c]!.nullable === false) throw new InputError('CorruptInput', `${name}: has no column ${c}`);
    }
    const rows = await decodeParquetRows(data, { name, columns: wanted.filter((c) => present.has(c)) });
    rows.forEach((row, i) => {
      for (const c of absent) row[c] = null;
      this.checkColumns(row, wanted, `${name}: row ${i}`);
    });
    return rows;
  }

  /**
   * A plain object (e.g. a JSON document) checked as a row of this table: declared fields must hold their type
   * (absent nullable ones read as null); other fields are kept. CorruptInput naming `where` otherwise.
   */
  check(obj: Record<string, unknown>, where: string): RowOf<C> & Record<string, unknown> {
    const row: Record<string, unknown> = { ...obj };
    for (const c of Object.keys(this.decls)) row[c] ??= null;
    this.checkColumns(row, Object.keys(this.decls), where);
    return row as RowOf<C> & Record<string, unknown>;
  }

  private checkColumns(row: Record<string, unknown>, columns: string[], where: string): void {
    for (const c of columns) {
      const v = row[c];
      const d = this.decls[c]!;
      const ok = v === null ? d.nullable !== false : TYPE_CHECK[d.type](v) && (!d.values || d.values.includes(v as string));
      if (!ok) throw new InputError('CorruptInput', `${where}: column ${c} holds ${v === null ? 'null' : JSON.stringify(v)}, expected ${d.values ? d.values.join(' | ') : d.type}`);
    }
  }

  async read(storage: Storage, uri: string): Promise<Array<RowOf<C>>> {
    return this.decode(await storage.readBuffer(uri), uri);
  }

  /** Written under its final name atomically (temp name, then commit; no-clobber unless `opts.replace`). */
  write(storage: Storage, uri: string, rows: Iterable<RowOf<C>>, opts?: CommitOptions): Promise<Commit> {
    return storage.writeAtomic(uri, this.encode(rows), opts);
  }
}

/** Declare a table: `parquetTable({ key: { type: 'STRING', nullable: false }, score: { type: 'DOUBLE' } })`. */
export function parquetTable<const C extends ColumnDecls>(decls: C): ParquetTable<C> {
  return new ParquetTable(decls);
}

export type TableRow<T> = T extends ParquetTable<infer C> ? RowOf<C> : never;
