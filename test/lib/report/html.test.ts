import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { REPORT_PLOTS, renderReportHtml, writeReport, buildReport, isRunReport } from '../../../lib/report';
import { tempDir } from '../../helpers/paths';
import { expectSelfContained } from './html-checks';
import { ALL_FAILED, JUNK, KNOWN, writeRun } from './fixtures';

function plots(html: string): string[] {
  return [...html.matchAll(/<svg class="plot" data-plot="([^"]+)"/g)].map((m) => m[1]!);
}

describe('report.html', () => {
  it('writeReport writes report.json and a self-contained report.html with an <svg> per plot', async () => {
    const runUri = await writeRun(tempDir('recaption-report-'), KNOWN);
    const w = await writeReport(runUri);
    expect(w.json).toBe(path.join(runUri, 'report.json'));
    expect(w.html).toBe(path.join(runUri, 'report.html'));
    const json = JSON.parse(await readFile(w.json, 'utf8'));
    expect(isRunReport(json)).toBe(true);
    expect(json.counts.kept).toBe(3);
    const html = await readFile(w.html, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expectSelfContained(html);
    expect(plots(html)).toEqual([...REPORT_PLOTS]);
    expect((html.match(/<svg\b/g) ?? []).length).toBe(REPORT_PLOTS.length);
    // the numbers are on the page
    expect(html).toContain('raw30-synthetic70-filtered');
    expect(html).toContain('0.3572'); // mean chosen CLIP score
    // CLIPScore = 2.5 · max(cos, 0), averaged: the last column of the score table, for each caption set
    const clipScores = (row: string): string | undefined => new RegExp(`<tr><td>${row}</td>(?:<td[^>]*>[^<]*</td>)*<td class="n">([^<]*)</td></tr>`).exec(html)?.[1];
    expect(html).toContain('<th class="n">mean CLIPScore</th>');
    expect(clipScores('raw \\(every scored sample\\)')).toBe('0.4860'); // the -0.0505 score counts as 0, not negative
    expect(clipScores('synthetic \\(every scored sample\\)')).toBe('0.4763');
    expect(clipScores('chosen \\(kept samples\\)')).toBe('0.8929');
    expect(html).toContain('τ_raw(0.3) = 0.3000'); // threshold line on the score plots
    expect(html).toMatch(/tokenisation: NFKC/i);
    expect(html).toContain('1.04/√m = 0.81 %');
    // bars have tooltips
    expect(html).toMatch(/<rect [^>]*fill="#d9822b"[^>]*><title>/);
  });

  it('writes to another folder with outUri', async () => {
    const runUri = await writeRun(tempDir('recaption-report-'), KNOWN);
    const out = tempDir('recaption-report-out-');
    const w = await writeReport(runUri, { outUri: out });
    expect(w.json).toBe(path.join(out, 'report.json'));
    expect(w.html).toBe(path.join(out, 'report.html'));
    await expect(readFile(w.html, 'utf8')).resolves.toContain('<svg');
  });

  it('escapes captions (no markup injection from alt-text)', async () => {
    const runUri = await writeRun(tempDir('recaption-report-'), {
      name: 'evil<run>',
      preset: 'raw',
      shards: { '00000000': [{ kept: true, source: 'raw', raw_caption: '<script>alert("x")</script> & <img src=//e.vil/x>', s_raw: 0.2, s_syn: 0.1 }] },
    });
    const html = renderReportHtml(await buildReport(runUri));
    expectSelfContained(html);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=//e.vil/x&gt;');
    expect(html).toContain('evil&lt;run&gt;');
  });

  it.each([
    ['junk pool (everything dropped)', JUNK, /No sample was kept: the preset&#39;s rule dropped all 6 scored samples/],
    ['all-failed pool (no scores)', ALL_FAILED, /Every one of the 3 samples failed before it could be scored/],
    ['zero-shard run', { name: 'empty', preset: 'raw', shards: {} }, /The run planned no shards/],
  ])('%s renders every plot and explains what is empty', async (_name, fixture, sentence) => {
    const runUri = await writeRun(tempDir('recaption-report-'), fixture);
    const { html } = await writeReport(runUri);
    const page = await readFile(html, 'utf8');
    expectSelfContained(page);
    expect(plots(page)).toEqual([...REPORT_PLOTS]);
    expect(page).toMatch(sentence);
    expect(page).not.toMatch(/NaN|Infinity|undefined/);
  });

  it('the all-failed pool says inside the score plots why they are empty', async () => {
    const runUri = await writeRun(tempDir('recaption-report-'), ALL_FAILED);
    const page = renderReportHtml(await buildReport(runUri));
    const scorePlot = /<svg class="plot" data-plot="scores-pool"[\s\S]*?<\/svg>/.exec(page)![0];
    expect(scorePlot).toContain('failed before it could');
    expect(scorePlot).not.toMatch(/<rect [^>]*fill="#/); // no bars
  });
});
