/**
 * Benchmark (c′): the decode loop inside ONNX Runtime (one Loop-graph run per batch, lib/models/generation-graph)
 * against the JS loop (one session.run per step, lib/models/generation.ts): the same folder loaded twice, once per
 * route (a graph-route model holds no per-step decoder session), same images, seeds and options (top-K 50,
 * temperature 0.75, minLength = maxLength so every row makes the same number of tokens). Tokens must be
 * identical on CPU fp32: the warm-up compares them and the result says so.
 *
 * Also the load cost per route (`--load-cost`, below): RSS and load time of each route in a fresh process.
 *
 * Two timings per side: "decode" starts both loops from the same image-side output (the encoder runs once,
 * outside the timing: what the loops differ in), "end to end" includes the image side of every batch (as
 * production runs it). Sides alternate within each round; medians of `runs` rounds.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { loadCaptionModel } from '../lib/models/captioner';
import { generateTokens } from '../lib/models/generation';
import type { CaptionModel } from '../lib/models/caption-model';
import { checkLengths, fixedLengthOptions, makePixels, type GenerationBenchOptions } from './caption-tokens';
import { median, seconds } from './timing';

export interface GenerationGraphOptions extends GenerationBenchOptions {
  /** captioner folders (any family) */
  dirs: string[];
  /** also time end to end (image side included); off for real-size CPU runs where the encoder dominates */
  endToEnd?: boolean;
}

export interface GenerationGraphRow {
  model: string;
  family: string;
  /** the route the model loaded with ('graph', or the JS loop's reason) */
  route: string;
  batch: number;
  tokens: number;
  graph_decode_tps: number | null;
  js_decode_tps: number;
  decode_ratio: number | null;
  graph_e2e_tps: number | null;
  js_e2e_tps: number | null;
  e2e_ratio: number | null;
  /** the graph's tokens equal the JS loop's (warm-up batch); null when the graph was not built */
  tokens_identical: boolean | null;
}

export interface GenerationGraphResult {
  device: string;
  dtype: string;
  runs: number;
  threads: number | null;
  rows: GenerationGraphRow[];
}

/** Which generation route a loaded captioner took, as the tables print it. */
const routeOf = (model: CaptionModel): string => (model.generation.kind === 'graph' ? 'graph' : `JS loop (${model.generation.reason})`);

async function benchOne(dir: string, o: GenerationGraphOptions): Promise<GenerationGraphRow> {
  const batch = o.batch ?? 16;
  const tokens = o.tokens ?? 16;
  const runs = o.runs ?? 3;
  const runtime = { device: o.device, dtype: o.dtype, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) };
  // Auto (the production default); the JS side is a second load, forced to the JS loop.
  const model = await loadCaptionModel(dir, runtime);
  const jsModel = await loadCaptionModel(dir, { ...runtime, generation: 'js' }).catch(async (err: unknown) => {
    await model.release();
    throw err;
  });
  try {
    const pixels = await makePixels(model, batch, 'bench-generation');
    const seeds = pixels.map((_, i) => `bench:${i}`);
    const opts = fixedLengthOptions(tokens);
    const hasGraph = model.generateInGraph !== undefined;
    const graph = async (): Promise<void> => checkLengths(await generateTokens(model, pixels, seeds, opts), tokens);
    const js = async (): Promise<void> => checkLengths(await generateTokens(jsModel, pixels, seeds, opts), tokens);

    // Warm-up on the full length (every step shape once), which is also the equality check.
    const jsTokens = await generateTokens(jsModel, pixels, seeds, opts);
    const identical = hasGraph ? JSON.stringify(await generateTokens(model, pixels, seeds, opts)) === JSON.stringify(jsTokens) : null;

    const times: Record<string, number[]> = {};
    const timeSides = async (sides: [string, () => Promise<void>][]): Promise<void> => {
      for (let r = 0; r < runs; r++) {
        for (let k = 0; k < sides.length; k++) {
          const [name, fn] = sides[(k + r) % sides.length]!; // alternate: spreads a shared machine's drift
          (times[name] ??= []).push(await seconds(fn));
        }
      }
    };
    if (o.endToEnd ?? true) await timeSides([['js_e2e', js], ...(hasGraph ? [['graph_e2e', graph] as [string, () => Promise<void>]] : [])]);
    // Decode only: both loops start from the same image-side output, computed once here.
    const context: ort.Tensor = await model.context(pixels);
    const imageSides = [model, jsModel].map((m) => [m, m.context.bind(m)] as const);
    for (const [m] of imageSides) m.context = () => Promise.resolve(context);
    try {
      await timeSides([['js_decode', js], ...(hasGraph ? [['graph_decode', graph] as [string, () => Promise<void>]] : [])]);
    } finally {
      for (const [m, imageSide] of imageSides) m.context = imageSide;
    }
    const tps = (name: string): number | null => (times[name] ? (batch * tokens) / median(times[name]) : null);
    const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? a / b : null);
    const row = {
      graph_decode_tps: tps('graph_decode'),
      js_decode_tps: tps('js_decode')!,
      graph_e2e_tps: tps('graph_e2e'),
      js_e2e_tps: tps('js_e2e'),
    };
    return {
      model: path.resolve(dir),
      family: model.family,
      route: routeOf(model),
      batch,
      tokens,
      ...row,
      decode_ratio: ratio(row.graph_decode_tps, row.js_decode_tps),
      e2e_ratio: ratio(row.graph_e2e_tps, row.js_e2e_tps),
      tokens_identical: identical,
    };
  } finally {
    await Promise.all([model.release(), jsModel.release()]);
  }
}

