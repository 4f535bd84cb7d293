/**
 * Benchmarks (d) and (e): the annotate stage against its models, and the stage thread's own work.
 *
 *  (d) images/s of `annotateShard` on a real WebDataset shard (tar read, decode + preprocess, stacking, float16,
 *      tokenising in the prep threads; the models; parquet chunks + commit) against bare `session.run` of the same
 *      models on tensors made before the clock starts, the same work per image as the stage runs it:
 *        scores    CLIP image tower + raw caption + synthetic caption (captions committed before, as a mix run
 *                  over an earlier `synthetic` run finds them); bare: vision_model / text_model runs on ready feeds;
 *        captions  the captioner too (`--d-work all`): bare: captioner.caption on ready pixel tensors (its own
 *                  generation, in its graph where the family has one), then CLIP on ready feeds of its captions.
 *      Goal ≥ 0.8× on CPU with real-size models (bench/real-size-clip.ts, bench/real-size-vit-gpt2.ts).
 *  (e) the stage thread's busy time per image (event-loop utilisation over the attempt, annotate-stage.ts counts),
 *      split into ONNX Runtime (session.run blocks the calling thread) and the rest, the JS the prep threads exist
 *      to keep small — goal ≤ 0.3 ms per image — and the stage's images/s for each prep pool size from 0 (all on
 *      the stage's thread) to the machine's cores.
 * Rounds interleave the sides (a busy machine's drift lands on all of them); one warm-up round; medians.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../lib/config/load';
import { loadCaptioner } from '../lib/models/captioner';
import { loadClip } from '../lib/models/clip';
import type { Captioner, Device, PixelTensor, RuntimeOptions } from '../lib/models/types';
import { annotateShard, sampleSeed } from '../lib/pipeline/annotate-stage';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import { planRun } from '../lib/pipeline/plan-stage';
import { createPrepPool, defaultPrepThreads, type PrepPool } from '../lib/pipeline/prep-pool';
import { annotationStore } from '../lib/run/plan';
import { CAPTIONS_TABLE } from '../lib/run/tables';
import { fixedLengthOptions } from './caption-tokens';
import { BareClip, makeShard } from './clip-scoring';
import { median, seconds } from './timing';

export type StageWork = 'scores' | 'captions';

export interface AnnotateStageOptions {
  clipDir: string;
  captionerDir: string;
  images?: number;
  /** CLIP batch (score.batchSize) */
  batchSize?: number;
  /** captioner batch (caption.batchSize) and tokens per caption (min = max length) for `captions` */
  captionBatch?: number;
  tokens?: number;
  /** images of the `captions` work (generation is slow at real size on a CPU) */
  captionImages?: number;
  work?: StageWork[];
  /** prep pool sizes of the scaling table (default 0, 1, 2, 4, ... and the cores) */
  pools?: number[];
  runs?: number;
  device?: Device;
  dtype?: 'fp32' | 'fp16';
  threads?: number;
}

export interface StageSide {
  prep_threads: number;
  images_per_s: number;
  /** the stage thread's busy ms per image: all of it, inside session.run, and the rest (JS) */
  busy_ms: number;
  onnx_ms: number;
  js_ms: number;
  /** the same JS share in that thread's CPU time (Linux), which a crowded machine does not inflate; null elsewhere */
  js_cpu_ms: number | null;
}

export interface WorkResult {
  work: StageWork;
  images: number;
  bare_ips: number;
  stage: StageSide;
  /** stage / bare images per second */
  ratio: number;
}

export interface AnnotateStageResult {
  clip: string;
  captioner: string;
  device: string;
  dtype: string;
  batch_size: number;
  caption_batch: number;
  tokens: number;
  runs: number;
  cores: number;
  libuv_threads: number;
  default_prep_threads: number;
  work: WorkResult[];
  /** (e): the scores work at every prep pool size */
  scaling: StageSide[];
}

type ShardData = Awaited<ReturnType<typeof makeShard>>;

