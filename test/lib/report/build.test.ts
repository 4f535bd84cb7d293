import { InputError } from '../../../lib/errors';
import { buildReport, displayScoreHistogram, isSelectionReason } from '../../../lib/report';
import { SCORE_BINS } from '../../../lib/report/accumulators';
import { tempDir } from '../../helpers/paths';
import { ALL_FAILED, JUNK, KNOWN, writeRun } from './fixtures';

describe('buildReport on a hand-built run with known answers', () => {
  let runUri: string;
  beforeAll(async () => {
    runUri = await writeRun(tempDir('recaption-report-'), KNOWN);
  });

  it('counts kept by source, dropped by reason and failed by reason', async () => {
    const r = await buildReport(runUri);
    expect(r.kind).toBe('recaption-report');
    expect(r.run).toMatchObject({ name: 'known', preset: 'raw30-synthetic70-filtered', configHash: 'abc123' });
    expect(r.run.presetDescription).toContain('tau_raw(0.3)');
    expect(r.shards).toMatchObject({ planned: 2, read: 2, missingCount: 0, failedCount: 0 });
    expect(r.counts).toEqual({
      samples: 7,
      kept: 3,
      keptBySource: { raw: 2, synthetic: 1 },
      dropped: 2,
      droppedByReason: { below_thresholds: 2 },
      failed: 2,
      failedByReason: { decode_error: 1, empty_image: 1 },
    });
    expect(r.thresholds).toEqual({ values: { 'raw@0.3': 0.3 }, poolSize: 99, rawScore: null });
    expect(r.notes.join(' ')).toContain('2 sample(s) failed before selection (decode_error: 1, empty_image: 1)');
  });

  it('computes means, medians and CLIPScores of raw, synthetic and chosen scores', async () => {
    const { scores } = await buildReport(runUri);
    // raw over the 5 samples that reached selection: 0.3205 0.1005 0.1505 0.4005 -0.0505
    expect(scores.raw.n).toBe(5);
    expect(scores.raw.mean).toBeCloseTo(0.1843, 10);
    expect(scores.raw.median).toBeCloseTo(0.1505, 6);
    expect(scores.raw.min).toBe(-0.0505);
    expect(scores.raw.max).toBe(0.4005);
    expect(scores.raw.meanClipScore).toBeCloseTo((2.5 * (0.3205 + 0.1005 + 0.1505 + 0.4005 + 0)) / 5, 10); // max(cos, 0)
    // synthetic: 0.1005 0.3505 0.2005 0.2505 0.0505
    expect(scores.synthetic.mean).toBeCloseTo(0.1905, 10);
    expect(scores.synthetic.median).toBeCloseTo(0.2005, 6);
    expect(scores.synthetic.meanClipScore).toBeCloseTo(2.5 * 0.1905, 10);
    // chosen: s_raw of the raw-kept (0.3205, 0.4005), s_syn of the synthetic-kept (0.3505)
    expect(scores.chosen.n).toBe(3);
    expect(scores.chosen.mean).toBeCloseTo((0.3205 + 0.3505 + 0.4005) / 3, 10);
    expect(scores.chosen.median).toBeCloseTo(0.3505, 6);
    expect(scores.chosen.meanClipScore).toBeCloseTo((2.5 * (0.3205 + 0.3505 + 0.4005)) / 3, 10);
    expect(scores.note).toBeNull();
  });

  it('bins the scores over the observed range with a nice width (exact bin counts)', async () => {
    const h = (await buildReport(runUri)).scores.histogram!;
    // observed -0.0505..0.4005 → fine bins 949..1400 → width 0.02 is the first with ≤ 40 bins; start 0.94 - 1
    expect(h.width).toBeCloseTo(0.02, 12);
    expect(h.lo).toBeCloseTo(-0.06, 12);
    expect(h.bins).toBe(24);
    const at = (series: number[]) => Object.fromEntries(series.flatMap((v, i) => (v ? [[i, v]] : [])));
    expect(at(h.series.raw)).toEqual({ 0: 1, 8: 1, 10: 1, 19: 1, 23: 1 });
    expect(at(h.series.synthetic)).toEqual({ 5: 1, 8: 1, 13: 1, 15: 1, 20: 1 });
    expect(at(h.series.chosenRaw)).toEqual({ 19: 1, 23: 1 });
    expect(at(h.series.chosenSynthetic)).toEqual({ 20: 1 });
    expect(at(h.series.chosen)).toEqual({ 19: 1, 20: 1, 23: 1 });
  });

  it('measures caption lengths and exact unique words / trigrams', async () => {
    const { captions } = await buildReport(runUri);
    // raw: "A red car on the street"(6) "img_0042.jpg"(3: img 0042 jpg) "click here"(2) "the red car on the street at night"(8) ""(0)
    expect(captions.lengths.raw).toEqual({ n: 5, mean: 3.8, median: 3, min: 0, max: 8, empty: 1 });
    expect(captions.lengths.synthetic).toEqual({ n: 5, mean: 22 / 5, median: 4, min: 3, max: 6, empty: 0 });
    expect(captions.lengths.chosen).toEqual({ n: 3, mean: 20 / 3, median: 6, min: 6, max: 8, empty: 0 });
    expect(captions.lengths.histogram!.series.raw).toEqual([1, 0, 1, 1, 0, 0, 1, 0, 1]);
    const d = captions.diversity;
    expect(d.raw).toMatchObject({ captions: 5, words: 19, trigrams: 11, uniqueWords: { value: 13, method: 'exact' }, uniqueTrigrams: { value: 8, method: 'exact' } });
    expect(d.synthetic).toMatchObject({ captions: 5, words: 22, trigrams: 12, uniqueWords: { value: 14 }, uniqueTrigrams: { value: 12 } });
    expect(d.chosen).toMatchObject({ captions: 3, words: 20, trigrams: 14, uniqueWords: { value: 11 }, uniqueTrigrams: { value: 11 } });
    expect(d.tokenization).toContain('NFKC');
    expect(d.hll.standardError).toBeCloseTo(1.04 / Math.sqrt(16384), 12);
  });

  it('falls back to the HyperLogLog sketch past the exact limit and says so', async () => {
    const r = await buildReport(runUri, { exactLimit: 5 });
    expect(r.captions.diversity.raw.uniqueWords).toMatchObject({ method: 'hll', value: 13 });
    expect(r.captions.diversity.raw.uniqueTrigrams).toMatchObject({ method: 'hll', value: 8 });
    expect(r.captions.diversity.chosen.uniqueTrigrams.standardError).toBeCloseTo(1.04 / 128, 12);
    // exactly at the limit stays exact
    const small = await buildReport(runUri, { exactLimit: 14 });
    expect(small.captions.diversity.synthetic.uniqueWords).toMatchObject({ method: 'exact', value: 14 });
    expect(r.notes.join(' ')).toContain('HyperLogLog estimates (marked ≈; relative standard error 0.81 %)');
  });

  it('keeps a few examples per outcome', async () => {
    const { examples } = await buildReport(runUri);
    expect(examples.keptRaw.map((e) => e.raw_caption).sort()).toEqual(['A red car on the street', 'the red car on the street at night']);
    expect(examples.keptSynthetic).toHaveLength(1);
    expect(examples.dropped).toHaveLength(2);
    expect(examples.failed.map((e) => e.reason).sort()).toEqual(['decode_error', 'empty_image']);
  });
});

