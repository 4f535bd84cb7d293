/** Every preset on hand-computed pools, and DataComp's threshold rule against a plain sort. */
import { decide } from '../../../lib/strategies/decide';
import { parseConfig } from '../../../lib/config/load';
import { PRESET_NAMES, resolveRule, ruleOf, thresholdKey, thresholdsNeeded } from '../../../lib/strategies/presets';
import { topFractionThreshold } from '../../helpers/reference-threshold';

// Ten samples with hand-picked scores. Sorted s_raw desc: .9 .8 .7 .6 .5 .4 .3 .2 .1 .05
const sRaw = [0.1, 0.9, 0.5, 0.3, 0.7, 0.05, 0.8, 0.2, 0.6, 0.4];
const sSyn = [0.85, 0.2, 0.95, 0.75, 0.1, 0.3, 0.6, 0.72, 0.4, 0.5];

const BOTH = { raw: true, synthetic: true };

function run(preset: string, fraction?: number) {
  const rule = resolveRule(preset, fraction);
  const thresholds: Record<string, number> = {};
  for (const t of thresholdsNeeded(rule)) thresholds[thresholdKey(t)] = topFractionThreshold(t.source === 'raw' ? sRaw : sSyn, t.fraction);
  return sRaw.map((r, i) => decide(rule, { sRaw: r, sSyn: sSyn[i], usable: BOTH }, thresholds));
}

describe('DataComp threshold', () => {
  it('is sorted-desc[floor(n·f)] on a hand pool', () => {
    // n = floor(10·0.3) = 3 → the 4th largest raw score, 0.6
    expect(topFractionThreshold(sRaw, 0.3)).toBe(0.6);
    // n = 5 → 6th largest syn score: sorted .95 .85 .75 .72 .6 .5 ...
    expect(topFractionThreshold(sSyn, 0.5)).toBe(0.5);
  });

  it('keeps everything at f = 1, nothing from an empty pool, and ignores NaN (failed samples)', () => {
    expect(topFractionThreshold([0.2, 0.1], 1)).toBe(-Infinity);
    expect(topFractionThreshold([], 0.3)).toBe(Infinity);
    expect(topFractionThreshold([NaN, 0.9, NaN, 0.1, 0.5], 0.5)).toBe(0.5);
  });

  it('equals a plain sort-based computation on many random pools, ties included', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 200);
      // quantised scores make ties common
      const pool = Array.from({ length: n }, () => Math.round(rand() * 20) / 20);
      const f = [0.1, 0.25, 0.3, 0.5, 0.75, 0.9][trial % 6];
      const desc = [...pool].sort((a, b) => b - a);
      const k = Math.floor(n * f);
      const expected = k >= n ? -Infinity : desc[k];
      const tau = topFractionThreshold(pool, f);
      expect(tau).toBe(expected);
      // ties at tau are all kept, so at least k samples pass (k+1 when k < n)
      expect(pool.filter((s) => s >= tau).length).toBeGreaterThanOrEqual(Math.min(k + 1, n));
    }
  });
});

describe('presets', () => {
  it('lists the paper rows available without the image-cluster filter', () => {
    expect(PRESET_NAMES).toEqual(
      expect.arrayContaining(['raw', 'raw-top30', 'synthetic', 'synthetic-top50', 'raw30-synthetic70', 'raw30-synthetic70-filtered', 'mix-threshold']),
    );
  });

  it('raw keeps all with raw captions; synthetic keeps all with synthetic', () => {
    expect(run('raw').every((d) => d.kept && d.source === 'raw')).toBe(true);
    expect(run('synthetic').every((d) => d.kept && d.source === 'synthetic')).toBe(true);
  });

  it('raw-top30 keeps s_raw >= 0.6: samples 1, 4, 6, 8', () => {
    const d = run('raw-top30');
    expect(d.map((x, i) => (x.kept ? i : -1)).filter((i) => i >= 0)).toEqual([1, 4, 6, 8]);
    expect(d.filter((x) => x.kept).every((x) => x.source === 'raw')).toBe(true);
    expect(d[0].reason).toBe('below_raw_threshold');
  });

  it('synthetic-top50 keeps s_syn >= 0.5: samples 0, 2, 3, 6, 7, 9', () => {
    const d = run('synthetic-top50');
    expect(d.map((x, i) => (x.kept ? i : -1)).filter((i) => i >= 0)).toEqual([0, 2, 3, 6, 7, 9]);
  });

  it('raw30-synthetic70 uses raw for the raw top 30% and synthetic for the rest, dropping nothing', () => {
    const d = run('raw30-synthetic70');
    expect(d.every((x) => x.kept)).toBe(true);
    expect(d.map((x) => x.source)).toEqual(['synthetic', 'raw', 'synthetic', 'synthetic', 'raw', 'synthetic', 'raw', 'synthetic', 'raw', 'synthetic']);
  });

  it('raw30-synthetic70-filtered: raw if s_raw >= tau_raw, else synthetic if s_syn >= the SAME tau, else drop', () => {
    // tau_raw(0.3) = 0.6. Raw: 1, 4, 6, 8. Synthetic (s_syn >= 0.6): 0 (.85), 2 (.95), 3 (.75), 7 (.72). Drop: 5, 9.
    const d = run('raw30-synthetic70-filtered');
    expect(d.map((x) => (x.kept ? x.source : x.reason))).toEqual([
      'synthetic', 'raw', 'synthetic', 'synthetic', 'raw', 'below_thresholds', 'raw', 'synthetic', 'raw', 'below_thresholds',
    ]);
  });

  it('mix-threshold takes the fraction as a parameter', () => {
    // f = 0.5 → tau_raw = sorted desc[5] = 0.4. Raw: 1,2,4,6,8,9. Synthetic ≥ 0.4: 0 (.85), 3 (.75), 7 (.72). Drop: 5 (.3 < .4).
    const d = run('mix-threshold', 0.5);
    expect(d.map((x) => (x.kept ? x.source : x.reason))).toEqual([
      'synthetic', 'raw', 'raw', 'synthetic', 'raw', 'below_thresholds', 'raw', 'synthetic', 'raw', 'raw',
    ]);
    expect(() => resolveRule('mix-threshold')).toThrow(/fraction/);
  });
});

