/**
 * Pillow's resampling (libImaging/Resample.c, 8-bit path) ported to TypeScript, so model preprocessing matches
 * the PIL-based reference pipelines (OpenAI CLIP / open_clip / HF image processors) bit for bit (checked against
 * Pillow 13 by test/lib/models/preprocess-parity.test.ts), plus the few Pillow mode conversions a resize involves.
 *
 * Why not sharp's resize: measured against Pillow 11 on the same decoded pixels, sharp/libvips 'cubic' differs by
 * up to 2 levels when shrinking and by up to 16 levels (mean 3) when enlarging (libvips upsizes with a shifted
 * interpolator and ignores the kernel), and DataComp keeps images whose short side is under 224.
 *
 * The algorithm: separable convolution, horizontal pass then vertical pass (the other way round for images whose
 * height shrinks much more than their width, as Pillow 13 does), each output pixel's filter centred
 * at (x + 0.5) * scale, support widened by the scale when shrinking (antialiasing), coefficients normalised and
 * converted to 22-bit fixed point, results rounded and clipped to uint8 after each pass.
 */

/** PIL resample filters, by their Image.Resampling codes. */
export type PilFilter = 'nearest' | 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming';
export const PIL_FILTERS: Record<number, PilFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

interface Filter {
  support: number;
  fn(x: number): number;
}

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

const FILTERS: Record<Exclude<PilFilter, 'nearest'>, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      // Pillow writes 0.54f and 0.46f: single-precision constants.
      return (Math.sin(px) / px) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

// Bound once: a global lookup (Math) inside a hot loop is slow in vm contexts such as jest's, ~100x here.
const { imul, min, trunc } = Math;

const PRECISION_BITS = 32 - 8 - 2;
const ROUNDING = 1 << (PRECISION_BITS - 1);
const CLIP_LIMIT = 1 << (PRECISION_BITS + 8);

interface Coefficients {
  ksize: number;
  /** per output pixel: first input index, number of taps */
  bounds: Int32Array;
  /** fixed-point weights, ksize per output pixel */
  weights: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc from Resample.c (C casts truncate toward zero). */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? k[x]! / ww : k[x]!) : 0;
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

const clip8 = (v: number): number => (v >= CLIP_LIMIT ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS);

/** Resizes packed RGB (or any `channels`-interleaved uint8) exactly like Pillow's Image.resize. */
export function resampleLikePil(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, filter: PilFilter, channels = 3): Uint8Array {
  if (outWidth < 1 || outHeight < 1) throw new Error(`resample: bad output size ${outWidth}x${outHeight}`);
  if (outWidth === width && outHeight === height) return Uint8Array.from(src);
  if (filter === 'nearest') return nearest(src, width, height, outWidth, outHeight, channels);
  const f = FILTERS[filter];
  const horiz = coefficients(width, outWidth, f);
  const vert = coefficients(height, outHeight, f);
  const needH = outWidth !== width;
  const needV = outHeight !== height;

  if (needH && needV && outHeight < height && height - outHeight > 2 * (width - outWidth)) {
    // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks by more than
    // twice as many pixels as the width; earlier versions always start with the horizontal pass.
    const tall = verticalPass(src, width, 0, outHeight, vert, channels);
    return horizontalPass(tall, width, 0, outHeight, outWidth, horiz, channels);
  }
  let image = src;
  let rowOffset = 0; // first source row kept by the horizontal pass
  if (needH) {
    // Only the rows the vertical pass reads, like Pillow (same result, less work).
    const first = needV ? vert.bounds[0]! : 0;
    const last = needV ? vert.bounds[outHeight * 2 - 2]! + vert.bounds[outHeight * 2 - 1]! : height;
    image = horizontalPass(src, width, first, last - first, outWidth, horiz, channels);
    rowOffset = first;
  }
  if (!needV) return image;
  return verticalPass(image, outWidth, rowOffset, outHeight, vert, channels);
}