describe('buildReport edge cases', () => {
  it('a pool of pure junk captions: everything dropped, a clear note, empty kept pools', async () => {
    const r = await buildReport(await writeRun(tempDir('recaption-report-'), JUNK));
    expect(r.counts).toMatchObject({ samples: 6, kept: 0, dropped: 6, failed: 0, droppedByReason: { below_raw_threshold: 6 } });
    expect(r.scores.chosen).toEqual({ n: 0, mean: null, median: null, min: null, max: null, meanClipScore: null });
    expect(r.scores.raw.n).toBe(6);
    expect(r.scores.histogram!.series.chosen.every((v) => v === 0)).toBe(true);
    expect(r.captions.diversity.chosen).toMatchObject({ captions: 0, uniqueWords: { value: 0 }, uniqueTrigrams: { value: 0 } });
    expect(r.thresholds.values).toEqual({ 'raw@0.3': 'inf' });
    expect(r.notes.join(' ')).toMatch(/No sample was kept: the preset's rule dropped all 6 scored samples \(below_raw_threshold: 6\)/);
    expect(JSON.stringify(r)).not.toMatch(/NaN|Infinity/);
  });

  it('a pool where every image failed: no scores, empty histograms and a sentence saying why', async () => {
    const r = await buildReport(await writeRun(tempDir('recaption-report-'), ALL_FAILED));
    expect(r.counts).toMatchObject({ samples: 3, kept: 0, dropped: 0, failed: 3, failedByReason: { decode_error: 2, too_many_pixels: 1 } });
    expect(r.scores.histogram).toBeNull();
    expect(r.scores.raw.n).toBe(0);
    expect(r.scores.note).toBe(
      'Every one of the 3 samples failed before it could be scored (decode_error: 2, too_many_pixels: 1), so there are no CLIP scores and the score histograms are empty.',
    );
    expect(r.captions.lengths.histogram).toBeNull();
    expect(JSON.stringify(r)).not.toMatch(/NaN|Infinity/);
  });

  it('a zero-shard run', async () => {
    const r = await buildReport(await writeRun(tempDir('recaption-report-'), { name: 'empty', preset: 'raw', shards: {} }));
    expect(r.counts.samples).toBe(0);
    expect(r.shards).toMatchObject({ planned: 0, read: 0 });
    expect(r.scores.histogram).toBeNull();
    expect(r.scores.note).toBe('The run planned no shards, so there is nothing to show: no samples, no CLIP scores.');
  });

  it('planned shards without decisions and whole-shard failures are reported', async () => {
    const r = await buildReport(
      await writeRun(tempDir('recaption-report-'), {
        ...ALL_FAILED,
        name: 'partial',
        planned: ['00000000', '00000001', '00000002'],
        failures: [{ shard: '00000001', stage: 'caption', type: 'CorruptShard', message: 'bad tar' }],
      }),
    );
    expect(r.shards).toMatchObject({ planned: 3, read: 1, missing: ['00000001', '00000002'], missingCount: 2, failedCount: 1 });
    expect(r.shards.failed[0]).toEqual({ shard: '00000001', stage: 'caption', type: 'CorruptShard', message: 'bad tar' });
    expect(r.notes).toContain('1 shard(s) failed as a whole (bad input) and are not in these numbers.');
    expect(r.notes.join(' ')).toContain('1 planned shard(s) have no decision file yet (unfinished run?): 00000002.');
  });

  it('a folder that is not a run is a clear MissingInput error', async () => {
    const err = await buildReport(tempDir('recaption-report-')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).type).toBe('MissingInput');
    expect((err as Error).message).toMatch(/not a recaption run folder/);
  });
});

