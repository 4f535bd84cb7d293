/** The human summary of a finished run. */
import type { RunSummaryData } from '../lib/pipeline/finalize-stage';

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '–');
const num = (v: number | null) => (v === null ? '–' : v.toFixed(4));

export function formatSummary(s: RunSummaryData, uiUrl?: string): string {
  const lines = [
    `run        ${s.runUri}`,
    `shards     ${s.shards}${s.failedShards ? ` (${s.failedShards} failed — see manifest.json)` : ''}`,
    `samples    ${s.samples} in, ${s.kept} kept (${pct(s.kept, s.samples)})`,
    `by source  raw ${s.keptBySource.raw ?? 0} · synthetic ${s.keptBySource.synthetic ?? 0}`,
  ];
  const dropped = Object.entries(s.dropped).sort((a, b) => b[1] - a[1]);
  if (dropped.length) lines.push(`dropped    ${dropped.map(([r, n]) => `${r} ${n}`).join(' · ')}`);
  lines.push(
    `mean CLIP  raw ${num(s.meanScores.raw)} · synthetic ${num(s.meanScores.synthetic)} · chosen ${num(s.meanScores.chosen)}`,
    `thresholds ${Object.entries(s.thresholds).map(([k, v]) => `${k} = ${typeof v === 'number' ? v.toFixed(4) : v}`).join(' · ') || '(none: preset keeps all)'}`,
    `outputs    shards    ${s.outputs.shards}`,
    `           decisions ${s.outputs.decisions}`,
    `           subset    ${s.outputs.subset}`,
    `           manifest  ${s.outputs.manifest}`,
    `           stats     ${s.outputs.stats}`,
    `           report    ${s.outputs.reportHtml}`,
  );
  if (uiUrl) lines.push(`Temporal   ${uiUrl}`);
  return lines.join('\n');
}
