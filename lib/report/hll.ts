/**
 * Distinct counting for the text-diversity numbers: exact while small, a HyperLogLog sketch beyond.
 *
 * `hash64` is cyrb53's two 32-bit lanes (well mixed, fast on JS strings; we hash UTF-16 code units, which is a
 * fixed function of the normalised string). The HyperLogLog (Flajolet et al. 2007) uses the top p bits of the
 * first lane as the register index and the remaining 64 - p bits for the rank, so no large-range correction is
 * needed; the estimate is Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017, Algorithm 6), which is unbiased over the whole range without HLL++'s empirical tables.
 * Relative standard error = 1.04 / sqrt(m), m = 2^p registers: p = 14 → m = 16384 → 0.81 %.
 * Sketches are mergeable (register-wise max), so per-shard sketches can be combined.
 */

// Bound once: a global lookup per call is slow in vm contexts (jest's contextified global has interceptors).
const imul = Math.imul;
const clz32 = Math.clz32;

/** Second lane of the last `hashLanes` call (a module variable: no array allocated per token). */
let lane2 = 0;

/** cyrb53's first lane (returned) and second lane (left in `lane2`), each an unsigned 32-bit integer. */
function hashLanes(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = imul(h1 ^ ch, 2654435761);
    h2 = imul(h2 ^ ch, 1597334677);
  }
  h1 = imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= imul(h1 ^ (h1 >>> 13), 3266489909);
  lane2 = h2 >>> 0;
  return h1 >>> 0;
}

/** cyrb53's two lanes, each an unsigned 32-bit integer. */
export function hash64(s: string): [number, number] {
  const h1 = hashLanes(s);
  return [h1, lane2];
}

export const HLL_PRECISION = 14;

/** Relative standard error of a HyperLogLog with 2^p registers: 1.04 / sqrt(m). */
export function hllStandardError(precision = HLL_PRECISION): number {
  return 1.04 / Math.sqrt(2 ** precision);
}

export class HyperLogLog {
  readonly m: number;
  readonly registers: Uint8Array;
  /** Bits left for the rank after the index: ranks are 1..q+1. */
  private readonly q: number;

  constructor(readonly precision = HLL_PRECISION) {
    if (!Number.isInteger(precision) || precision < 4 || precision > 18) throw new RangeError(`HLL precision ${precision} not in 4..18`);
    this.m = 2 ** precision;
    this.q = 64 - precision;
    this.registers = new Uint8Array(this.m);
  }

  add(s: string): void {
    const h1 = hashLanes(s);
    this.addHash(h1, lane2);
  }

  /** Add a 64-bit hash given as two unsigned 32-bit lanes. */
  addHash(h1: number, h2: number): void {
    const p = this.precision;
    const index = h1 >>> (32 - p);
    const low = (h1 << p) >>> 0; // the 32 - p bits of h1 below the index, left-aligned
    const rank = low !== 0 ? clz32(low) + 1 : h2 !== 0 ? 32 - p + clz32(h2) + 1 : this.q + 1;
    if (rank > this.registers[index]!) this.registers[index] = rank;
  }

  /** Register-wise max: afterwards this sketch counts the union of both streams. */
  merge(other: HyperLogLog): void {
    if (other.precision !== this.precision) throw new RangeError(`cannot merge HLL p=${other.precision} into p=${this.precision}`);
    for (let i = 0; i < this.m; i++) if (other.registers[i]! > this.registers[i]!) this.registers[i] = other.registers[i]!;
  }

  /** Estimated number of distinct items added (Ertl 2017, improved raw estimator). */
  estimate(): number {
    const { m, q } = this;
    const c = new Array<number>(q + 2).fill(0);
    for (let i = 0; i < m; i++) c[this.registers[i]!]!++;
    let z = m * tau(1 - c[q + 1]! / m);
    for (let k = q; k >= 1; k--) z = 0.5 * (z + c[k]!);
    z += m * sigma(c[0]! / m);
    return z === Infinity ? 0 : (m * m) / (2 * Math.LN2 * z);
  }
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  let prev: number;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (z !== prev);
  return z;
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let prev: number;
  do {
    x = Math.sqrt(x);
    prev = z;
    y *= 0.5;
    z -= (1 - x) ** 2 * y;
  } while (z !== prev);
  return z / 3;
}

export interface DistinctCount {
  value: number;
  /** 'exact' (a set of 53-bit hashes: with n ≤ the limit the chance of any collision is < n²/2^54) or 'hll'. */
  method: 'exact' | 'hll';
  /** Relative standard error of the value: 0 when exact, 1.04/sqrt(m) for the sketch. */
  standardError: number;
}

export const DEFAULT_EXACT_LIMIT = 2_000_000;

/**
 * Counts distinct strings exactly (a Set of 53-bit hashes) until more than `exactLimit` are seen, then only
 * with the HyperLogLog sketch that is fed all along. Memory: ≤ ~40 bytes × exactLimit, then 2^p bytes.
 */
export class DistinctCounter {
  private exact: Set<number> | null = new Set();
  readonly sketch: HyperLogLog;

  constructor(
    readonly exactLimit = DEFAULT_EXACT_LIMIT,
    precision = HLL_PRECISION,
  ) {
    this.sketch = new HyperLogLog(precision);
  }

  add(s: string): void {
    const h1 = hashLanes(s);
    const h2 = lane2;
    this.sketch.addHash(h1, h2);
    if (this.exact) {
      this.exact.add((h2 & 0x1fffff) * 4294967296 + h1);
      if (this.exact.size > this.exactLimit) this.exact = null;
    }
  }

  /** Union with another counter (e.g. another shard's). */
  merge(other: DistinctCounter): void {
    this.sketch.merge(other.sketch);
    if (this.exact && other.exact) {
      for (const h of other.exact) this.exact.add(h);
      if (this.exact.size > this.exactLimit) this.exact = null;
    } else this.exact = null;
  }

  result(): DistinctCount {
    if (this.exact) return { value: this.exact.size, method: 'exact', standardError: 0 };
    return { value: Math.round(this.sketch.estimate()), method: 'hll', standardError: hllStandardError(this.sketch.precision) };
  }
}
