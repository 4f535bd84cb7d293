import { cmykToRgbLikePil, premultiplyLikePil, resampleLikePil, unpremultiplyLikePil, type PilFilter } from '../../../lib/models/resample';

/** Golden outputs recorded from Pillow `Image.resize` on the same inputs (10.4 and 13.0 agree on these). */
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

  it('runs the vertical pass first when the height shrinks by more than twice the width, as Pillow 13 does', () => {
    // 7x5 -> 6x2: the height loses 3 rows, the width 1 column. Pillow 13.0 (vertical first):
    expect(Array.from(resampleLikePil(grid(), 7, 5, 6, 2, 'bicubic'))).toEqual([
      85, 170, 27, 109, 146, 146, 102, 153, 136, 160, 95, 165, 123, 132, 101, 134, 121, 149, 97, 158, 72, 121, 134, 124, 120, 135, 56, 111, 144, 154, 107,
      148, 109, 151, 104, 191,
    ]);
    // Horizontal first (Pillow < 13) would give 84, 171, 27, 108, ...: the order shows.
  });

  it('samples like Pillow NEAREST (positions accumulated in doubles)', () => {
    expect(Array.from(resampleLikePil(grid(), 7, 5, 3, 4, 'nearest'))).toEqual([
      37, 218, 111, 111, 144, 77, 185, 70, 43, 128, 127, 128, 202, 53, 94, 20, 235, 60, 54, 201, 162, 128, 127, 128, 202, 53, 94, 145, 110, 179, 219, 36,
      145, 37, 218, 111,
    ]);
  });

  it('resizes RGBA premultiplied and converts CMYK like Pillow', () => {
    const alpha = [0, 64, 128, 192, 255, 255, 3];
    const rgb = grid();
    const rgba = new Uint8Array(7 * 5 * 4);
    for (let i = 0; i < 35; i++) rgba.set([rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!, alpha[i % 7]!], i * 4);
    // Image.fromarray(rgba, 'RGBA').resize((4, 3), BICUBIC): RGBA -> RGBa -> resize -> RGBA.
    const premultiplied = Uint8Array.from(rgba);
    premultiplyLikePil(premultiplied);
    const resized = resampleLikePil(premultiplied, 7, 5, 4, 3, 'bicubic', 4);
    unpremultiplyLikePil(resized);
    expect(Array.from(resized)).toEqual([
      58, 196, 137, 26, 124, 130, 164, 135, 164, 90, 137, 251, 114, 142, 58, 118, 166, 78, 137, 26, 75, 177, 81, 135, 120, 134, 172, 251, 114, 140, 84, 118,
      88, 166, 156, 26, 158, 94, 83, 135, 101, 153, 110, 251, 103, 149, 103, 118,
    ]);
    // The same bytes read as CMYK: Image.fromarray(rgba, 'CMYK').convert('RGB'), first row.
    expect(Array.from(cmykToRgbLikePil(rgba).subarray(0, 21))).toEqual([255, 0, 255, 163, 28, 108, 90, 37, 16, 36, 27, 44, 0, 0, 0, 0, 0, 0, 33, 219, 100]);
  });

  it('copies when the size does not change', () => {
    const src = grid();
    const out = resampleLikePil(src, 7, 5, 7, 5, 'bicubic');
    expect(out).toEqual(src);
    expect(out).not.toBe(src);
  });
});