export async function benchGenerationGraph(o: GenerationGraphOptions): Promise<GenerationGraphResult> {
  const rows: GenerationGraphRow[] = [];
  for (const dir of o.dirs) rows.push(await benchOne(dir, o));
  return { device: o.device ?? 'cpu', dtype: o.dtype ?? 'fp32', runs: o.runs ?? 3, threads: o.threads ?? null, rows };
}

/** The table of (c′); `header: false` prints the model rows only (results printed one model at a time). */
export function formatGenerationGraph(r: GenerationGraphResult, header = true): string {
  const tps = (v: number | null) => (v === null ? '       n/a' : `${(v >= 100 ? v.toFixed(1) : v.toPrecision(3)).padStart(8)} t/s`);
  const x = (v: number | null) => (v === null ? '  n/a' : `${v.toFixed(2)}×`);
  const lines: string[] = [];
  if (header) lines.push(`(c′) generation graph (one ONNX Runtime run per batch) vs JS loop (one run per step), top-k 50, ${r.device} ${r.dtype}, median of ${r.runs}:`);
  if (header) lines.push(`  ${'model'.padEnd(16)} ${'batch×tokens'.padEnd(12)}  decode: ${'graph'.padStart(12)} ${'JS loop'.padStart(12)}  ratio   end to end: ${'graph'.padStart(12)} ${'JS loop'.padStart(12)}  ratio   tokens`);
  for (const row of r.rows) {
    const same = row.tokens_identical === null ? `no graph: ${row.route}` : row.tokens_identical ? 'identical' : 'DIFFER';
    lines.push(
      `  ${path.basename(row.model).padEnd(16)} ${`${row.batch}×${row.tokens}`.padEnd(12)}          ${tps(row.graph_decode_tps)} ${tps(row.js_decode_tps)}  ${x(row.decode_ratio)}               ${tps(row.graph_e2e_tps)} ${tps(row.js_e2e_tps)}  ${x(row.e2e_ratio)}   ${same}`,
    );
  }
  return lines.join('\n');
}

// ---- load cost per route: RSS and load time of a captioner loaded for the graph vs the JS loop ----

export interface LoadCostRow {
  route: 'graph' | 'js';
  /** the route the model actually loaded with (describeRoute) */
  loaded: string;
  load_s: number;
  /** RSS right after the load returned, and after a forced full GC (what the load keeps) */
  rss_mib: number;
  rss_after_gc_mib: number;
  /** JS ArrayBuffer memory after that GC: what JS still holds (the decoded decoder, built graph bytes...) */
  js_buffers_mib: number;
  /** that RSS split (Linux): private memory, and pages of mapped files (weights ONNX Runtime maps from the model files) */
  rss_anon_mib: number | null;
  rss_file_mib: number | null;
  /** the process's peak RSS up to then (load included) */
  peak_rss_mib: number;
  /** RSS after one small generation batch on the loaded route */
  rss_after_generate_mib: number;
}