export async function benchAnnotateStage(o: AnnotateStageOptions): Promise<AnnotateStageResult> {
  const n = o.images ?? 256;
  const batch = o.batchSize ?? 64;
  const captionBatch = o.captionBatch ?? 16;
  const tokens = o.tokens ?? 16;
  const runs = o.runs ?? 3;
  const work = o.work ?? ['scores', 'captions'];
  const cores = os.availableParallelism();
  const pools = o.pools ?? [...new Set([0, ...Array.from({ length: Math.floor(Math.log2(cores)) + 1 }, (_, i) => 2 ** i), cores])];
  const runtime: RuntimeOptions = { device: o.device, dtype: o.dtype, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) };
  const root = await mkdtemp(path.join(os.tmpdir(), 'bench-annotate-'));
  const clip = await loadClip(o.clipDir, { ...runtime, maxBatchSize: batch });
  const captioner = work.includes('captions') ? await loadCaptioner(o.captionerDir, { ...runtime, maxBatchSize: captionBatch }) : null;
  const bare = await BareClip.open(o.clipDir, runtime);
  const poolOf = new Map<number, PrepPool>();
  const pool = (threads: number) => poolOf.get(threads) ?? poolOf.set(threads, createPrepPool(threads)).get(threads)!;
  const stageThreads = defaultPrepThreads();
  try {
    const shards = new Map<number, ShardData>();
    const shardOf = async (images: number) => shards.get(images) ?? shards.set(images, await makeShard(path.join(root, `s${images}`), images, 5)).get(images)!;

    let round = 0;
    /** One stage run on a fresh annotations folder: the scores work finds its captions committed. */
    const stageRun = async (w: StageWork, shard: ShardData, prep: PrepPool): Promise<{ s: number; summary: StageSummary }> => {
      const name = `bench-${round++}`;
      const images = shard.samples.length;
      const input = shard.input;
      const config = parseConfig(
        {
          run: { name, seed: 1 },
          input: { uri: input },
          output: { uri: path.join(root, 'out') },
          strategy: { preset: 'raw30-synthetic70' },
          annotations: { uri: path.join(root, `annotations-${name}`) },
          models: { captioner: { path: o.captionerDir }, clip: { path: o.clipDir } },
          caption: { batchSize: captionBatch, minLength: tokens, maxLength: tokens, topK: 50, temperature: 0.75 },
          score: { batchSize: batch },
        },
        'bench',
      );
      const plan = await planRun(config);
      if (w === 'scores') {
        const file = annotationStore(plan).file('captions', plan.shards[0]!);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, CAPTIONS_TABLE.encode(shard.samples.map((x) => ({ key: x.key, synthetic_caption: x.synthetic }))));
      }
      let summary: StageSummary | undefined;
      const s = await seconds(async () => {
        summary = await annotateShard(plan, 0, async () => ({ captioner, clip, centroids: null }), undefined, prep);
      });
      if (summary!.samples - summary!.failed !== images) throw new Error(`bench stage annotated ${summary!.samples - summary!.failed} of ${images} samples`);
      return { s, summary: summary! };
    };
    const side = (threads: number, images: number, s: number[], sums: StageSummary[]): StageSide => {
      const per = (k: 'mainThreadMs' | 'onnxRunMs') => median(sums.map((x) => x.counts![k]!)) / images;
      const busy = per('mainThreadMs');
      const onnx = per('onnxRunMs');
      const cpu = sums.every((x) => x.counts!.mainThreadCpuMs !== undefined) ? median(sums.map((x) => x.counts!.mainThreadCpuMs! - x.counts!.onnxRunCpuMs!)) / images : null;
      return { prep_threads: threads, images_per_s: images / median(s), busy_ms: busy, onnx_ms: onnx, js_ms: Math.max(0, busy - onnx), js_cpu_ms: cpu };
    };

    const results: WorkResult[] = [];
    let scaling: StageSide[] = [];
    for (const w of work) {
      // the slower work may take fewer images (generation at real size on a CPU)
      const images = w === 'captions' ? Math.min(n, o.captionImages ?? n) : n;
      const shard = await shardOf(images);
      const pixels = {
        clip: await Promise.all(shard.samples.map((x) => clip.preprocess(x.image))),
        captioner: captioner && w === 'captions' ? await Promise.all(shard.samples.map((x) => captioner.preprocess(x.image))) : [],
      };
      // Ready tensors: the bare side's inputs, all made before the clock starts.
      const seeds = shard.samples.map((x) => sampleSeed(1, { uid: x.uid!, key: x.key }));
      const synthetic = w === 'captions' ? await captionAll(captioner!, pixels.captioner, seeds, captionBatch, tokens) : shard.samples.map((x) => x.synthetic);
      const ready = bare.readyFeeds(shard.samples.map((x, i) => ({ pixels: pixels.clip[i]!, raw: x.raw, synthetic: synthetic[i]! })), batch);
      const runBare = async (): Promise<void> => {
        if (w === 'captions') await captionAll(captioner!, pixels.captioner, seeds, captionBatch, tokens);
        await bare.runReady(ready);
      };

      const sizes = w === 'scores' ? [...new Set([stageThreads, ...pools])] : [stageThreads];
      const times = new Map<string, number[]>([['bare', []], ...sizes.map((t): [string, number[]] => [`p${t}`, []])]);
      const sums = new Map<number, StageSummary[]>(sizes.map((t) => [t, []]));
      const sidesOrder = ['bare', ...sizes.map((t) => `p${t}`)];
      for (let r = -1; r < runs; r++) {
        const order = sidesOrder.map((_, i, a) => a[(i + Math.max(r, 0)) % a.length]!);
        for (const sideName of order) {
          if (sideName === 'bare') {
            const t = await seconds(runBare);
            if (r >= 0) times.get('bare')!.push(t);
          } else {
            const threads = Number(sideName.slice(1));
            const { s, summary } = await stageRun(w, shard, pool(threads));
            if (r >= 0) {
              times.get(sideName)!.push(s);
              sums.get(threads)!.push(summary);
            }
          }
        }
      }
      const bareIps = images / median(times.get('bare')!);
      const stage = side(stageThreads, images, times.get(`p${stageThreads}`)!, sums.get(stageThreads)!);
      results.push({ work: w, images, bare_ips: bareIps, stage, ratio: stage.images_per_s / bareIps });
      if (w === 'scores') scaling = pools.map((t) => side(t, images, times.get(`p${t}`)!, sums.get(t)!));
    }
    return {
      clip: path.resolve(o.clipDir),
      captioner: path.resolve(o.captionerDir),
      device: o.device ?? 'cpu',
      dtype: o.dtype ?? 'fp32',
      batch_size: batch,
      caption_batch: captionBatch,
      tokens,
      runs,
      cores,
      libuv_threads: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      default_prep_threads: stageThreads,
      work: results,
      scaling,
    };
  } finally {
    await Promise.all([clip.release(), captioner?.release(), bare.release(), ...[...poolOf.values()].map((p) => p.close())]);
    await rm(root, { recursive: true, force: true });
  }
}

