/** `recaption report <run>`: rebuild a run's report.json + report.html from its decision files. */
import * as path from 'node:path';
import { writeReport } from '../../lib/report';
import { fmtInt, fmtPct, fmtScore } from '../../lib/report/format';

/** A run folder as given on the command line: gs:// and file:// as is, local paths made absolute. */
export function resolveRunUri(run: string): string {
  if (run.startsWith('gs://')) return run.replace(/\/+$/, '');
  if (run.startsWith('file://')) return run;
  return path.resolve(run);
}

/**
 * `run` is the run folder (`<output.uri>/<run.name>`, local or gs://); `out` writes the two files to another
 * folder instead (e.g. when the run's bucket is read-only). Prints the paths, or the report as JSON.
 */
export async function reportCommand(run: string, opts: { json: boolean; out?: string }): Promise<void> {
  const runUri = resolveRunUri(run);
  const written = await writeReport(runUri, opts.out ? { outUri: resolveRunUri(opts.out) } : {});
  if (opts.json) {
    process.stdout.write(JSON.stringify(written.report, null, 2) + '\n');
    return;
  }
  const r = written.report;
  const c = r.counts;
  const lines = [
    `run     ${r.run.name} (${r.run.preset ?? 'preset unknown'}) — ${fmtInt(c.samples)} samples, ${fmtInt(c.kept)} kept (${fmtPct(c.kept, c.samples)}: raw ${fmtInt(c.keptBySource.raw)} · synthetic ${fmtInt(c.keptBySource.synthetic)}), mean CLIP chosen ${fmtScore(r.scores.chosen.mean)}`,
    ...r.notes.map((n) => `note    ${n}`),
    `report  ${written.json}`,
    `html    ${written.html}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
