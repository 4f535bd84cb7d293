/**
 * buildReport: read a finished (or partial) run folder and compute the report's numbers — decisions are
 * streamed one shard file at a time through fixed-size accumulators, so memory does not grow with the pool.
 */
import { InputError } from '../errors';
import { isSelectionReason } from '../reasons';
import { readShardFailures, type ShardFailure } from '../run/failures';
import { RunLayout } from '../run/layout';
import { DECISION_TABLE } from '../run/tables';
import { PRESETS } from '../strategies/presets';
import { baseName, joinUri, storageFor, type Storage } from '../storage';
import { LENGTH_CAP, LengthAccumulator, SCORE_BIN_WIDTH, SCORE_BINS, SCORE_LO, ScoreAccumulator, TextAccumulator } from './accumulators';
import { DEFAULT_EXACT_LIMIT, HLL_PRECISION, hllStandardError } from './hll';
import { TOKENIZATION, words } from './tokenize';
import {
  REPORT_KIND,
  REPORT_VERSION,
  type ExampleRow,
  type LengthHistogram,
  type RunReport,
  type ScoreHistogram,
} from './types';

export interface BuildReportOptions {
  /** Distinct words/trigrams per pool counted exactly up to this many, HyperLogLog beyond (default 2M). */
  exactLimit?: number;
  /** Example rows kept per outcome (default 5). */
  examples?: number;
  /** Display bins of the score histograms (default 40). */
  scoreBins?: number;
}

/** The decision columns the report reads (the others are never decoded). */
const DECISION_READ_COLUMNS = ['key', 'kept', 'source', 'caption', 'raw_caption', 'synthetic_caption', 's_raw', 's_syn', 'reason'] as const;

/** Which dropped samples are failures rather than selection: one rule for the whole project (lib/reasons.ts). */
export { isSelectionReason };

interface ManifestLike {
  run?: string;
  createdAt?: string;
  finishedAt?: string;
  configHash?: string;
  config?: { run?: { name?: string }; strategy?: { preset?: string; fraction?: number } };
  thresholds?: Record<string, number | string>;
  shards?: Array<{ shard: string }>;
  failures?: ShardFailure[];
}
interface PlanLike {
  runName?: string;
  createdAt?: string;
  configHash?: string;
  config?: ManifestLike['config'];
  shards?: Array<{ name: string }>;
}
interface ThresholdsLike {
  preset?: string;
  fraction?: number | null;
  thresholds?: Record<string, number | string>;
  /** Scored samples per caption source (older files: one number). */
  poolSize?: number | { raw?: number; synthetic?: number };
  /** Where s_raw came from, e.g. `computed` or `precomputed: clip_l14_similarity_score over the metadata pool`. */
  rawScore?: string;
}

/** Pool size behind the thresholds: the source of the first threshold key (`raw@0.3` → raw). */
function poolSizeOf(t: ThresholdsLike | null): number | null {
  const p = t?.poolSize;
  if (p === undefined) return null;
  if (typeof p === 'number') return p;
  const first = Object.keys(t?.thresholds ?? {})[0] ?? 'raw@';
  return (first.startsWith('synthetic') ? p.synthetic : p.raw) ?? null;
}

async function readJson<T>(storage: Storage, uri: string): Promise<T | null> {
  if (!(await storage.exists(uri))) return null;
  try {
    return JSON.parse(await storage.readText(uri)) as T;
  } catch (err) {
    throw new InputError('CorruptInput', `${uri}: not valid JSON: ${(err as Error).message}`);
  }
}

/** Deterministic reservoir sample (Algorithm R with a seeded mulberry32), so a rebuilt report shows the same rows. */
class Reservoir<T> {
  readonly items: T[] = [];
  private seen = 0;
  private state: number;
  constructor(
    private readonly size: number,
    seed: number,
  ) {
    this.state = seed >>> 0;
  }
  private random(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  offer(make: () => T): void {
    this.seen++;
    if (this.items.length < this.size) this.items.push(make());
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.size) this.items[j] = make();
    }
  }
}

const NICE_WIDTHS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000];

/**
 * Coarse display bins over the observed range of the fine (0.001) grid: the smallest "nice" width (0.001,
 * 0.002, 0.005, 0.01, ...) giving at most `maxBins` bins, aligned to a multiple of itself, so every display
 * bin is a whole number of fine bins and its count is exact. Null when every series is empty.
 */
