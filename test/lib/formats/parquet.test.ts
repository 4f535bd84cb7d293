import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../../../lib/errors';
import {
  decodeParquetRows,
  encodeParquetColumns,
  encodeParquetRows,
  parquetColumns,
  parquetTable,
  type ParquetColumnSpec,
} from '../../../lib/formats/parquet';
import { storageFor } from '../../../lib/storage';
import { tempDir } from '../../helpers/paths';
import { hasPython, runPython } from './python';

const schema: ParquetColumnSpec[] = [
  { name: 'uid', type: 'STRING', nullable: false },
  { name: 'caption', type: 'STRING' },
  { name: 'n32', type: 'INT32' },
  { name: 'n64', type: 'INT64' },
  { name: 'f32', type: 'FLOAT' },
  { name: 'score', type: 'DOUBLE' },
  { name: 'kept', type: 'BOOLEAN' },
];

const rows = [
  { uid: 'a', caption: 'a red circle', n32: 1, n64: 2 ** 40, f32: 0.5, score: 0.3141592653589793, kept: true },
  { uid: 'b', caption: null, n32: null, n64: null, f32: null, score: null, kept: null },
  { uid: 'c', caption: 'ünïcödé ✓', n32: -7, n64: -3, f32: 1.25, score: -1e-9, kept: false },
];

let dir: string;
beforeAll(() => {
  dir = tempDir('recaption-parquet-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parquet', () => {
  it('round-trips rows with nulls and explicit types', async () => {
    const buf = encodeParquetRows(schema, rows, { metadata: { 'recaption.version': '1' } });
    expect(await decodeParquetRows(buf)).toEqual(rows);
    expect(parquetColumns(buf)).toEqual(schema.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable ?? true })));
  });

  it('reads INT64 as bigint on request, and selected columns only', async () => {
    const buf = encodeParquetRows(schema, rows);
    const got = await decodeParquetRows(buf, { int64: 'bigint', columns: ['uid', 'n64'] });
    expect(got).toEqual([
      { uid: 'a', n64: 2n ** 40n },
      { uid: 'b', n64: null },
      { uid: 'c', n64: -3n },
    ]);
  });

  it('writes zero rows with the declared schema', async () => {
    const buf = encodeParquetRows(schema, []);
    expect(await decodeParquetRows(buf)).toEqual([]);
    expect(parquetColumns(buf).map((c) => c.type)).toEqual(schema.map((c) => c.type));
  });

  it('rejects values that do not fit the declared type', () => {
    expect(() => encodeParquetColumns([{ name: 'x', type: 'INT32', data: [1.5] }])).toThrow(/INT32/);
    expect(() => encodeParquetColumns([{ name: 'x', type: 'INT32', data: [2 ** 31] }])).toThrow(/INT32/);
    expect(() => encodeParquetColumns([{ name: 'x', type: 'STRING', nullable: false, data: [null] }])).toThrow(/not nullable/);
    expect(() => encodeParquetColumns([{ name: 'x', type: 'STRING', data: [1] }])).toThrow(/STRING/);
    expect(() =>
      encodeParquetColumns([
        { name: 'x', type: 'STRING', data: ['a'] },
        { name: 'y', type: 'STRING', data: [] },
      ]),
    ).toThrow(/expected 1/);
  });

  it('reports unreadable files as InputError(CorruptInput) naming them', async () => {
    await expect(decodeParquetRows(Buffer.from('not a parquet file at all'), { name: 'x.parquet' })).rejects.toMatchObject({
      type: 'CorruptInput',
      message: expect.stringContaining('x.parquet'),
    });
  });

  it('a declared table writes and reads typed rows through Storage', async () => {
    const table = parquetTable({
      uid: { type: 'STRING', nullable: false },
      caption: { type: 'STRING' },
      n32: { type: 'INT32' },
      n64: { type: 'INT64' },
      f32: { type: 'FLOAT' },
      score: { type: 'DOUBLE' },
      kept: { type: 'BOOLEAN' },
    });
    expect(table.columns).toEqual(schema.map((c) => ({ nullable: true, ...c })));
    const uri = path.join(dir, 'sub', 'rows.parquet');
    await table.write(storageFor(uri), uri, rows);
    expect(await table.read(storageFor(uri), uri)).toEqual(rows);
    expect(await table.decode(fs.readFileSync(uri), uri, ['uid', 'kept'])).toEqual(rows.map(({ uid, kept }) => ({ uid, kept })));
    await expect(table.read(storageFor(uri), path.join(dir, 'missing.parquet'))).rejects.toBeInstanceOf(InputError);
  });

  it('a declared table refuses rows that do not match it, naming the file, row and column', async () => {
    const file = 'decisions.parquet';
    const written = encodeParquetRows(
      [
        { name: 'key', type: 'STRING', nullable: false },
        { name: 'source', type: 'STRING' },
      ],
      [
        { key: 'a', source: 'raw' },
        { key: 'b', source: 'alt-text' },
      ],
    );
    const sources = parquetTable({ key: { type: 'STRING', nullable: false }, source: { type: 'STRING', values: ['raw', 'synthetic'] } });
    await expect(sources.decode(written, file)).rejects.toMatchObject({ type: 'CorruptInput', message: expect.stringMatching(/decisions\.parquet: row 1: column source holds "alt-text", expected raw \| synthetic/) });
    const numbers = parquetTable({ key: { type: 'STRING', nullable: false }, source: { type: 'DOUBLE' } });
    await expect(numbers.decode(written, file)).rejects.toMatchObject({ message: expect.stringMatching(/row 0: column source holds "raw", expected DOUBLE/) });
    // A nullable column the file lacks (written before it existed) reads as null; a required one is an error.
    const later = parquetTable({ key: { type: 'STRING', nullable: false }, source: { type: 'STRING' }, score: { type: 'DOUBLE' } });
    expect(await later.decode(written, file)).toEqual([
      { key: 'a', source: 'raw', score: null },
      { key: 'b', source: 'alt-text', score: null },
    ]);
    const strict = parquetTable({ key: { type: 'STRING', nullable: false }, score: { type: 'DOUBLE', nullable: false } });
    await expect(strict.decode(written, file)).rejects.toMatchObject({ type: 'CorruptInput', message: 'decisions.parquet: has no column score' });
  });

  (hasPython('pyarrow', 'pandas', 'duckdb') ? it : it.skip)('is read identically by pyarrow, pandas and DuckDB', () => {
    const file = path.join(dir, 'py.parquet');
    fs.writeFileSync(file, encodeParquetRows(schema, rows));
    const out = runPython<{ arrow: Record<string, string>; rows: unknown[]; pandas: number; duck: unknown[] }>(
      `
import json, sys, pyarrow.parquet as pq, pandas as pd, duckdb
t = pq.read_table(sys.argv[1])
df = pd.read_parquet(sys.argv[1])
duck = duckdb.sql(f"select uid, n64, kept from '{sys.argv[1]}' order by uid").fetchall()
print(json.dumps({"arrow": {f.name: str(f.type) + ("" if f.nullable else " not null") for f in t.schema},
                  "rows": t.to_pylist(), "pandas": len(df), "duck": duck}))
`,
      [file],
    );
    expect(out.arrow).toEqual({
      uid: 'string not null',
      caption: 'string',
      n32: 'int32',
      n64: 'int64',
      f32: 'float',
      score: 'double',
      kept: 'bool',
    });
    expect(out.rows).toEqual(rows);
    expect(out.pandas).toBe(3);
    expect(out.duck).toEqual([
      ['a', 2 ** 40, true],
      ['b', null, null],
      ['c', -3, false],
    ]);
  });
});
