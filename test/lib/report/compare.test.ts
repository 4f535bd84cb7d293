import { buildReport, compareReports, renderComparison } from '../../../lib/report';
import { tempDir } from '../../helpers/paths';
import { JUNK, KNOWN, writeRun } from './fixtures';

describe('compareReports', () => {
  it('sets two runs side by side with both runs\' numbers and B − A', async () => {
    const root = tempDir('recaption-report-');
    const a = await buildReport(await writeRun(root, KNOWN));
    const b = await buildReport(await writeRun(root, JUNK));
    const c = compareReports(a, b);
    expect(c.runs.map((r) => r.name)).toEqual(['known', 'junk']);
    const row = (label: string) => c.rows.find((r) => r.label === label)!;
    expect(row('preset')).toMatchObject({ a: 'raw30-synthetic70-filtered', b: 'raw-top30', delta: '' });
    expect(row('samples')).toMatchObject({ a: '7', b: '6', delta: '−1', values: [7, 6] });
    expect(row('kept')).toMatchObject({ a: '3', b: '0', delta: '−3' });
    expect(row('kept %')).toMatchObject({ a: '42.9 %', b: '0.0 %', delta: '−42.9 pt' });
    expect(row('kept, raw captions')).toMatchObject({ a: '2', b: '0' });
    expect(row('kept, synthetic captions')).toMatchObject({ a: '1', b: '0' });
    expect(row('mean CLIP score, chosen')).toMatchObject({ a: '0.3572', b: '—', delta: '' });
    expect(row('mean CLIPScore, chosen')).toMatchObject({ a: '0.8929', b: '—' });
    expect(row('unique words, kept')).toMatchObject({ a: '11', b: '0', delta: '−11' });
    expect(row('unique trigrams, kept')).toMatchObject({ a: '11', b: '0' });
    expect(row('τ_raw(0.3) (raw@0.3)')).toMatchObject({ a: '0.3000', b: '+∞ (nothing passes)' });

    const text = renderComparison(c);
    for (const s of ['known', 'junk', 'raw30-synthetic70-filtered', 'raw-top30', '0.3572', '0.8929', '42.9 %', 'unique trigrams, kept', 'τ_raw(0.3)']) {
      expect(text).toContain(s);
    }
    // aligned columns: the header, the rule and every row with a B − A cell end at the same column
    const lines = text.split('\n').slice(0, c.rows.length + 2);
    const full = lines.filter((l, i) => i < 2 || c.rows[i - 2]!.delta !== '');
    expect(full.length).toBeGreaterThan(5);
    expect(new Set(full.map((l) => l.length)).size).toBe(1);
    expect(text).not.toContain('HyperLogLog'); // no estimate in this table
  });

  it('labels the columns A/B when both runs have the same name, and marks estimates', async () => {
    const root = tempDir('recaption-report-');
    const a = await buildReport(await writeRun(root, KNOWN));
    const b = await buildReport(await writeRun(root, KNOWN), { exactLimit: 2 });
    const text = renderComparison(compareReports(a, b));
    expect(text).toMatch(/A: known\s+B: known/);
    expect(text).toMatch(/unique words, kept\s+11\s+≈11/);
    expect(text).toContain('≈ = HyperLogLog estimate (relative standard error 0.81 %)');
  });
});
