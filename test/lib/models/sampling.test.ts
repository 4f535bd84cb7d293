import { fromFloat16Bits, toFloat16Bits } from '../../../lib/formats/float16';
import { SeededRng } from '../../../lib/models/rng';
import { nextToken, processLogits, topKCandidates } from '../../../lib/models/sampling';
import { PAPER_CAPTION_OPTIONS } from '../../../lib/config/schema';
import type { CaptionOptions } from '../../../lib/models/types';

const opts = (o: Partial<CaptionOptions> = {}): CaptionOptions => ({ ...PAPER_CAPTION_OPTIONS, minLength: 0, ...o });
const row = (seed: string, o: { history?: number[]; generated?: number; eosIds?: number[] } = {}) => ({
  history: o.history ?? [],
  generated: o.generated ?? 0,
  eosIds: o.eosIds ?? [0],
  rng: new SeededRng(seed),
});

describe('seeded RNG', () => {
  it('reproduces a stream per seed string and separates seeds', () => {
    const a = new SeededRng('run:uid-1');
    const b = new SeededRng('run:uid-1');
    const c = new SeededRng('run:uid-2');
    const xs = Array.from({ length: 5 }, () => a.nextDouble());
    expect(Array.from({ length: 5 }, () => b.nextDouble())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.nextDouble())).not.toEqual(xs);
    const r = new SeededRng('uniform');
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 20000; i++) {
      const u = r.nextDouble();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
    }
    expect(outside).toBe(0);
    expect(sum / 20000).toBeCloseTo(0.5, 1);
  });
});

describe('sampling', () => {
  it('keeps exactly the top K, best first, ties by lower id (as ONNX TopK)', () => {
    const scores = Float64Array.from([1, 5, 3, 5, -Infinity, 2, 3]);
    expect(topKCandidates(scores, 2)).toEqual([1, 3]);
    expect(topKCandidates(scores, 3)).toEqual([1, 3, 2]); // 6 ties with 2 at the boundary: the lower id only
    expect(topKCandidates(scores, 0)).toEqual([1, 3, 2, 6, 5, 0, 4]); // 0 = no filter; -inf last (weight 0)
    expect(topKCandidates(scores, 9)).toEqual([1, 3, 2, 6, 5, 0, 4]);
  });

  it('consumes exactly one uniform per step and picks the first running sum above u * total', () => {
    // Greedy steps draw too, so step t always uses the row's t-th uniform (the graph takes them as an input).
    const logits = Float32Array.from([0, 1, 2]);
    const r = row('draws');
    const ref = new SeededRng('draws');
    nextToken(logits, r, opts({ temperature: 0 }));
    ref.nextDouble();
    expect(r.rng.nextDouble()).toBe(ref.nextDouble());
    // Two equal candidates: weights 1, 1, running sums 1, 2; u < 0.5 picks the first, u >= 0.5 the second.
    const even = Float32Array.from([-50, 3, 3]);
    const fixed = (u: number) => ({ ...row('x'), rng: { nextDouble: () => u } as SeededRng });
    expect(nextToken(even, fixed(0), opts({ topK: 2, temperature: 1 }))).toBe(1);
    expect(nextToken(even, fixed(0.4999), opts({ topK: 2, temperature: 1 }))).toBe(1);
    expect(nextToken(even, fixed(0.5), opts({ topK: 2, temperature: 1 }))).toBe(2);
    expect(nextToken(even, fixed(0.9999), opts({ topK: 2, temperature: 1 }))).toBe(2);
    expect(() => nextToken(Float32Array.from([NaN, -Infinity]), row('bad'), opts())).toThrow(/-inf\/NaN/);
  });

  it('masks EOS before minLength, applies the CTRL penalty and the temperature', () => {
    const logits = Float32Array.from([4, 2, -2, 1]);
    const early = processLogits(logits, row('s', { generated: 2, history: [1, 2, 2] }), opts({ minLength: 3, repetitionPenalty: 2, temperature: 0.5 }));
    expect(Array.from(early)).toEqual([-Infinity, 2, -8, 2]);
    const later = processLogits(logits, row('s', { generated: 3 }), opts({ minLength: 3, temperature: 1 }));
    expect(Array.from(later)).toEqual([4, 2, -2, 1]);
    const nan = processLogits(Float32Array.from([NaN, 1]), row('s'), opts());
    expect(nan[0]).toBe(-Infinity);
  });

  it('samples from the top-K softmax with the row RNG', () => {
    // p ∝ exp(logit / T): with T = 1 and K = 2, tokens 1 and 2 only, in ratio 0.5 : 0.3.
    const logits = Float32Array.from([-50, Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const counts = new Map<number, number>();
    const r = row('freq', { eosIds: [0] });
    for (let i = 0; i < 8000; i++) {
      const t = nextToken(logits, r, opts({ topK: 2, temperature: 1 }));
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 2]);
    expect(counts.get(1)! / 8000).toBeCloseTo(0.625, 1);
    // Same seed, same draws.
    const draw = (seed: string): number[] => {
      const rr = row(seed);
      return Array.from({ length: 20 }, () => nextToken(logits, rr, opts({ topK: 3, temperature: 0.75 })));
    };
    expect(draw('a')).toEqual(draw('a'));
    expect(draw('a')).not.toEqual(draw('b'));
    // Greedy at temperature 0.
    expect(nextToken(logits, row('g'), opts({ temperature: 0 }))).toBe(1);
  });
});

describe('float16 conversion', () => {
  it('rounds to nearest even and handles the special values', () => {
    const values = Float32Array.from([0, -0, 1, -2, 0.1, 65504, 65520, 1e6, 6e-8, 2.98e-8, 1e-9, 0.333251953125, Infinity, -Infinity, NaN]);
    const bits = Array.from(toFloat16Bits(values));
    expect(bits.map((b) => b.toString(16))).toEqual(['0', '8000', '3c00', 'c000', '2e66', '7bff', '7c00', '7c00', '1', '0', '0', '3555', '7c00', 'fc00', '7e00']);
    const back = fromFloat16Bits(Uint16Array.from(bits));
    expect(back[4]).toBeCloseTo(0.0999755859375, 10);
    expect(back[5]).toBe(65504);
    expect(back[8]).toBeCloseTo(5.960464477539063e-8, 15);
    expect(Number.isNaN(back[14])).toBe(true);
    const xs = Float32Array.from({ length: 2000 }, (_, i) => (i - 1000) / 37);
    const ys = fromFloat16Bits(toFloat16Bits(xs));
    const worst = xs.reduce((m, x, i) => Math.max(m, Math.abs(ys[i]! - x) / Math.max(Math.abs(x), 1e-6)), 0);
    expect(worst).toBeLessThanOrEqual(2 ** -11); // half an ulp of an 11-bit significand
  });
});
