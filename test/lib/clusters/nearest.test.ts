import * as path from 'node:path';
import { InputError } from '../../../lib/errors';
import { NearestCentroid, defaultChunkRows } from '../../../lib/clusters/nearest';
import { writeNpy } from '../../../lib/formats/npy';
import { tempDir } from '../../helpers/paths';

/** Deterministic uniform(-1, 1) values (mulberry32). */
function randomMatrix(len: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** Brute force: scores in float64, first index wins ties; `l2` normalises the centroids. */
function bruteForce(x: Float32Array, n: number, c: Float32Array, k: number, d: number, l2 = false): { index: Int32Array; scores: Float64Array[] } {
  const norms = new Float64Array(k).fill(1);
  if (l2) {
    for (let j = 0; j < k; j++) {
      let ss = 0;
      for (let t = 0; t < d; t++) ss += c[j * d + t]! ** 2;
      norms[j] = Math.sqrt(ss);
    }
  }
  const index = new Int32Array(n);
  const scores: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const row = new Float64Array(k);
    let best = 0;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += x[i * d + t]! * c[j * d + t]!;
      row[j] = s / norms[j]!;
      if (row[j]! > row[best]!) best = j;
    }
    index[i] = best;
    scores.push(row);
  }
  return { index, scores };
}

/**
 * ORT's float32 GEMM sums in a different order than the float64 reference, so a row whose top two scores are
 * within rounding may legitimately differ: those must be near-ties, and there must be (almost) none.
 */
function expectSameArgmax(got: Int32Array, want: { index: Int32Array; scores: Float64Array[] }, maxNearTies = 0): void {
  let nearTies = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === want.index[i]) continue;
    const row = want.scores[i]!;
    expect(row[want.index[i]!]! - row[got[i]!]!).toBeLessThan(1e-5);
    nearTies += 1;
  }
  expect(nearTies).toBeLessThanOrEqual(maxNearTies);
}

describe('NearestCentroid', () => {
  it('equals a brute-force argmax (K=2000, D=64) for several chunk sizes, DataComp inner product', async () => {
    const k = 2000;
    const d = 64;
    const n = 300;
    const c = randomMatrix(k * d, 1);
    const x = randomMatrix(n * d, 2);
    const want = bruteForce(x, n, c, k, d);
    // the answer must not depend on how rows are chunked (1 row, odd sizes, all at once)
    for (const chunkRows of [1, 7, 128, 1024]) {
      const nc = await NearestCentroid.create(c, k, d, { chunkRows });
      expect(nc.chunkRows).toBe(chunkRows);
      expectSameArgmax(await nc.assign(x, n), want);
      await nc.release();
    }
  });

  it("with centroidNorm 'l2' equals the cosine argmax, which differs from raw inner product for unequal norms", async () => {
    const k = 500;
    const d = 32;
    const n = 200;
    const c = randomMatrix(k * d, 3);
    for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) c[j * d + t]! *= 0.5 + (j % 7) / 4; // unequal norms
    const x = randomMatrix(n * d, 4);
    const nc = await NearestCentroid.create(c, k, d, { centroidNorm: 'l2', chunkRows: 64 });
    const cosine = bruteForce(x, n, c, k, d, true);
    const got = await nc.assign(x, n);
    expectSameArgmax(got, cosine);
    const raw = bruteForce(x, n, c, k, d, false);
    expect(got.some((v, i) => v !== raw.index[i])).toBe(true);
    await nc.release();
  });

  it('resolves exact ties to the lowest index', async () => {
    const d = 4;
    // centroids 1, 3 and 4 are the same vector; 0 and 2 point elsewhere
    const c = Float32Array.from([0, 1, 0, 0, /**/ 1, 0, 0, 0, /**/ 0, 0, 1, 0, /**/ 1, 0, 0, 0, /**/ 1, 0, 0, 0]);
    const x = Float32Array.from([0.9, 0.1, 0, 0, /**/ 0, 0, 2, 0, /**/ 5, 0, 0, 1, /**/ 0, 0, 0, 1]);
    for (const chunkRows of [1, 3]) {
      const nc = await NearestCentroid.create(c, 5, d, { chunkRows });
      // the last row scores 0 against every centroid: index 0
      expect(Array.from(await nc.assign(x, 4))).toEqual([1, 2, 1, 0]);
      await nc.release();
    }
  });

  it('loads centroids from .npy (float16 too) and assigns zero rows', async () => {
    const dir = tempDir();
    const uri = path.join(dir, 'centroids.npy');
    const c = Float32Array.from([1, 0, 0, 1, -1, 0]);
    await writeNpy(uri, { dtype: '<f4', shape: [3, 2], data: c });
    const nc = await NearestCentroid.fromNpy(uri);
    expect([nc.k, nc.d]).toEqual([3, 2]);
    expect(Array.from(await nc.assign(Float32Array.from([-3, 0.5, 0.2, 0.9]), 2))).toEqual([2, 1]);
    expect(Array.from(await nc.assign(new Float32Array(0), 0))).toEqual([]);
    await nc.release();
    const f2 = path.join(dir, 'centroids_f2.npy');
    await writeNpy(f2, { dtype: '<f2', shape: [3, 2], data: Uint16Array.from([0x3c00, 0, 0, 0x3c00, 0xbc00, 0]) }); // 1, 0, 0, 1, -1, 0
    const nc16 = await NearestCentroid.fromNpy(f2);
    expect(Array.from(await nc16.assign(Float32Array.from([-3, 0.5, 0.2, 0.9, 0.1, -0.05]), 3))).toEqual([2, 1, 0]);
    await nc16.release();
  });

  it('rejects mismatched shapes and non-finite values', async () => {
    await expect(NearestCentroid.create(new Float32Array(5), 2, 3)).rejects.toThrow(InputError);
    await expect(NearestCentroid.create(Float32Array.from([1, NaN]), 1, 2, { name: 'c.npy' })).rejects.toThrow(/c\.npy: non-finite/);
    const nc = await NearestCentroid.create(Float32Array.from([1, 0, 0, 1]), 2, 2);
    await expect(nc.assign(new Float32Array(5), 2)).rejects.toThrow(/5 values for 2 rows of dimension 2/);
    await expect(nc.assign(Float32Array.from([1, Infinity]), 1)).rejects.toThrow(/non-finite value in row 0/);
    await nc.release();
  });

  it('default chunk keeps the score matrix bounded', () => {
    expect(defaultChunkRows(100_000)).toBe(335);
    expect(defaultChunkRows(2000)).toBe(1024);
    expect(defaultChunkRows(1e9)).toBe(1);
  });
});