export function displayScoreHistogram(
  fine: { raw: Float64Array; synthetic: Float64Array; chosenRaw: Float64Array; chosenSynthetic: Float64Array },
  maxBins = 40,
): ScoreHistogram | null {
  const all = [fine.raw, fine.synthetic, fine.chosenRaw, fine.chosenSynthetic];
  let bMin = Infinity;
  let bMax = -Infinity;
  for (const s of all)
    for (let i = 0; i < SCORE_BINS; i++)
      if (s[i]! > 0) {
        if (i < bMin) bMin = i;
        if (i > bMax) bMax = i;
      }
  if (bMin === Infinity) return null;
  const minSpan = Math.min(20, maxBins);
  if (bMax - bMin + 1 < minSpan) {
    const pad = Math.ceil((minSpan - (bMax - bMin + 1)) / 2);
    bMin = Math.max(0, bMin - pad);
    bMax = Math.min(SCORE_BINS - 1, bMax + pad);
  }
  let k = NICE_WIDTHS[NICE_WIDTHS.length - 1]!;
  for (const w of NICE_WIDTHS) {
    if ((Math.floor(bMax / w) + 1 - Math.floor(bMin / w)) <= maxBins) {
      k = w;
      break;
    }
  }
  const start = Math.floor(bMin / k) * k;
  const bins = Math.floor(bMax / k) + 1 - Math.floor(bMin / k);
  const rebin = (s: Float64Array): number[] => {
    const out = new Array<number>(bins).fill(0);
    for (let i = start; i < Math.min(SCORE_BINS, start + bins * k); i++) out[Math.floor((i - start) / k)]! += s[i]!;
    return out;
  };
  const chosenRaw = rebin(fine.chosenRaw);
  const chosenSynthetic = rebin(fine.chosenSynthetic);
  const round = (x: number) => Math.round(x * 1e9) / 1e9;
  return {
    lo: round(SCORE_LO + start * SCORE_BIN_WIDTH),
    width: round(k * SCORE_BIN_WIDTH),
    bins,
    series: {
      raw: rebin(fine.raw),
      synthetic: rebin(fine.synthetic),
      chosen: chosenRaw.map((v, i) => v + chosenSynthetic[i]!),
      chosenRaw,
      chosenSynthetic,
    },
  };
}

function lengthHistogram(pools: { raw: LengthAccumulator; synthetic: LengthAccumulator; chosen: LengthAccumulator }): LengthHistogram | null {
  const accs = [pools.raw, pools.synthetic, pools.chosen];
  if (accs.every((a) => a.n === 0)) return null;
  const top = Math.min(LENGTH_CAP, Math.max(...accs.map((a) => a.maxSeen)));
  const cut = (a: LengthAccumulator) => Array.from(a.counts.subarray(0, top + 1));
  return { overflowFrom: LENGTH_CAP, series: { raw: cut(pools.raw), synthetic: cut(pools.synthetic), chosen: cut(pools.chosen) } };
}

