/** The bounded-memory two-pass threshold equals DataComp's plain sort on many random pools, ties included. */
import { locateRank, ScoreHistogram, thresholdInBin } from '../../../lib/strategies/pool-threshold';
import { topFractionThreshold } from '../../helpers/reference-threshold';

function twoPass(shards: number[][], fraction: number, bins: number): number {
  // pass 1: one histogram per shard, merged in reverse order (merge order must not matter)
  const merged = new ScoreHistogram(bins);
  for (const shard of [...shards].reverse()) {
    const h = new ScoreHistogram(bins);
    shard.forEach((v) => h.add(v));
    merged.merge(h);
  }
  const loc = locateRank(merged, fraction);
  const values: number[] = [];
  if (loc.kind === 'bin') for (const shard of shards) for (const v of shard) if (merged.bin(v) === loc.bin) values.push(v);
  return thresholdInBin(values, loc);
}

describe('two-pass pool threshold', () => {
  let seed = 777;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

  it.each([4, 64, 65536])('equals sorted-desc[floor(n·f)] with %i bins', (bins) => {
    for (let trial = 0; trial < 200; trial++) {
      const nShards = 1 + Math.floor(rand() * 6);
      const quantum = [0, 0.05, 0.001][trial % 3]; // 0 = continuous, else heavy ties
      const shards = Array.from({ length: nShards }, () =>
        Array.from({ length: Math.floor(rand() * 60) }, () => {
          const v = rand() * 0.6 - 0.1; // CLIP-like range
          return quantum ? Math.round(v / quantum) * quantum : v;
        }),
      );
      const f = [0.1, 0.3, 0.5, 0.75, 1][trial % 5];
      expect(twoPass(shards, f, bins)).toBe(topFractionThreshold(shards.flat(), f));
    }
  });

  it('handles the edges: empty pool, f = 1, values outside [-1, 1], NaN', () => {
    expect(twoPass([[], []], 0.3, 16)).toBe(Infinity);
    expect(twoPass([[0.1, 0.2]], 1, 16)).toBe(-Infinity);
    expect(twoPass([[1.0000001, -1.0000002, 0.5, NaN]], 0.5, 16)).toBe(topFractionThreshold([1.0000001, -1.0000002, 0.5], 0.5));
    expect(() => locateRank(new ScoreHistogram(8), 0)).toThrow(RangeError);
  });
});