describe('custom rules', () => {
  const decideAll = (custom: { raw?: object; synthetic?: object; prefer: 'raw' | 'synthetic' }) => {
    const rule = ruleOf({ preset: 'custom', custom: custom as never });
    const thresholds: Record<string, number> = {};
    for (const t of thresholdsNeeded(rule)) thresholds[thresholdKey(t)] = topFractionThreshold(t.source === 'raw' ? sRaw : sSyn, t.fraction);
    return sRaw.map((r, i) => decide(rule, { sRaw: r, sSyn: sSyn[i], usable: BOTH }, thresholds));
  };

  it('expresses the paper presets: the filtered mix as raw top 30% + synthetic at the same tau', () => {
    expect(decideAll({ raw: { fraction: 0.3 }, synthetic: { sameAs: 'raw' }, prefer: 'raw' })).toEqual(run('raw30-synthetic70-filtered'));
    expect(decideAll({ raw: { fraction: 0.3 }, synthetic: { all: true }, prefer: 'raw' })).toEqual(run('raw30-synthetic70'));
    expect(decideAll({ raw: { fraction: 0.3 }, prefer: 'raw' }).map((d) => d.kept)).toEqual(run('raw-top30').map((d) => d.kept));
  });

  it('takes absolute thresholds and combines them with fractions, preferring the named source', () => {
    // synthetic if s_syn >= 0.7 (0, 2, 3, 7), else raw if s_raw in the top 50% (tau 0.4: 1, 4, 6, 8, 9), else drop (5)
    const d = decideAll({ synthetic: { min: 0.7 }, raw: { fraction: 0.5 }, prefer: 'synthetic' });
    expect(d.map((x) => (x.kept ? x.source : x.reason))).toEqual([
      'synthetic', 'raw', 'synthetic', 'synthetic', 'raw', 'below_thresholds', 'raw', 'synthetic', 'raw', 'raw',
    ]);
  });

  it('is validated in the config', () => {
    const base = {
      run: { name: 'c' },
      input: { uri: '/i' },
      output: { uri: '/o' },
      models: { captioner: { path: '/c' }, clip: { path: '/d' } },
    };
    expect(() => parseConfig({ ...base, strategy: { preset: 'custom' } }, 'c')).toThrow(/strategy\.custom: is required/);
    expect(() => parseConfig({ ...base, strategy: { preset: 'raw', custom: { raw: { min: 0.2 } } } }, 'c')).toThrow(/must be "custom"/);
    expect(() => parseConfig({ ...base, strategy: { preset: 'custom', custom: { prefer: 'raw' } } }, 'c')).toThrow(/needs a gate/);
    const ok = parseConfig({ ...base, strategy: { preset: 'custom', custom: { raw: { min: 0.25 }, synthetic: { fraction: 0.4 } } } }, 'c');
    expect(ok.strategy.custom?.prefer).toBe('raw');
  });
});

describe('empty captions', () => {
  const t = { 'raw@0.3': 0.5 };
  const mix = resolveRule('raw30-synthetic70-filtered');
  it('never keeps an empty or white-space caption: the mix falls back to the synthetic one, a raw-only rule drops', () => {
    expect(decide(mix, { sRaw: 0.9, sSyn: 0.6, usable: { raw: false, synthetic: true } }, t)).toEqual({ kept: true, source: 'synthetic', reason: null });
    expect(decide(mix, { sRaw: 0.9, sSyn: 0.6, usable: { raw: false, synthetic: false } }, t)).toEqual({ kept: false, source: null, reason: 'empty_synthetic_caption' });
    expect(decide(resolveRule('raw-top30'), { sRaw: 0.9, sSyn: null, usable: { raw: false, synthetic: true } }, t)).toEqual({ kept: false, source: null, reason: 'empty_raw_caption' });
    expect(decide(resolveRule('raw'), { sRaw: null, sSyn: null, usable: { raw: false, synthetic: false } }, {})).toMatchObject({ kept: false, reason: 'empty_raw_caption' });
    // below the threshold stays below the threshold
    expect(decide(resolveRule('raw-top30'), { sRaw: 0.1, sSyn: null, usable: { raw: false, synthetic: true } }, t).reason).toBe('below_raw_threshold');
  });
});