const fmtReasons = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v.toLocaleString('en-US')}`)
    .join(', ');

/** Compute the report of the run at `runUri` (a local path or gs:// folder: `<output>/<run.name>`). */
export async function buildReport(runUri: string, opts: BuildReportOptions = {}): Promise<RunReport> {
  const storage = storageFor(runUri);
  const layout = new RunLayout(runUri);
  const exactLimit = opts.exactLimit ?? DEFAULT_EXACT_LIMIT;
  const nExamples = opts.examples ?? 5;

  const manifest = await readJson<ManifestLike>(storage, layout.manifest);
  const plan = await readJson<PlanLike>(storage, layout.plan);
  const thresholdsFile = await readJson<ThresholdsLike>(storage, layout.thresholds);
  const decisionsDir = layout.decisionsDir;
  const listedDecisions = (await storage.list(decisionsDir))
    .filter((u) => /^[^/]+\.parquet$/.test(baseName(u)) && u === joinUri(decisionsDir, baseName(u)))
    .sort();
  if (!manifest && !plan && !thresholdsFile && listedDecisions.length === 0) {
    throw new InputError(
      'MissingInput',
      `${runUri} is not a recaption run folder: no manifest.json, plan.json, thresholds.json or decisions/*.parquet (give <output>/<run.name>)`,
    );
  }

  // Shard-level failures: the failures/ folder is the record; the manifest holds a copy.
  const failures = await readShardFailures(storage, layout);
  if (failures.length === 0 && manifest?.failures) failures.push(...manifest.failures);
  const failedShardNames = new Set(failures.map((f) => f.shard));
  // A shard that failed as a whole (say at its write stage) has no outputs: its decisions are not in these numbers.
  const decisionFiles = listedDecisions.filter((u) => !failedShardNames.has(baseName(u).replace(/\.parquet$/, '')));

  const config = manifest?.config ?? plan?.config;
  const preset = config?.strategy?.preset ?? thresholdsFile?.preset ?? null;
  const fraction = config?.strategy?.fraction ?? thresholdsFile?.fraction ?? null;
  const plannedNames = manifest?.shards?.map((s) => s.shard) ?? plan?.shards?.map((s) => s.name) ?? null;
  const readNames = new Set(decisionFiles.map((u) => baseName(u).replace(/\.parquet$/, '')));
  const missing = plannedNames ? plannedNames.filter((n) => !readNames.has(n)) : [];

  // Accumulators.
  const sRaw = new ScoreAccumulator();
  const sSyn = new ScoreAccumulator();
  const sChosen = new ScoreAccumulator();
  const sChosenRaw = new ScoreAccumulator();
  const sChosenSyn = new ScoreAccumulator();
  const tRaw = new TextAccumulator(exactLimit);
  const tSyn = new TextAccumulator(exactLimit);
  const tChosen = new TextAccumulator(exactLimit);
  const keptBySource = { raw: 0, synthetic: 0 };
  const droppedByReason: Record<string, number> = {};
  const failedByReason: Record<string, number> = {};
  let samples = 0;
  let kept = 0;
  let dropped = 0;
  let failed = 0;
  const ex = {
    keptRaw: new Reservoir<ExampleRow>(nExamples, 1),
    keptSynthetic: new Reservoir<ExampleRow>(nExamples, 2),
    dropped: new Reservoir<ExampleRow>(nExamples, 3),
    failed: new Reservoir<ExampleRow>(nExamples, 4),
  };

  // One shard's rows in memory at a time; the next file's bytes are fetched while this one is processed.
  const fetch = (i: number) => (i < decisionFiles.length ? storage.readBuffer(decisionFiles[i]!) : null);
  let next = fetch(0);
  next?.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
  for (let fi = 0; fi < decisionFiles.length; fi++) {
    const uri = decisionFiles[fi]!;
    const shard = baseName(uri).replace(/\.parquet$/, '');
    const bytes = await next!;
    next = fetch(fi + 1);
    next?.catch(() => undefined);
    const rows = await DECISION_TABLE.decode(bytes, uri, [...DECISION_READ_COLUMNS]);
    for (const r of rows) {
      samples++;
      const example = (): ExampleRow => ({
        shard,
        key: r.key,
        caption: r.caption,
        raw_caption: r.raw_caption,
        synthetic_caption: r.synthetic_caption,
        s_raw: r.s_raw,
        s_syn: r.s_syn,
        reason: r.reason,
      });
      // Failed samples are counted, but not in the pools below (they have no score and no synthetic caption).
      if (!r.kept) {
        const reason = r.reason ?? 'unknown';
        if (!isSelectionReason(reason) && reason !== 'unknown') {
          failed++;
          failedByReason[reason] = (failedByReason[reason] ?? 0) + 1;
          ex.failed.offer(example);
          continue;
        }
        dropped++;
        droppedByReason[reason] = (droppedByReason[reason] ?? 0) + 1;
        ex.dropped.offer(example);
      }
      // The pools compared (raw vs synthetic): every sample that reached selection, the same images for both.
      sRaw.add(r.s_raw);
      sSyn.add(r.s_syn);
      const rawWords = typeof r.raw_caption === 'string' ? words(r.raw_caption) : null;
      const synWords = typeof r.synthetic_caption === 'string' ? words(r.synthetic_caption) : null;
      if (rawWords) tRaw.addWords(rawWords);
      if (synWords) tSyn.addWords(synWords);
      if (!r.kept) continue;

      kept++;
      let score: number | null = null;
      if (r.source === 'raw') {
        keptBySource.raw++;
        score = r.s_raw;
        sChosenRaw.add(score);
        ex.keptRaw.offer(example);
      } else if (r.source === 'synthetic') {
        keptBySource.synthetic++;
        score = r.s_syn;
        sChosenSyn.add(score);
        ex.keptSynthetic.offer(example);
      }
      sChosen.add(score);
      const text = r.caption ?? (r.source === 'raw' ? r.raw_caption : r.source === 'synthetic' ? r.synthetic_caption : null);
      if (text !== null) {
        tChosen.addWords(text === r.raw_caption && rawWords ? rawWords : text === r.synthetic_caption && synWords ? synWords : words(text));
      }
    }
  }

  const histogram = displayScoreHistogram(
    { raw: sRaw.bins, synthetic: sSyn.bins, chosenRaw: sChosenRaw.bins, chosenSynthetic: sChosenSyn.bins },
    opts.scoreBins ?? 40,
  );

  // Sentences for anything unusual.
  const notes: string[] = [];
  const planned = plannedNames?.length ?? null;
  let scoreNote: string | null = null;
  if (decisionFiles.length === 0) {
    scoreNote =
      planned === 0
        ? 'The run planned no shards, so there is nothing to show: no samples, no CLIP scores.'
        : `No decision files under ${decisionsDir}: ${planned === null ? 'the run' : `none of its ${planned} planned shards`} reached the select stage${failures.length ? ` (${failedShardNames.size} shard(s) failed as a whole, see below)` : ''}, so there are no samples and no CLIP scores.`;
    notes.push(scoreNote);
  } else if (samples === 0) {
    scoreNote = `The ${decisionFiles.length} decision file(s) hold no samples, so there are no CLIP scores.`;
    notes.push(scoreNote);
  } else if (sRaw.n === 0 && sSyn.n === 0) {
    scoreNote =
      failed === samples
        ? `Every one of the ${samples.toLocaleString('en-US')} samples failed before it could be scored (${fmtReasons(failedByReason)}), so there are no CLIP scores and the score histograms are empty.`
        : 'No sample has a CLIP score, so the score histograms are empty.';
    notes.push(scoreNote);
  }
  if (samples > 0 && kept === 0 && failed < samples) {
    notes.push(
      `No sample was kept: the preset's rule dropped all ${dropped.toLocaleString('en-US')} scored samples (${fmtReasons(droppedByReason)})` +
        (failed ? ` and ${failed.toLocaleString('en-US')} failed (${fmtReasons(failedByReason)})` : '') +
        '. The kept-caption histograms and diversity are therefore empty.',
    );
  }
  if (failed > 0 && failed < samples) {
    notes.push(`${failed.toLocaleString('en-US')} sample(s) failed before selection (${fmtReasons(failedByReason)}); they are counted, but not in the score, length or diversity numbers.`);
  }
  if (failedShardNames.size > 0) {
    notes.push(`${failedShardNames.size} shard(s) failed as a whole (bad input) and are not in these numbers.`);
  }
  const missingNotFailed = missing.filter((m) => !failedShardNames.has(m));
  if (missingNotFailed.length > 0) {
    notes.push(`${missingNotFailed.length} planned shard(s) have no decision file yet (unfinished run?): ${missingNotFailed.slice(0, 5).join(', ')}${missingNotFailed.length > 5 ? ', ...' : ''}.`);
  }
  const divRaw = tRaw.diversity();
  const divSyn = tSyn.diversity();
  const divChosen = tChosen.diversity();
  if ([divRaw, divSyn, divChosen].some((d) => d.uniqueWords.method === 'hll' || d.uniqueTrigrams.method === 'hll')) {
    notes.push(
      `Some distinct counts passed ${exactLimit.toLocaleString('en-US')} and are HyperLogLog estimates (marked ≈; relative standard error ${(hllStandardError() * 100).toFixed(2)} %).`,
    );
  }

  const presetInfo = preset ? PRESETS.find((p) => p.name === preset) : undefined;
  return {
    kind: REPORT_KIND,
    version: REPORT_VERSION,
    generatedAt: new Date().toISOString(),
    run: {
      name: manifest?.run ?? plan?.runName ?? config?.run?.name ?? baseName(runUri),
      uri: runUri,
      preset,
      fraction,
      presetDescription: presetInfo ? presetInfo.description : null,
      configHash: manifest?.configHash ?? plan?.configHash ?? null,
      createdAt: manifest?.createdAt ?? plan?.createdAt ?? null,
      finishedAt: manifest?.finishedAt ?? null,
    },
    shards: {
      planned,
      read: decisionFiles.length,
      missing: missing.slice(0, 100),
      missingCount: missing.length,
      failed: failures.slice(0, 100),
      failedCount: failures.length,
    },
    counts: { samples, kept, keptBySource, dropped, droppedByReason, failed, failedByReason },
    thresholds: {
      values: thresholdsFile?.thresholds ?? manifest?.thresholds ?? {},
      poolSize: poolSizeOf(thresholdsFile),
      rawScore: thresholdsFile?.rawScore ?? null,
    },
    scores: {
      raw: sRaw.stats(),
      synthetic: sSyn.stats(),
      chosen: sChosen.stats(),
      histogram,
      medianResolution: SCORE_BIN_WIDTH / 2,
      note: scoreNote,
    },
    captions: {
      pools: {
        raw: 'raw caption of every sample that reached selection (failed samples excluded)',
        synthetic: 'synthetic caption of every sample that reached selection',
        chosen: 'the caption of every kept sample (raw or synthetic, as chosen)',
      },
      lengths: {
        raw: tRaw.lengths.stats(),
        synthetic: tSyn.lengths.stats(),
        chosen: tChosen.lengths.stats(),
        histogram: lengthHistogram({ raw: tRaw.lengths, synthetic: tSyn.lengths, chosen: tChosen.lengths }),
      },
      diversity: {
        tokenization: TOKENIZATION,
        exactLimit,
        hll: { precision: HLL_PRECISION, registers: 2 ** HLL_PRECISION, standardError: hllStandardError() },
        raw: divRaw,
        synthetic: divSyn,
        chosen: divChosen,
      },
    },
    examples: {
      keptRaw: ex.keptRaw.items,
      keptSynthetic: ex.keptSynthetic.items,
      dropped: ex.dropped.items,
      failed: ex.failed.items,
    },
    notes,
  };
}
