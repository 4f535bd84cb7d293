import { resampleLikePil, type PilFilter } from '../../../lib/models/resample';

/** Golden outputs recorded from Pillow 10.4 `Image.resize` on the same inputs. */
const ROW = [0, 0, 0, 255, 255, 0, 0, 100];
const GOLDEN_1D: Record<PilFilter, { up: number[]; down: number[] }> = {
  bicubic: { up: [0, 0, 0, 0, 0, 52, 203, 255, 255, 203, 52, 0, 0, 22, 81, 109], down: [10, 170, 42] },
  bilinear: { up: [0, 0, 0, 0, 0, 64, 191, 255, 255, 191, 64, 0, 0, 25, 75, 100], down: [20, 158, 49] },
  lanczos: { up: [0, 2, 7, 0, 0, 52, 194, 255, 255, 194, 55, 0, 0, 33, 83, 113], down: [9, 169, 42] },
  box: { up: [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 100, 100], down: [0, 255, 33] },
  hamming: { up: [0, 0, 0, 0, 0, 19, 236, 255, 255, 236, 19, 0, 0, 8, 92, 100], down: [4, 197, 36] },
  nearest: { up: [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 100, 100], down: [0, 255, 0] },
};

/** 7x5 RGB image: g = (37x + 91y) mod 256, channels (g, 255 - g, 3g mod 256). */
function grid(): Uint8Array {
  const out = new Uint8Array(7 * 5 * 3);
  for (let y = 0; y < 5; y++)
    for (let x = 0; x < 7; x++) {
      const g = (x * 37 + y * 91) % 256;
      out.set([g, 255 - g, (g * 3) % 256], (y * 7 + x) * 3);
    }
  return out;
}

describe('Pillow-exact resampling', () => {
  const row = Uint8Array.from(ROW.flatMap((v) => [v, v, v]));
  const red = (a: Uint8Array): number[] => Array.from(a.filter((_, i) => i % 3 === 0));

  it.each(Object.keys(GOLDEN_1D) as PilFilter[])('matches Pillow %s when enlarging and shrinking', (filter) => {
    expect(red(resampleLikePil(row, 8, 1, 16, 1, filter))).toEqual(GOLDEN_1D[filter].up);
    expect(red(resampleLikePil(row, 8, 1, 3, 1, filter))).toEqual(GOLDEN_1D[filter].down);
  });

  it('matches Pillow in two dimensions (horizontal pass, uint8 rounding, vertical pass)', () => {
    expect(Array.from(resampleLikePil(grid(), 7, 5, 4, 3, 'bicubic'))).toEqual([
      55, 200, 60, 120, 135, 176, 166, 89, 132, 132, 123, 113, 145, 110, 82, 83, 172, 88, 117, 138, 168, 133, 122, 141, 83, 172, 109, 151, 104, 84,
      106, 149, 109, 127, 128, 165,
    ]);
    expect(Array.from(resampleLikePil(grid(), 7, 5, 9, 11, 'bilinear').subarray(0, 30))).toEqual([
      0, 255, 0, 25, 230, 74, 53, 202, 160, 82, 173, 190, 111, 144, 77, 140, 115, 163, 169, 86, 107, 197, 58, 80, 222, 33, 154, 17, 238, 3,
    ]);
  });

  it('copies when the size does not change', () => {
    const src = grid();
    const out = resampleLikePil(src, 7, 5, 7, 5, 'bicubic');
    expect(out).toEqual(src);
    expect(out).not.toBe(src);
  });
});
