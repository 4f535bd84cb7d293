import { DistinctCounter, HyperLogLog, hash64, hllStandardError } from '../../../lib/report/hll';

describe('HyperLogLog', () => {
  it('states its standard error: 1.04/sqrt(2^14) = 0.81 %', () => {
    expect(hllStandardError()).toBeCloseTo(1.04 / 128, 12);
    expect(hllStandardError(10)).toBeCloseTo(1.04 / 32, 12);
  });

  it('estimates a 200k-distinct stream (each item seen 3 times) within 3 standard errors', () => {
    const h = new HyperLogLog();
    for (let rep = 0; rep < 3; rep++) for (let i = 0; i < 200_000; i++) h.add(`token-${i}`);
    const err = Math.abs(h.estimate() - 200_000) / 200_000;
    expect(err).toBeLessThan(3 * hllStandardError());
  });

  it('is accurate for small and empty streams (no small-range bias)', () => {
    const h = new HyperLogLog();
    expect(h.estimate()).toBe(0);
    for (let i = 0; i < 100; i++) h.add(`w${i}`);
    expect(Math.abs(h.estimate() - 100)).toBeLessThan(3);
  });

  it('merges sketches into the sketch of the union', () => {
    const a = new HyperLogLog();
    const b = new HyperLogLog();
    for (let i = 0; i < 150_000; i++) a.add(`x${i}`);
    for (let i = 50_000; i < 200_000; i++) b.add(`x${i}`);
    a.merge(b);
    expect(Math.abs(a.estimate() - 200_000) / 200_000).toBeLessThan(3 * hllStandardError());
    expect(() => a.merge(new HyperLogLog(10))).toThrow(/merge/);
  });

  it('hashes deterministically into two 32-bit lanes', () => {
    const [h1, h2] = hash64('hello');
    expect(hash64('hello')).toEqual([h1, h2]);
    expect(hash64('hellp')).not.toEqual([h1, h2]);
    expect(h1).toBeGreaterThanOrEqual(0);
    expect(h1).toBeLessThan(2 ** 32);
    expect(h2).toBeLessThan(2 ** 32);
  });
});

describe('DistinctCounter', () => {
  it('is exact under its limit', () => {
    const c = new DistinctCounter(1000);
    for (let i = 0; i < 5000; i++) c.add(`w${i % 700}`);
    expect(c.result()).toEqual({ value: 700, method: 'exact', standardError: 0 });
  });

  it('switches to the sketch past its limit, within its stated error', () => {
    const c = new DistinctCounter(10_000);
    for (let i = 0; i < 200_000; i++) c.add(`w${i}`);
    const r = c.result();
    expect(r.method).toBe('hll');
    expect(r.standardError).toBeCloseTo(hllStandardError(), 12);
    expect(Math.abs(r.value - 200_000) / 200_000).toBeLessThan(3 * r.standardError);
  });

  it('merges exactly while both sides are exact', () => {
    const a = new DistinctCounter(100);
    const b = new DistinctCounter(100);
    ['a', 'b', 'c'].forEach((w) => a.add(w));
    ['c', 'd'].forEach((w) => b.add(w));
    a.merge(b);
    expect(a.result()).toEqual({ value: 4, method: 'exact', standardError: 0 });
  });
});
