/**
 * report.html: ONE self-contained file (inline CSS, inline SVG plots, thumbnails as data: URIs, no script, no
 * external asset), readable offline in any browser and small enough to attach to a ticket. Plots are hand-made
 * SVG (see ./svg.ts for why no charting library).
 */
import { fmtDistinct, fmtInt, fmtPct, fmtScore, fmtThreshold, thresholdLabel } from './format';
import { exampleId, GALLERY_GROUPS, THUMBNAIL_LONG_SIDE, type Gallery, type GalleryGroup } from './gallery';
import { COLORS, barPanelsSvg, esc, histogramSvg, stackedBarSvg } from './svg';
import type { DiversityStats, ExampleRow, LengthStats, RunReport, ScoreStats } from './types';

/** Plots report.html draws, in order (each is one <svg class="plot" data-plot=ID>). */
export const REPORT_PLOTS = ['outcomes', 'scores-pool', 'scores-chosen', 'caption-lengths', 'diversity'] as const;

const CSS = `
:root{--fg:#1d232b;--mute:#5b6470;--line:#e4e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2a9d5c}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:20px 0 8px}
p{margin:6px 0}
.sub{color:var(--mute)}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f3;padding:1px 5px;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(175px,1fr));gap:12px;margin:18px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;margin-top:2px}
.card .d{color:var(--mute);font-size:12.5px}
.notes{background:#fff8e6;border:1px solid #f1d48a;border-radius:8px;padding:10px 14px;margin:16px 0}
.notes li{margin:3px 0}
.fig{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:12px 0}
.fig p.cap{color:var(--mute);font-size:12.5px;margin:4px 4px 2px}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px;margin:10px 0;font-size:13px}
th,td{padding:6px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:0}
table.ex{width:100%;table-layout:fixed}
table.ex td{word-wrap:break-word}
.tag{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;color:#fff}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:12px;margin:8px 0;align-items:start}
.sample{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px;display:flex;gap:12px}
.sample .im{flex:none;display:flex;align-items:center;justify-content:center;background:#f0f2f5;border-radius:4px;overflow:hidden}
.sample img{display:block}
.sample .ph{padding:8px;color:var(--mute);font-size:11.5px;text-align:center;word-break:break-word}
.sample figcaption{flex:1;min-width:0;font-size:13px}
.sample .c{margin:0 0 6px;padding:2px 6px;border-left:3px solid transparent;word-wrap:break-word}
.sample .c.on{border-left-color:${COLORS.chosen};background:#eef8f2}
.sample .s,.sample .k{color:var(--mute);font-size:12px;font-variant-numeric:tabular-nums}
footer{margin-top:40px;color:var(--mute);font-size:12px}
svg.plot{display:block;max-width:100%;height:auto}
svg .pt{font-size:14px;font-weight:600;fill:#1d232b}
svg .st{font-size:13px;font-weight:600;fill:#1d232b}
svg .tk{font-size:11px;fill:#5b6470}
svg .al{font-size:12px;fill:#5b6470}
svg .lg{font-size:12px;fill:#1d232b}
svg .bl{font-size:12px;fill:#fff;font-weight:600}
svg .em{font-size:13px;fill:#5b6470;font-style:italic}
svg .pa{fill:#fbfbfc;stroke:#e4e7eb}
svg .gr{stroke:#e4e7eb}
svg .ax{stroke:#5b6470}
svg .th{stroke:${COLORS.threshold};stroke-width:1.5;stroke-dasharray:5 4}
svg .tl{font-size:11.5px;fill:${COLORS.threshold};font-weight:600}
`;

const tag = (text: string, color: string) => `<span class="tag" style="background:${color}">${esc(text)}</span>`;

