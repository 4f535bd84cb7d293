/**
 * IEEE half <-> single conversion for `_fp16` exports whose inputs/outputs are float16. Node 20 has no
 * Float16Array, so onnxruntime-node carries float16 tensors as raw Uint16Array bits.
 */

/** Round-to-nearest-even float32 -> float16 bits (overflow -> inf, NaN kept, subnormals handled). */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  return toFloat16BitsInto(values, new Uint16Array(values.length), 0);
}

/** Converts `values` into `out` from `offset` (e.g. one image into its slot of a batch); returns `out`. */
export function toFloat16BitsInto(values: Float32Array, out: Uint16Array, offset: number): Uint16Array {
  if (offset + values.length > out.length) throw new RangeError(`toFloat16BitsInto: ${values.length} values do not fit at ${offset} in ${out.length}`);
  // Read the float bits through one Uint32Array view of the whole input: a per-element scalar round trip
  // through a 1-element buffer made this ~10x slower, and it runs on every fp16 batch (38 MB for 64 images).
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const e = exp - 112; // exp - 127 + 15
    if (e > 0 && e < 0x1f) {
      // The common case: a normal half.
      const mant = x & 0x7fffff;
      let half = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half += 1; // may carry into the exponent: still correct
      out[offset + i] = sign | half;
    } else {
      out[offset + i] = rareToHalf(x, sign, exp, e);
    }
  }
  return out;
}

/** Zero, subnormal, overflow, inf and NaN. */
function rareToHalf(x: number, sign: number, exp: number, e: number): number {
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf or (quiet) NaN
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e < -10) return sign; // underflows to signed zero
  mant |= 0x800000; // implicit leading 1, then shift into the subnormal range
  const shift = 14 - e;
  let half = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const mid = 1 << (shift - 1);
  if (rem > mid || (rem === mid && half & 1)) half += 1;
  return sign | half;
}

let halfTable: Float32Array | undefined;

/** All 65,536 half values as float32, built once (256 KB): decoding is then one lookup per element. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

export function fromFloat16Bits(bits: Uint16Array): Float32Array {
  const table = halfToFloatTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}
