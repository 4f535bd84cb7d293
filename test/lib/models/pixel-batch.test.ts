/** Stacking a batch's pixel tensors for a model, and the per-image views handed to it. */
import { fromFloat16Bits, toFloat16Bits } from '../../../lib/formats/float16';
import { batchPixels, pixelViews, stackBatch } from '../../../lib/models/pixel-batch';
import type { PixelTensor } from '../../../lib/models/types';

/** `n` 3×2×2 tensors of distinct values, some not exact in float16. */
const tensors = (n: number): PixelTensor[] =>
  Array.from({ length: n }, (_, i) => ({ data: Float32Array.from({ length: 12 }, (_, k) => (i * 12 + k) / 7 - 3), dims: [3, 2, 2] as [number, number, number] }));

it('stacks a float32 batch into one buffer that the model feeds as it is', () => {
  const pixels = tensors(3);
  const stacked = stackBatch(pixels, 'float32', [2, 2]);
  expect(stacked.values).toBeInstanceOf(Float32Array);
  expect(Array.from(stacked.values)).toEqual(pixels.flatMap((p) => Array.from(p.data)));
  const views = pixelViews(stacked);
  expect(views.map((v) => v.half)).toEqual([undefined, undefined, undefined]);
  const fed = batchPixels('float32', views, [2, 2]);
  expect(fed.data).toEqual(stacked.values);
  expect(fed.data.buffer).toBe(stacked.values.buffer);
  expect(fed.dims).toEqual([3, 3, 2, 2]);
});

it('stacks a float16 batch straight into float16 bits: no float32 stack; float32 values only when read', () => {
  const pixels = tensors(3);
  const stacked = stackBatch(pixels, 'float16');
  expect(stacked.values).toBeInstanceOf(Uint16Array);
  expect(stacked.values.buffer.byteLength).toBe(3 * 12 * 2);
  expect(Array.from(stacked.values)).toEqual(pixels.flatMap((p) => Array.from(toFloat16Bits(p.data))));
  const views = pixelViews(stacked);
  const fed = batchPixels('float16', views);
  expect(fed.data.buffer).toBe(stacked.values.buffer);
  // Read anyway (a float32 model given these views), the values are the float16 ones, made once per view.
  expect(views[1]!.data).toEqual(fromFloat16Bits(toFloat16Bits(pixels[1]!.data)));
  expect(views[1]!.data).toBe(views[1]!.data);
  expect(batchPixels('float32', views).data).toEqual(fromFloat16Bits(stacked.values as Uint16Array));
  // Views not consecutive in one buffer (an image repeated for several caption candidates): their bits are copied.
  const repeated = [views[2]!, views[0]!, views[2]!];
  expect(Array.from(batchPixels('float16', repeated).data)).toEqual([2, 0, 2].flatMap((i) => Array.from(toFloat16Bits(pixels[i]!.data))));
});

it('refuses a batch of mixed sizes or of another model\'s size', () => {
  const odd: PixelTensor = { data: new Float32Array(27), dims: [3, 3, 3] };
  expect(() => stackBatch([...tensors(1), odd], 'float16')).toThrow(/differ in shape: \[3,2,2\] vs \[3,3,3\]/);
  expect(() => stackBatch(tensors(2), 'float32', [4, 4])).toThrow(/2x2, the model expects 4x4/);
});
