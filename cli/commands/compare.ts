/** `recaption compare <run> <run> [run...]`: runs side by side (preset, kept, CLIP scores, diversity, thresholds). */
import { compareReports, loadReport, renderComparison } from '../../lib/report';
import { resolveRunUri } from './report';

/**
 * Each of `runs` (two or more) is a run folder (its report.json is used when current, else the report is built
 * from the decision files, without writing anything) or a report.json file. The first is the baseline of the deltas.
 */
export async function compareCommand(runs: string[], opts: { json: boolean }): Promise<void> {
  const reports = await Promise.all(runs.map((r) => loadReport(resolveRunUri(r))));
  const comparison = compareReports(reports);
  process.stdout.write(opts.json ? JSON.stringify(comparison, null, 2) + '\n' : renderComparison(comparison));
}
