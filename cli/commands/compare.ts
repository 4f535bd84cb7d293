/** `recaption compare <a> <b>`: two runs side by side (preset, kept, CLIP scores, diversity, thresholds). */
import { compareReports, loadReport, renderComparison } from '../../lib/report';
import { resolveRunUri } from './report';

/**
 * `a` and `b` are run folders (their report.json is used when current, else the report is built from the
 * decision files, without writing anything) or report.json files.
 */
export async function compareCommand(a: string, b: string, opts: { json: boolean }): Promise<void> {
  const [ra, rb] = await Promise.all([loadReport(resolveRunUri(a)), loadReport(resolveRunUri(b))]);
  const comparison = compareReports(ra, rb);
  process.stdout.write(opts.json ? JSON.stringify(comparison, null, 2) + '\n' : renderComparison(comparison));
}
