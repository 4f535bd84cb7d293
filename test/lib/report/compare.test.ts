import { InputError } from '../../../lib/errors';
import { buildReport, compareReports, renderComparison } from '../../../lib/report';
import { tempDir } from '../../helpers/paths';
import { ALL_FAILED, JUNK, KNOWN, writeRun } from './fixtures';

describe('compareReports', () => {
  it('sets two runs side by side with both runs\' numbers and B − A', async () => {
    const root = tempDir('recaption-report-');
    const a = await buildReport(await writeRun(root, KNOWN));
    const b = await buildReport(await writeRun(root, JUNK));
    const c = compareReports([a, b]);
    expect(c.runs.map((r) => r.name)).toEqual(['known', 'junk']);
    const row = (label: string) => c.rows.find((r) => r.label === label)!;
    expect(row('preset')).toMatchObject({ cells: ['raw30-synthetic70-filtered', 'raw-top30'], deltas: ['', ''] });
    expect(row('samples')).toMatchObject({ cells: ['7', '6'], deltas: ['', '−1'], values: [7, 6] });
    expect(row('kept')).toMatchObject({ cells: ['3', '0'], deltas: ['', '−3'] });
    expect(row('kept %')).toMatchObject({ cells: ['42.9 %', '0.0 %'], deltas: ['', '−42.9 pt'] });
    expect(row('kept, raw captions')).toMatchObject({ cells: ['2', '0'] });
    expect(row('kept, synthetic captions')).toMatchObject({ cells: ['1', '0'] });
    expect(row('mean CLIP score, chosen')).toMatchObject({ cells: ['0.3572', '—'], deltas: ['', ''] });
    expect(row('mean CLIPScore, chosen')).toMatchObject({ cells: ['0.8929', '—'] });
    expect(row('unique words, kept')).toMatchObject({ cells: ['11', '0'], deltas: ['', '−11'] });
    expect(row('unique trigrams, kept')).toMatchObject({ cells: ['11', '0'] });
    expect(row('τ_raw(0.3) (raw@0.3)')).toMatchObject({ cells: ['0.3000', '+∞ (nothing passes)'] });

    const text = renderComparison(c);
    for (const s of ['known', 'junk', 'raw30-synthetic70-filtered', 'raw-top30', '0.3572', '0.8929', '42.9 %', 'unique trigrams, kept', 'τ_raw(0.3)']) {
      expect(text).toContain(s);
    }
    // aligned columns: the header, the rule and every row with a B − A cell end at the same column
    const lines = text.split('\n').slice(0, c.rows.length + 2);
    const full = lines.filter((l, i) => i < 2 || c.rows[i - 2]!.deltas[1] !== '');
    expect(full.length).toBeGreaterThan(5);
    expect(new Set(full.map((l) => l.length)).size).toBe(1);
    expect(text).not.toContain('HyperLogLog'); // no estimate in this table
  });

  it('labels the columns A/B when both runs have the same name, and marks estimates', async () => {
    const root = tempDir('recaption-report-');
    const a = await buildReport(await writeRun(root, KNOWN));
    const b = await buildReport(await writeRun(root, KNOWN), { exactLimit: 2 });
    const text = renderComparison(compareReports([a, b]));
    expect(text).toMatch(/A: known\s+B: known/);
    expect(text).toMatch(/unique words, kept\s+11\s+≈11/);
    expect(text).toContain('≈ = HyperLogLog estimate (relative standard error 0.81 %)');
  });

  it('sets three runs side by side, one column each, with deltas against the first', async () => {
    const root = tempDir('recaption-report-');
    const reports = [await buildReport(await writeRun(root, KNOWN)), await buildReport(await writeRun(root, JUNK)), await buildReport(await writeRun(root, ALL_FAILED))];
    const c = compareReports(reports);
    expect(c.runs).toEqual([
      { name: 'known', uri: reports[0]!.run.uri, preset: 'raw30-synthetic70-filtered', fraction: null },
      { name: 'junk', uri: reports[1]!.run.uri, preset: 'raw-top30', fraction: null },
      { name: 'allfailed', uri: reports[2]!.run.uri, preset: 'raw30-synthetic70-filtered', fraction: null },
    ]);
    const row = (label: string) => c.rows.find((r) => r.label === label)!;
    expect(row('samples')).toEqual({ label: 'samples', cells: ['7', '6', '3'], deltas: ['', '−1', '−4'], values: [7, 6, 3] });
    expect(row('kept')).toMatchObject({ cells: ['3', '0', '0'], deltas: ['', '−3', '−3'] });
    expect(row('kept %')).toMatchObject({ cells: ['42.9 %', '0.0 %', '0.0 %'], deltas: ['', '−42.9 pt', '−42.9 pt'] });
    expect(row('failed samples')).toMatchObject({ cells: ['2', '0', '3'], deltas: ['', '−2', '+1'] });
    expect(row('mean s_raw, pool')).toMatchObject({ cells: ['0.1843', '0.0250', '—'], deltas: ['', '−0.1593', ''] });
    expect(row('unique words, kept')).toMatchObject({ cells: ['11', '0', '0'] });
    expect(row('τ_raw(0.3) (raw@0.3)')).toMatchObject({ cells: ['0.3000', '+∞ (nothing passes)', '−∞ (everything passes)'], deltas: ['', '', ''] });
    for (const r of c.rows) expect([r.cells.length, r.deltas.length, r.values.length]).toEqual([3, 3, 3]);

    const text = renderComparison(c);
    const [head, rule, ...rest] = text.split('\n');
    expect(head).toMatch(/^\s+known\s+junk\s+allfailed\s+B − A\s+C − A$/);
    expect(rule!.split('   ')).toHaveLength(6); // measure, three runs, two deltas
    expect(rest).toContainEqual(expect.stringMatching(/^samples\s+7\s+6\s+3\s+−1\s+−4$/));
    expect(text).toContain(`A = ${reports[0]!.run.uri}\nB = ${reports[1]!.run.uri}\nC = ${reports[2]!.run.uri}\n`);
  });

  it('refuses fewer than two runs', async () => {
    const a = await buildReport(await writeRun(tempDir('recaption-report-'), KNOWN));
    expect(() => compareReports([a])).toThrow(InputError);
    expect(() => compareReports([])).toThrow(/at least two runs/);
  });
});