describe('report helpers', () => {
  it('tells selection reasons from sample failures', () => {
    for (const r of ['below_thresholds', 'below_raw_threshold', 'below_synthetic_threshold', 'no_raw_score', 'no_synthetic_score', 'no_scores', 'basic_filter:not_english', 'basic_filter:few_words']) {
      expect(isSelectionReason(r)).toBe(true);
    }
    for (const r of ['decode_error', 'empty_image', 'too_many_pixels', 'not_scored']) expect(isSelectionReason(r)).toBe(false);
  });

  it('display bins are whole fine bins: counts are preserved exactly', () => {
    const fine = () => new Float64Array(SCORE_BINS);
    const raw = fine();
    raw[1000] = 3; // 0.000
    raw[1234] = 2;
    raw[1999] = 1; // the last fine bin (score 1.0)
    const h = displayScoreHistogram({ raw, synthetic: fine(), chosenRaw: fine(), chosenSynthetic: fine() }, 40)!;
    expect(h.series.raw.reduce((a, b) => a + b, 0)).toBe(6);
    expect(h.bins).toBeLessThanOrEqual(40);
    expect(h.lo + h.bins * h.width).toBeGreaterThanOrEqual(1 - 1e-9);
    expect(displayScoreHistogram({ raw: fine(), synthetic: fine(), chosenRaw: fine(), chosenSynthetic: fine() })).toBeNull();
  });
});