/** Child: load `dir` with `route`, measure, generate one batch, print one JSON line. */
async function loadCostChild(dir: string, route: 'graph' | 'js'): Promise<void> {
  const mib = (b: number): number => Math.round(b / 2 ** 20);
  const t0 = performance.now();
  const model = await loadCaptionModel(dir, { generation: route });
  const load_s = (performance.now() - t0) / 1000;
  const rss = process.memoryUsage().rss;
  // A full GC, then time for V8 to free the collected buffers' memory (it does so off the main thread).
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the load-cost child with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 200));
  }
  const rssGc = process.memoryUsage().rss;
  const js_buffers_mib = mib(process.memoryUsage().arrayBuffers);
  // Linux splits RSS into private memory and pages mapped from files (ONNX Runtime maps external weights).
  const status = await fs.readFile('/proc/self/status', 'utf8').catch(() => '');
  const kib = (field: string): number | null => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : null;
  };
  const rss_anon_mib = kib('RssAnon');
  const rss_file_mib = kib('RssFile');
  const peak = process.resourceUsage().maxRSS * 1024; // KiB on Linux
  const pixels = await makePixels(model, 2, 'bench-generation');
  await generateTokens(model, pixels, ['m:0', 'm:1'], fixedLengthOptions(4));
  const row: LoadCostRow = {
    route,
    loaded: routeOf(model),
    load_s,
    rss_mib: mib(rss),
    rss_after_gc_mib: mib(rssGc),
    js_buffers_mib,
    rss_anon_mib,
    rss_file_mib,
    peak_rss_mib: mib(peak),
    rss_after_generate_mib: mib(process.memoryUsage().rss),
  };
  await model.release();
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

/** Each route loaded `runs` times, each in a fresh process (RSS is per process), routes alternating. */
export async function benchLoadCost(dir: string, runs = 1): Promise<LoadCostRow[]> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const rows: LoadCostRow[] = [];
  for (let r = 0; r < runs; r++) {
    for (const route of r % 2 === 0 ? (['graph', 'js'] as const) : (['js', 'graph'] as const)) {
      const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, '--expose-gc', __filename, '--load-cost-child', dir, route], { maxBuffer: 1 << 20 });
      rows.push(JSON.parse(stdout.trim().split('\n').pop()!) as LoadCostRow);
    }
  }
  return rows;
}

export function formatLoadCost(dir: string, rows: readonly LoadCostRow[]): string {
  const lines = [`load cost of ${path.basename(dir)} per generation route (fresh process each):`, `  ${'route'.padEnd(6)} ${'load s'.padStart(7)} ${'RSS MiB'.padStart(8)} ${'after GC'.padStart(9)} ${'(anon'.padStart(6)} ${'+ file)'.padStart(7)} ${'JS bufs'.padStart(8)} ${'peak'.padStart(7)} ${'after gen'.padStart(10)}  loaded as`];
  for (const r of rows) {
    lines.push(`  ${r.route.padEnd(6)} ${r.load_s.toFixed(2).padStart(7)} ${String(r.rss_mib).padStart(8)} ${String(r.rss_after_gc_mib).padStart(9)} ${String(r.rss_anon_mib ?? '?').padStart(6)} ${String(r.rss_file_mib ?? '?').padStart(7)} ${String(r.js_buffers_mib).padStart(8)} ${String(r.peak_rss_mib).padStart(7)} ${String(r.rss_after_generate_mib).padStart(10)}  ${r.loaded}`);
  }
  return lines.join('\n');
}

//   npx tsx bench/generation-graph.ts --load-cost [DIR] [--runs N]     (default DIR: the real-size ViT-GPT2)
if (require.main === module && /generation-graph\.[jt]s$/.test(process.argv[1] ?? '')) {
  const argv = process.argv.slice(2);
  const main = async (): Promise<void> => {
    if (argv[0] === '--load-cost-child') return loadCostChild(argv[1]!, argv[2] as 'graph' | 'js');
    if (argv[0] !== '--load-cost') throw new Error('usage: generation-graph.ts --load-cost [DIR] [--runs N]');
    const { ensureRealSizeVitGpt2 } = await import('./real-size-vit-gpt2');
    const dir = argv[1] && !argv[1].startsWith('--') ? argv[1] : await ensureRealSizeVitGpt2(path.join(__dirname, '..', '.cache', 'models'));
    const at = argv.indexOf('--runs');
    process.stdout.write(formatLoadCost(dir, await benchLoadCost(dir, at > 0 ? Number(argv[at + 1]) : 1)) + '\n');
  };
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
