/**
 * Batches of pixel tensors as a model's NCHW input. Preprocessing threads (lib/pipeline/prep-pool.ts) stack a batch's
 * tensors into one buffer (float32, or float16 bits for a float16 model) and hand over per-image views of it; a model
 * then feeds that buffer as it is (batchPixels) — no copy, no conversion on the thread that runs the model. Tensors
 * made one by one are stacked (and converted) here as before. No ONNX Runtime here: the threads must not load it.
 */
import { fromFloat16Bits, toFloat16BitsInto } from '../formats/float16';
import { checkPixelBatch } from './preprocess';
import type { PixelTensor } from './types';

type Dims4 = [number, number, number, number];

/** One buffer's consecutive rows of `size` values each, as one view over them all; null when they are not. */
function consecutiveRows<T extends Float32Array | Uint16Array>(rows: ReadonlyArray<T | undefined>, size: number, view: (buffer: ArrayBufferLike, offset: number, length: number) => T): T | null {
  const first = rows[0];
  if (!first) return null;
  const step = size * first.BYTES_PER_ELEMENT;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!r || r.buffer !== first.buffer || r.length !== size || r.byteOffset !== first.byteOffset + i * step) return null;
  }
  return view(first.buffer, first.byteOffset, rows.length * size);
}

/** Each image's values into its slot of `out`: copied, or converted to float16 bits when `out` is a Uint16Array (copied when made ahead). */
function stackInto<T extends Float32Array | Uint16Array>(pixels: readonly PixelTensor[], size: number, out: T): T {
  pixels.forEach((p, i) => {
    if (!(out instanceof Uint16Array)) out.set(p.data, i * size);
    else if (p.half) out.set(p.half, i * size);
    else toFloat16BitsInto(p.data, out, i * size);
  });
  return out;
}

/**
 * The NCHW data of a batch in the element type a model takes: the rows' own buffer when they are consecutive views
 * of one (as prep threads make them), else a stacked copy, converted to float16 bits into its slots when needed.
 */
export function batchPixels(type: 'float32' | 'float16', pixels: readonly PixelTensor[], expected?: [number, number]): { data: Float32Array | Uint16Array; dims: Dims4 } {
  const [c, h, w] = checkPixelBatch(pixels, expected);
  const size = c * h * w;
  const dims: Dims4 = [pixels.length, c, h, w];
  if (type === 'float16') {
    const ready = consecutiveRows(pixels.map((p) => p.half), size, (b, o, n) => new Uint16Array(b, o, n));
    return { data: ready ?? stackInto(pixels, size, new Uint16Array(pixels.length * size)), dims };
  }
  const ready = consecutiveRows(pixels.map((p) => p.data), size, (b, o, n) => new Float32Array(b, o, n));
  return { data: ready ?? stackInto(pixels, size, new Float32Array(pixels.length * size)), dims };
}

/** A batch stacked into a fresh buffer (transferable whole), in the model's input type: float32, or float16 bits. */
export interface StackedPixels {
  values: Float32Array | Uint16Array;
  /** [C, H, W] of each image */
  dims: [number, number, number];
  count: number;
}

/** Gives an ArrayBuffer of at least `bytes` (a recycled one, or a new one). */
export type BufferSource = (bytes: number) => ArrayBuffer;

export const newBuffer: BufferSource = (bytes) => new ArrayBuffer(bytes);

/**
 * Stacks one model's tensors of a batch (same size: checked) for handing over; `type` is the model's input type.
 * A float16 model's batch is converted straight into its float16 slots: no float32 stack that nothing reads
 * (38 MB per 64 images at 224²). The stack is a view from the start of a buffer `buffer` gives (whole buffers are
 * handed over and come back).
 */
export function stackBatch(pixels: readonly PixelTensor[], type: 'float32' | 'float16', expected?: [number, number], buffer: BufferSource = newBuffer): StackedPixels {
  const dims = checkPixelBatch(pixels, expected);
  const size = dims[0] * dims[1] * dims[2];
  const n = pixels.length * size;
  const values = type === 'float16' ? new Uint16Array(buffer(n * 2), 0, n) : new Float32Array(buffer(n * 4), 0, n);
  return { values: stackInto(pixels, size, values), dims, count: pixels.length };
}

/**
 * Per-image views of a stacked batch: what a model takes as PixelTensors, fed without a copy by batchPixels. A
 * float16 batch's views carry the bits as `half`; their float32 `data` is made only if something reads it (a model
 * that takes float16 does not).
 */
export function pixelViews(s: StackedPixels): PixelTensor[] {
  const size = s.dims[0] * s.dims[1] * s.dims[2];
  const { values, dims } = s;
  return Array.from({ length: s.count }, (_, i): PixelTensor => {
    const row = values.subarray(i * size, (i + 1) * size);
    if (row instanceof Float32Array) return { data: row, dims };
    let data: Float32Array | undefined;
    return {
      dims,
      half: row,
      get data() {
        return (data ??= fromFloat16Bits(row));
      },
    };
  });
}