function table(head: string[], rows: string[][], numeric: boolean[] = []): string {
  const cls = (i: number) => (numeric[i] ? ' class="n"' : '');
  return (
    `<table><thead><tr>${head.map((h, i) => `<th${cls(i)}>${h}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

function card(k: string, v: string, d = ''): string {
  return `<div class="card"><div class="k">${esc(k)}</div><div class="v">${v}</div>${d ? `<div class="d">${d}</div>` : ''}</div>`;
}

function fig(svg: string, caption: string): string {
  return `<div class="fig">${svg}<p class="cap">${caption}</p></div>`;
}

const scoreRow = (name: string, s: ScoreStats) => [
  name,
  fmtInt(s.n),
  fmtScore(s.mean),
  fmtScore(s.median, 3),
  fmtScore(s.min),
  fmtScore(s.max),
  fmtScore(s.meanClipScore),
];

const lengthRow = (name: string, s: LengthStats) => [
  name,
  fmtInt(s.n),
  s.mean === null ? '—' : s.mean.toFixed(2),
  s.median === null ? '—' : String(s.median),
  s.min === null ? '—' : String(s.min),
  s.max === null ? '—' : String(s.max),
  fmtInt(s.empty),
];

const diversityRow = (name: string, d: DiversityStats) => [
  name,
  fmtInt(d.captions),
  fmtInt(d.words),
  fmtDistinct(d.uniqueWords),
  fmtInt(d.trigrams),
  fmtDistinct(d.uniqueTrigrams),
  d.captions ? (d.uniqueTrigrams.value / d.captions).toFixed(3) : '—',
];

function reasonsTable(r: RunReport): string {
  const c = r.counts;
  const rows: string[][] = [];
  const add = (outcome: string, detail: string, n: number) => rows.push([outcome, detail, fmtInt(n), fmtPct(n, c.samples)]);
  add(tag('kept', COLORS.chosen), 'raw caption', c.keptBySource.raw);
  add(tag('kept', COLORS.chosen), 'synthetic caption', c.keptBySource.synthetic);
  const other = c.kept - c.keptBySource.raw - c.keptBySource.synthetic;
  if (other) add(tag('kept', COLORS.chosen), 'no caption source recorded', other);
  for (const [k, v] of Object.entries(c.droppedByReason).sort((a, b) => b[1] - a[1])) add(tag('dropped', '#8a929c'), `<code>${esc(k)}</code>`, v);
  for (const [k, v] of Object.entries(c.failedByReason).sort((a, b) => b[1] - a[1])) add(tag('failed', COLORS.failed), `<code>${esc(k)}</code>`, v);
  rows.push(['<b>total</b>', '', `<b>${fmtInt(c.samples)}</b>`, c.samples ? '100.0 %' : '—']);
  return table(['outcome', 'caption / reason', 'samples', 'share'], rows, [false, false, true, true]);
}

function lengthPlot(r: RunReport): string {
  const h = r.captions.lengths.histogram;
  const SHOW = 60;
  const series = [
    { name: 'raw', color: COLORS.raw, counts: h?.series.raw ?? [], n: r.captions.lengths.raw.n },
    { name: 'synthetic', color: COLORS.synthetic, counts: h?.series.synthetic ?? [], n: r.captions.lengths.synthetic.n },
    { name: 'kept (chosen)', color: COLORS.chosen, counts: h?.series.chosen ?? [], n: r.captions.lengths.chosen.n },
  ];
  const len = h ? h.series.raw.length : 0;
  const bins = Math.min(len, SHOW + 1);
  const folded = len > SHOW + 1; // lengths past SHOW (and the ≥ overflowFrom bin) fold into the last bar
  const labels = Array.from({ length: bins }, (_, i) => (folded && i === bins - 1 ? `${i}+` : String(i)));
  const values = (counts: number[], n: number) =>
    Array.from({ length: bins }, (_, i) => {
      const c = folded && i === bins - 1 ? counts.slice(i).reduce((a, b) => a + b, 0) : (counts[i] ?? 0);
      return n ? (100 * c) / n : 0;
    });
  return histogramSvg({
    id: 'caption-lengths',
    title: 'Caption length (words), % of each pool',
    xLabel: 'words per caption',
    yLabel: '% of captions',
    lo: 0,
    width: 1,
    bins,
    labels,
    labelEvery: bins > 40 ? 5 : bins > 20 ? 2 : 1,
    series: series.map((s) => ({ name: s.name, color: s.color, values: values(s.counts, s.n) })),
    mode: 'group',
    yFormat: (v) => `${v.toFixed(1)} %`,
    emptyText: 'No captions to measure: no sample reached selection.',
  });
}

const captionText = (s: string | null) => (s === null ? '<span class="sub">—</span>' : s.trim() === '' ? '<i class="sub">(empty)</i>' : esc(s));

function failedTable(rows: ExampleRow[]): string {
  if (rows.length === 0) return '<p class="sub">none</p>';
  return (
    '<table class="ex"><colgroup><col style="width:18%"><col style="width:52%"><col style="width:30%"></colgroup>' +
    '<thead><tr><th>shard / key</th><th>raw caption</th><th>reason</th></tr></thead><tbody>' +
    rows
      .map((e) => `<tr><td><code>${esc(e.shard)}</code><br><code>${esc(e.key)}</code></td><td>${captionText(e.raw_caption)}</td><td><code>${esc(e.reason ?? 'unknown')}</code></td></tr>`)
      .join('') +
    '</tbody></table>'
  );
}

const GALLERY_TITLES: Record<GalleryGroup, string> = {
  keptRaw: 'Kept with the raw caption',
  keptSynthetic: 'Kept with the synthetic caption',
  dropped: 'Dropped',
};

/** One sample as the paper's Figure 1 shows it: the image, both captions with their CLIP scores, the outcome. */
function sampleFigure(e: ExampleRow, group: GalleryGroup, gallery: Gallery | undefined, side: number): string {
  const t = gallery?.get(exampleId(e));
  const image =
    t?.kind === 'image'
      ? `<img src="${t.dataUri}" width="${t.width}" height="${t.height}" alt="${esc(exampleId(e))}">`
      : ((why: string) => `<div class="ph" title="${esc(why)}">no image: ${esc(why)}</div>`)(t?.reason ?? "the report was drawn without the run's input shards");
  const chosen = group === 'keptRaw' ? 'raw' : group === 'keptSynthetic' ? 'synthetic' : null;
  const caption = (source: 'raw' | 'synthetic', text: string | null, score: number | null) =>
    `<p class="c${chosen === source ? ' on' : ''}">${tag(source, COLORS[source])} ${captionText(text)} <span class="s">CLIP ${fmtScore(score, 3)}</span></p>`;
  const outcome = chosen ? `kept with the ${chosen} caption` : `dropped: <code>${esc(e.reason ?? 'unknown')}</code>`;
  return (
    `<figure class="sample" data-example="${esc(exampleId(e))}"><div class="im" style="width:${side}px;height:${side}px">${image}</div>` +
    `<figcaption>${caption('raw', e.raw_caption, e.s_raw)}${caption('synthetic', e.synthetic_caption, e.s_syn)}` +
    `<p class="k">${outcome} · <code>${esc(e.shard)}/${esc(e.key)}</code></p></figcaption></figure>`
  );
}

function galleryHtml(r: RunReport, gallery: Gallery | undefined): string {
  // Frames fit the largest thumbnail, so a run drawn with another thumbnail size still lines up.
  let side = 0;
  for (const t of gallery?.values() ?? []) if (t.kind === 'image') side = Math.max(side, t.width, t.height);
  side ||= THUMBNAIL_LONG_SIDE;
  return GALLERY_GROUPS.map((g) => {
    const rows = r.examples[g];
    const body = rows.length ? `<div class="gallery" data-group="${g}">${rows.map((e) => sampleFigure(e, g, gallery, side)).join('')}</div>` : '<p class="sub">none</p>';
    return `<h3>${GALLERY_TITLES[g]}</h3>${body}`;
  }).join('\n');
}

/** The page; `gallery` holds the examples' thumbnails (./gallery.ts), placeholders where it is absent. */
export function renderReportHtml(r: RunReport, gallery?: Gallery): string {
  const c = r.counts;
  const s = r.scores;
  const d = r.captions.diversity;
  const h = s.histogram;
  const vlines = Object.entries(r.thresholds.values)
    .filter((e): e is [string, number] => typeof e[1] === 'number')
    .map(([k, v]) => ({ x: v, label: `${thresholdLabel(k)} = ${v.toFixed(4)}` }));
  const noScores = s.note ?? 'No CLIP scores.';
  const hll = `HyperLogLog, m = ${fmtInt(d.hll.registers)} registers, relative standard error 1.04/√m = ${(d.hll.standardError * 100).toFixed(2)} %`;

  const outcomes = stackedBarSvg(
    'outcomes',
    'Samples by outcome',
    [
      { name: 'kept, raw caption', color: COLORS.raw, value: c.keptBySource.raw },
      { name: 'kept, synthetic caption', color: COLORS.synthetic, value: c.keptBySource.synthetic },
      { name: 'kept, other', color: COLORS.chosen, value: c.kept - c.keptBySource.raw - c.keptBySource.synthetic },
      { name: 'dropped (rule or filter)', color: COLORS.dropped, value: c.dropped },
      { name: 'failed (not scored)', color: COLORS.failed, value: c.failed },
    ].filter((x) => x.value > 0 || x.name !== 'kept, other'),
    'No samples in this run.',
  );
  // Both score plots share the x axis (the fixed score bins) and the threshold lines.
  const scoreAxis = { lo: h?.lo ?? 0, width: h?.width ?? 1, bins: h?.bins ?? 0, vlines };
  const poolPlot = histogramSvg({
    id: 'scores-pool',
    title: 'CLIP score (cosine) of raw vs synthetic captions, every scored sample',
    xLabel: 'cosine similarity of image and caption embeddings',
    yLabel: 'samples',
    ...scoreAxis,
    series: [
      { name: 'raw', color: COLORS.raw, values: h?.series.raw ?? [] },
      { name: 'synthetic', color: COLORS.synthetic, values: h?.series.synthetic ?? [] },
    ],
    mode: 'overlay',
    emptyText: noScores,
  });
  const chosenPlot = histogramSvg({
    id: 'scores-chosen',
    title: 'CLIP score of the chosen caption, kept samples, by caption source',
    xLabel: 'cosine similarity of image and chosen caption',
    yLabel: 'kept samples',
    ...scoreAxis,
    series: [
      { name: 'raw', color: COLORS.raw, values: h?.series.chosenRaw ?? [] },
      { name: 'synthetic', color: COLORS.synthetic, values: h?.series.chosenSynthetic ?? [] },
    ],
    mode: 'stack',
    emptyText: s.note ?? (c.kept === 0 ? 'No sample was kept, so no chosen caption has a score.' : 'No kept sample has a score.'),
  });
  const divBars = (pick: (x: DiversityStats) => { value: number; method: string }) =>
    (
      [
        ['raw', COLORS.raw, d.raw],
        ['synthetic', COLORS.synthetic, d.synthetic],
        ['kept', COLORS.chosen, d.chosen],
      ] as const
    ).map(([name, color, x]) => {
      const v = pick(x);
      return { name, color, value: v.value, label: `${v.method === 'hll' ? '≈' : ''}${fmtInt(v.value)}` };
    });
  const diversityPlot = barPanelsSvg(
    'diversity',
    'Text diversity: distinct words and word trigrams per caption pool',
    [
      { title: 'unique words', bars: divBars((x) => x.uniqueWords) },
      { title: 'unique word trigrams', bars: divBars((x) => x.uniqueTrigrams) },
    ],
    'No captions: nothing to count.',
  );

  const thresholdRows = Object.entries(r.thresholds.values).map(([k, v]) => [`<code>${esc(k)}</code>`, thresholdLabel(k), fmtThreshold(v)]);
  const preset = r.run.preset ?? 'unknown';
  const title = `recaption report — ${r.run.name}`;
  const chosenMean = s.chosen.mean;

  const parts: string[] = [];
  parts.push(
    `<header><h1>${esc(r.run.name)}</h1>` +
      `<p class="sub">preset <code>${esc(preset)}</code>${r.run.fraction !== null ? ` (fraction ${r.run.fraction})` : ''}${r.run.presetDescription ? ` — ${esc(r.run.presetDescription)}` : ''}</p>` +
      `<p class="sub">run <code>${esc(r.run.uri)}</code>${r.run.finishedAt ? ` · finished ${esc(r.run.finishedAt)}` : ''} · report generated ${esc(r.generatedAt)}</p></header>`,
  );
  parts.push(
    '<section class="cards">' +
      card('samples', fmtInt(c.samples), `${fmtInt(r.shards.read)} shard file(s) read`) +
      card('kept', fmtInt(c.kept), `${fmtPct(c.kept, c.samples)} of samples`) +
      card('kept by source', `${fmtInt(c.keptBySource.raw)} / ${fmtInt(c.keptBySource.synthetic)}`, 'raw / synthetic captions') +
      card('mean CLIP score, chosen', fmtScore(chosenMean), `CLIPScore ${fmtScore(s.chosen.meanClipScore, 3)}`) +
      card('unique trigrams, kept', fmtDistinct(d.chosen.uniqueTrigrams), `${fmtDistinct(d.chosen.uniqueWords)} unique words`) +
      '</section>',
  );
  if (r.notes.length) parts.push(`<div class="notes"><b>Notes</b><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></div>`);

  parts.push('<h2>Where the samples went</h2>');
  parts.push(
    fig(
      outcomes,
      'Kept samples by the caption they keep; dropped = scored but not selected by the preset\'s rule or a filter (basic filter...); failed = the image could not be decoded or scored (recorded in the decision parquet with its reason).',
    ),
  );
  parts.push(reasonsTable(r));

  parts.push('<h2>CLIP scores</h2>');
  parts.push(
    '<p>Score = cosine similarity of the L2-normalised CLIP image and text embeddings. CLIPScore (Hessel et al. 2021) = 2.5 · max(cos, 0). ' +
      `Thresholds τ are pool-wide (DataComp's <code>get_threshold</code>): the score at rank ⌊n·f⌋ of the whole pool sorted descending${r.thresholds.poolSize !== null ? `, here over ${fmtInt(r.thresholds.poolSize)} scored samples` : ''}.${r.thresholds.rawScore ? ` Raw-caption scores: ${esc(r.thresholds.rawScore)}.` : ''}</p>`,
  );
  parts.push(fig(poolPlot, 'Raw (alt-text) and synthetic caption scores of the same images; dashed lines: the run\'s thresholds.'));
  parts.push(fig(chosenPlot, 'The score of the caption each kept sample carries (s_raw if kept with its raw caption, s_syn if kept with the synthetic one), stacked by source.'));
  parts.push(
    table(
      ['captions', 'n', 'mean', 'median', 'min', 'max', 'mean CLIPScore'],
      [scoreRow('raw (every scored sample)', s.raw), scoreRow('synthetic (every scored sample)', s.synthetic), scoreRow('chosen (kept samples)', s.chosen)],
      [false, true, true, true, true, true, true],
    ),
  );
  parts.push(`<p class="sub">Medians are read off a 0.001-wide histogram (±${s.medianResolution}).</p>`);
  parts.push('<h3>Thresholds</h3>');
  parts.push(thresholdRows.length ? table(['key', 'threshold', 'value'], thresholdRows, [false, false, true]) : `<p class="sub">The preset <code>${esc(preset)}</code> uses no threshold (or thresholds.json is missing).</p>`);

  parts.push('<h2>Captions</h2>');
  parts.push(
    `<p>Pools: <b>raw</b> = ${esc(r.captions.pools.raw)}; <b>synthetic</b> = ${esc(r.captions.pools.synthetic)}; <b>kept</b> = ${esc(r.captions.pools.chosen)}.</p>`,
  );
  parts.push(fig(lengthPlot(r), 'Share of each pool\'s captions with a given number of words (words as defined below).'));
  parts.push(
    table(
      ['captions', 'n', 'mean words', 'median', 'min', 'max', 'empty'],
      [
        lengthRow('raw', r.captions.lengths.raw),
        lengthRow('synthetic', r.captions.lengths.synthetic),
        lengthRow('kept (chosen)', r.captions.lengths.chosen),
      ],
      [false, true, true, true, true, true, true],
    ),
  );
  parts.push('<h3>Text diversity</h3>');
  parts.push(fig(diversityPlot, 'Distinct words and distinct word trigrams in each pool (the paper\'s diversity measures).'));
  parts.push(
    table(
      ['captions', 'n', 'words', 'unique words', 'trigrams', 'unique trigrams', 'unique trigrams / caption'],
      [diversityRow('raw', d.raw), diversityRow('synthetic', d.synthetic), diversityRow('kept (chosen)', d.chosen)],
      [false, true, true, true, true, true, true],
    ),
  );
  parts.push(
    `<p class="sub">Tokenisation: ${esc(d.tokenization)}. Distinct counts are exact up to ${fmtInt(d.exactLimit)} distinct items per pool (a set of 53-bit hashes); beyond that they are ${esc(hll)}, shown as ≈.</p>`,
  );

  parts.push('<h2>Examples</h2>');
  parts.push(
    '<p class="sub">A few samples per outcome (deterministic reservoir sample over the whole run), as the paper\'s Figure 1 shows them: ' +
      'the image (from the run\'s input shard), its raw and synthetic captions and their CLIP scores; the caption kept is highlighted.</p>',
  );
  parts.push(galleryHtml(r, gallery));
  parts.push('<h3>Failed</h3>' + failedTable(r.examples.failed));

  parts.push('<h2>Run</h2>');
  parts.push(
    table(
      ['', ''],
      [
        ['preset', `<code>${esc(preset)}</code>`],
        ['config hash', r.run.configHash ? `<code>${esc(r.run.configHash)}</code>` : '—'],
        ['created', esc(r.run.createdAt ?? '—')],
        ['finished', esc(r.run.finishedAt ?? '—')],
        ['shards planned', r.shards.planned === null ? '— (no manifest or plan)' : fmtInt(r.shards.planned)],
        ['decision files read', fmtInt(r.shards.read)],
        ['planned shards without decisions', fmtInt(r.shards.missingCount)],
        ['shards failed as a whole', fmtInt(r.shards.failedCount)],
      ],
    ),
  );
  if (r.shards.failed.length) {
    parts.push(
      '<h3>Failed shards</h3>' +
        table(
          ['shard', 'stage', 'type', 'message'],
          r.shards.failed.map((f) => [`<code>${esc(f.shard)}</code>`, esc(f.stage), `<code>${esc(f.type)}</code>`, esc(f.message)]),
        ),
    );
  }
  parts.push(`<footer>recaption report (format ${r.version}) · one self-contained file: inline CSS, SVG and thumbnails, no script, no external resource · report.json holds every number shown here.</footer>`);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body><main>
${parts.join('\n')}
</main></body>
</html>
`;
}
