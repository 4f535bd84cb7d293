/**
 * The run report: numbers (report.json) and a self-contained page (report.html) about what a run kept, why,
 * how well its captions match their images (CLIP score) and how diverse they are (unique words / trigrams).
 *
 *   buildReport(runUri)          compute a RunReport, streaming decisions/<shard>.parquet one file at a time
 *   buildGallery(runUri, ex)     thumbnails of the report's examples, read from the run's input shards
 *   writeReport(runUri)          build + write report.json and report.html (with the gallery; atomically)
 *   loadReport(uri)              a run's report: its report.json if current, else built from its decisions
 *   compareReports(reports)      two or more runs side by side; renderComparison() as a text table
 */
import { InputError } from '../errors';
import { RunLayout } from '../run/layout';
import { baseName, storageFor } from '../storage';
import { buildReport, type BuildReportOptions } from './build';
import { buildGallery, type GalleryOptions } from './gallery';
import { renderReportHtml } from './html';
import { REPORT_KIND, REPORT_VERSION, type RunReport } from './types';

export { buildReport, displayScoreHistogram, isSelectionReason, type BuildReportOptions } from './build';
export { compareReports, renderComparison, type Comparison, type ComparisonRow } from './compare';
export { renderReportHtml, REPORT_PLOTS } from './html';
export { buildGallery, exampleId, GALLERY_GROUPS, THUMBNAIL_LONG_SIDE, THUMBNAIL_QUALITY, type Gallery, type GalleryGroup, type GalleryOptions, type Thumbnail } from './gallery';
export { DistinctCounter, HyperLogLog, hash64, hllStandardError, type DistinctCount } from './hll';
export { TOKENIZATION, trigrams, words } from './tokenize';
export * from './types';

export interface WriteReportOptions extends BuildReportOptions {
  /** Folder for report.json / report.html (default: the run folder). */
  outUri?: string;
  /** Thumbnails in report.html (size, quality, readers); the images are never in report.json. */
  gallery?: GalleryOptions;
}

export interface WrittenReport {
  report: RunReport;
  json: string;
  html: string;
}

/** Build the run's report and write `report.json` + `report.html` atomically (run folder, or `outUri`). */
export async function writeReport(runUri: string, opts: WriteReportOptions = {}): Promise<WrittenReport> {
  const report = await buildReport(runUri, opts);
  const dir = opts.outUri ?? runUri;
  const storage = storageFor(dir);
  const layout = new RunLayout(opts.outUri ?? runUri);
  const json = layout.report;
  const html = layout.reportHtml;
  // A view of the run's committed outputs, rebuilt whole by every finalize and `recaption report`: it replaces.
  await storage.writeAtomic(json, JSON.stringify(report, null, 2) + '\n', { replace: true });
  const gallery = await buildGallery(runUri, report.examples, opts.gallery);
  await storage.writeAtomic(html, renderReportHtml(report, gallery), { replace: true });
  return { report, json, html };
}

export function isRunReport(x: unknown): x is RunReport {
  const r = x as Partial<RunReport> | null;
  return !!r && r.kind === REPORT_KIND && r.version === REPORT_VERSION;
}

/**
 * A report to compare: `uri` is a report.json file, or a run folder whose report.json is used when it is a
 * current RunReport (the finalize stage's older summary is not) and built from the decisions otherwise.
 */
export async function loadReport(uri: string, opts: BuildReportOptions = {}): Promise<RunReport> {
  const storage = storageFor(uri);
  if (baseName(uri).endsWith('.json')) {
    const parsed: unknown = JSON.parse(await storage.readText(uri));
    if (!isRunReport(parsed)) {
      throw new InputError('CorruptInput', `${uri} is not a recaption report (format ${REPORT_VERSION}); rebuild it with \`recaption report <run>\``);
    }
    return parsed;
  }
  const reportUri = new RunLayout(uri).report;
  if (await storage.exists(reportUri)) {
    try {
      const parsed: unknown = JSON.parse(await storage.readText(reportUri));
      if (isRunReport(parsed)) return parsed;
    } catch {
      // unreadable: rebuild below
    }
  }
  return buildReport(uri, opts);
}