/** The captioner on ready pixel tensors, in the stage's caption batches. */
async function captionAll(captioner: Captioner, pixels: readonly PixelTensor[], seeds: readonly string[], batch: number, tokens: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < pixels.length; i += batch) out.push(...(await captioner.caption(pixels.slice(i, i + batch), seeds.slice(i, i + batch), fixedLengthOptions(tokens))));
  return out;
}

export function formatAnnotateStage(r: AnnotateStageResult): string {
  const ips = (v: number) => `${(v >= 100 ? v.toFixed(1) : v.toPrecision(3)).padStart(8)} images/s`;
  const ms = (v: number) => (v >= 10 ? v.toFixed(1) : v.toPrecision(2)).padStart(7);
  const name = `${path.basename(r.clip)}${r.work.some((w) => w.work === 'captions') ? ` + ${path.basename(r.captioner)}` : ''}`;
  const lines = [
    `(d) annotate stage vs bare session.run on ready tensors, CLIP batch ${r.batch_size}, ${r.device} ${r.dtype}, median of ${r.runs} (${name}; ${r.cores} cores, prep threads ${r.default_prep_threads}):`,
  ];
  for (const w of r.work) {
    const what = w.work === 'scores' ? 'scores: image + raw + synthetic caption' : `captions (batch ${r.caption_batch} × ${r.tokens} tokens) + scores`;
    lines.push(`  ${what}, ${w.images} images`);
    lines.push(`    bare session.run (ref)   ${ips(w.bare_ips)}`);
    lines.push(`    annotate stage (ours)    ${ips(w.stage.images_per_s)}   ${w.ratio.toFixed(2)}× bare (goal ≥ 0.8× on CPU, real size)`);
  }
  const rows = (sides: StageSide[]) =>
    sides.map((s) => `  ${String(s.prep_threads).padStart(12)}  ${ips(s.images_per_s)}  ${ms(s.busy_ms)}       ${ms(s.onnx_ms)}  ${ms(s.js_ms)}        ${s.js_cpu_ms === null ? '    n/a' : ms(s.js_cpu_ms)}`);
  lines.push(`(e) the stage thread's busy time per image (event-loop utilisation; session.run blocks it)${r.scaling.length ? ', scores work, by prep threads' : ''}:`);
  lines.push(`  prep threads        images/s   busy ms  of which ORT    JS ms  (goal ≤ 0.3)  JS CPU ms`);
  lines.push(...rows(r.scaling));
  for (const w of r.work.filter((x) => x.work === 'captions')) lines.push(...rows([w.stage]).map((l) => `${l}   (captions + scores)`));
  return lines.join('\n');
}