function horizontalPass(src: Uint8Array, width: number, firstRow: number, rows: number, outWidth: number, c: Coefficients, channels: number): Uint8Array {
  const out = new Uint8Array(outWidth * rows * channels);
  const { ksize, bounds, weights } = c;
  for (let y = 0; y < rows; y++) {
    const inRow = (y + firstRow) * width * channels;
    const outRow = y * outWidth * channels;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmax = bounds[xx * 2 + 1]!;
      const kOff = xx * ksize;
      const base = inRow + bounds[xx * 2]! * channels;
      for (let ch = 0; ch < channels; ch++) {
        // int32 arithmetic is exact here: |sum| <= 255 * 2^22 * sum|w| < 2^31, as in Pillow's C ints.
        let ss = ROUNDING;
        for (let x = 0, p = base + ch; x < xmax; x++, p += channels) ss = (ss + imul(src[p]!, weights[kOff + x]!)) | 0;
        out[outRow + xx * channels + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/** Row-at-a-time vertical pass: each output row is a weighted sum of whole input rows (cache friendly). */
function verticalPass(image: Uint8Array, width: number, rowOffset: number, outHeight: number, c: Coefficients, channels: number): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(stride * outHeight);
  const { ksize, bounds, weights } = c;
  const acc = new Int32Array(stride);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]! - rowOffset;
    const ymax = bounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    acc.fill(ROUNDING);
    for (let y = 0; y < ymax; y++) {
      const w = weights[kOff + y]!;
      const row = (y + ymin) * stride;
      for (let i = 0; i < stride; i++) acc[i] = (acc[i]! + imul(image[row + i]!, w)) | 0;
    }
    const o = yy * stride;
    for (let i = 0; i < stride; i++) out[o + i] = clip8(acc[i]!);
  }
  return out;
}

/**
 * Pillow's NEAREST resize (Geometry.c ImagingScaleAffine): source positions start at scale / 2 and are advanced by
 * adding the scale, in doubles, so the accumulated rounding is Pillow's too.
 */
function nearest(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, channels: number): Uint8Array {
  const out = new Uint8Array(outWidth * outHeight * channels);
  const sx = width / outWidth;
  const sy = height / outHeight;
  const xin = new Int32Array(outWidth);
  for (let x = 0, xo = sx * 0.5; x < outWidth; x++, xo += sx) xin[x] = min(trunc(xo), width - 1);
  for (let y = 0, yo = sy * 0.5; y < outHeight; y++, yo += sy) {
    const row = min(trunc(yo), height - 1) * width;
    for (let x = 0; x < outWidth; x++) {
      const i = (row + xin[x]!) * channels;
      const o = (y * outWidth + x) * channels;
      for (let c = 0; c < channels; c++) out[o + c] = src[i + c]!;
    }
  }
  return out;
}

// Pillow's mode conversions around a resize (Convert.c). MULDIV255(a, b) = round(a * b / 255) in integers.
const muldiv255 = (a: number, b: number): number => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/** RGBA -> RGBa, in place: Pillow resizes RGBA (and LA) images premultiplied, except with NEAREST. */
export function premultiplyLikePil(rgba: Uint8Array): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3]!;
    rgba[i] = muldiv255(rgba[i]!, a);
    rgba[i + 1] = muldiv255(rgba[i + 1]!, a);
    rgba[i + 2] = muldiv255(rgba[i + 2]!, a);
  }
}

/** RGBa -> RGBA, in place: colours divided back by alpha (truncating), left alone where alpha is 0 or 255. */
export function unpremultiplyLikePil(rgba: Uint8Array): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3]!;
    if (a === 0 || a === 255) continue;
    for (let c = i; c < i + 3; c++) rgba[c] = min(255, trunc((255 * rgba[c]!) / a));
  }
}

/** CMYK -> RGB without colour management, as Pillow's convert('RGB') does: r = (255 - k) - round(c * (255 - k) / 255). */
export function cmykToRgbLikePil(cmyk: Uint8Array): Uint8Array {
  const out = new Uint8Array((cmyk.length / 4) * 3);
  for (let i = 0, o = 0; i < cmyk.length; i += 4, o += 3) {
    const nk = 255 - cmyk[i + 3]!;
    out[o] = nk - muldiv255(cmyk[i]!, nk);
    out[o + 1] = nk - muldiv255(cmyk[i + 1]!, nk);
    out[o + 2] = nk - muldiv255(cmyk[i + 2]!, nk);
  }
  return out;
}
