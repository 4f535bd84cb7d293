/** `npm run bench`: each benchmark prints throughput beside a reference measured in the same run, as ratios. */
import { benchPreprocess, formatPreprocess } from './preprocess';
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { benchCaptionTokens, type CaptionTokensResult } from './caption-tokens';
import { benchClipScoring, type ClipScoringResult } from './clip-scoring';
import { benchDecodeOnce, formatDecodeOnce, type DecodeOnceResult } from './decode-once';
import { benchGenerationGraph, formatGenerationGraph, type GenerationGraphResult } from './generation-graph';
import { ensureRealSizeVitGpt2 } from './real-size-vit-gpt2';
import { benchAnnotateStage, formatAnnotateStage, type AnnotateStageResult, type StageWork } from './annotate-stage';

async function main(): Promise<void> {
  process.stdout.write(formatPreprocess(await benchPreprocess()) + '\n');
}

// (b) CLIP scoring overhead and (c) caption tokens/s; tiny models by default, real-size folders and a GPU by flag.
const TINY = path.join(__dirname, '..', '.cache', 'models');

interface BenchFlags {
  only: string;
  clip: string;
  captioner: string;
  device: 'cpu' | `cuda:${number}`;
  dtype: 'fp32' | 'fp16';
  images: number;
  batch: number;
  tokens: number;
  captionBatch: number;
  runs: number;
  threads?: number;
  nocache: boolean;
  genModels: string;
  genRealBatch: number;
  genRealTokens: number;
  stageWork: string;
  prepPools?: string;
  captionImages: number;
  json?: string;
}

function flags(): BenchFlags {
  const int = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${v}`);
    return n;
  };
  return new Command('bench')
    .description('benchmarks, each as ratios against a reference measured in the same run (bench/README.md)')
    .option('--only <list>', 'comma list of a (preprocessing), b (CLIP scoring), c (caption tokens/s), c2 (c′: generation graph vs JS loop), d (annotate stage vs bare models), e (stage thread ms per image, measured with d), f (decode once for two models)', 'a,b,c,c2,d,e,f')
    .option('--clip <dir>', 'CLIP model folder for (b), (d), (f)', path.join(TINY, 'tiny-clip'))
    .option('--captioner <dir>', 'captioner folder for (c), (d), (f)', path.join(TINY, 'tiny-vit-gpt2'))
    .addOption(new Option('--device <device>', 'cpu or cuda:N').default('cpu').argParser((v) => {
      if (!/^(cpu|cuda:\d+)$/.test(v)) throw new Error(`--device must be cpu or cuda:N, got ${v}`);
      return v;
    }))
    .addOption(new Option('--dtype <dtype>', 'ONNX variant').choices(['fp32', 'fp16']).default('fp32'))
    .option('--images <n>', '(b), (d) images in the shard', int, 256)
    .option('--batch <n>', '(b), (d) score batch size', int, 64)
    .option('--stage-work <list>', '(d) the stage\'s work: scores (CLIP on committed captions), captions (captioner + CLIP)', 'scores,captions')
    .option('--caption-images <n>', '(d) images of the captions work', int, 64)
    .option('--prep-pools <list>', '(e) prep thread counts to time the stage with (default 0, 1, 2, 4, ... up to the cores)')
    .option('--tokens <n>', '(c) tokens per caption (min = max length)', int, 16)
    .option('--caption-batch <n>', '(c) the big batch, against batch 1; (d) caption batch', int, 16)
    .option('--runs <n>', 'timed rounds after a warm-up (medians)', int, 5)
    .option('--threads <n>', 'ORT intra-op threads on every side (default: ORT\'s)', int)
    .option('--no-nocache', '(c) skip the no-cache reference (slow at real size on a CPU)')
    .option('--gen-models <list>', '(c′) captioner folders (names under .cache/models or paths); `real` = a real-size random-weight ViT-GPT2 generated on first use', 'tiny-vit-gpt2,tiny-florence2,tiny-blip2,real')
    .option('--gen-real-batch <n>', '(c′) batch for `real` (the other folders use --caption-batch)', int, 4)
    .option('--gen-real-tokens <n>', '(c′) tokens per caption for `real` (the others use --tokens)', int, 8)
    .option('--json <file>', 'also write the results as JSON')
    .parse()
    .opts<BenchFlags>();
}

function printClip(r: ClipScoringResult): void {
  const ips = (v: number) => `${(v >= 100 ? v.toFixed(1) : v.toPrecision(3)).padStart(8)} images/s`;
  const pct = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(1)} %`;
  process.stdout.write(
    [
      `CLIP scoring, ${r.images} images (image + raw + synthetic caption each), batch ${r.batch_size}, ${r.device} ${r.dtype}, median of ${r.runs} (${path.basename(r.model)}):`,
      `  bare session.run (ref)   ${ips(r.bare_ips)}`,
      `  scorer API (ours)        ${ips(r.scorer_ips)}   overhead ${pct(r.scorer_overhead_pct)} (goal ≤ 10 %)`,
      `  score stage (ours)       ${ips(r.stage_ips)}   overhead ${pct(r.stage_overhead_pct)} (tar + decode + preprocess + parquet)`,
    ].join('\n') + '\n',
  );
}

function printCaption(r: CaptionTokensResult): void {
  const tps = (v: number | null) => (v === null ? '     n/a' : `${(v >= 100 ? v.toFixed(1) : v.toPrecision(3)).padStart(8)} tokens/s`);
  const x = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}×`);
  process.stdout.write(
    [
      `caption generation, ${r.batch} images × ${r.tokens} tokens, top-k 50, ${r.device} ${r.dtype}, median of ${r.runs} (${path.basename(r.model)}):`,
      `  KV cache, batch ${String(r.batch).padEnd(3)} (ours)  ${tps(r.kv_batch_tps)}   vs no cache ${x(r.kv_over_nocache_batch)}   vs batch 1 ${x(r.batch_over_b1_kv)}`,
      `  KV cache, batch 1   (ours)  ${tps(r.kv_b1_tps)}   vs no cache ${x(r.kv_over_nocache_b1)}`,
      `  no cache, batch ${String(r.batch).padEnd(3)} (ref)   ${tps(r.nocache_batch_tps)}   vs batch 1 ${x(r.batch_over_b1_nocache)}`,
      `  no cache, batch 1   (ref)   ${tps(r.nocache_b1_tps)}`,
      ...(r.tokens_agree === null ? [] : [`  same tokens with and without the cache: ${(r.tokens_agree * 100).toFixed(0)} % of rows (warm-up)`]),
    ].join('\n') + '\n',
  );
}

async function run(): Promise<void> {
  const f = flags();
  const only = new Set(f.only.split(',').map((s) => s.trim()));
  if (only.has('a')) await main(); // (a), the preprocessing block above
  const common = { device: f.device, dtype: f.dtype, runs: f.runs, threads: f.threads };
  const out: { b?: ClipScoringResult; c?: CaptionTokensResult; c2?: GenerationGraphResult[]; d?: AnnotateStageResult; f?: DecodeOnceResult; machine: Record<string, unknown> } = {
    machine: { cpus: os.availableParallelism(), cpu_model: os.cpus()[0]?.model, node: process.version, argv: process.argv.slice(2) },
  };
  if (only.has('b')) printClip((out.b = await benchClipScoring({ dir: f.clip, images: f.images, batchSize: f.batch, ...common })));
  if (only.has('c')) printCaption((out.c = await benchCaptionTokens({ dir: f.captioner, batch: f.captionBatch, tokens: f.tokens, noCache: !f.nocache, ...common })));
  if (only.has('c2')) {
    // (c′) the generated real-size model runs at its own (smaller) batch; on a CPU its encoder would dominate
    // an end-to-end figure, so only the decode loops are timed there.
    out.c2 = [];
    for (const name of f.genModels.split(',').map((s) => s.trim())) {
      const real = name === 'real';
      const dir = real ? await ensureRealSizeVitGpt2(TINY) : path.isAbsolute(name) || name.includes('/') ? name : path.join(TINY, name);
      const sizes = real ? { batch: f.genRealBatch, tokens: f.genRealTokens } : { batch: f.captionBatch, tokens: f.tokens };
      const r = await benchGenerationGraph({ dirs: [dir], ...sizes, ...common, endToEnd: !(real && f.device === 'cpu') });
      out.c2.push(r);
      process.stdout.write(formatGenerationGraph(r, out.c2.length === 1) + '\n');
    }
  }
  if (only.has('d') || only.has('e')) {
    const pools = f.prepPools?.split(',').map((v) => Number(v.trim()));
    const stage = { clipDir: f.clip, captionerDir: f.captioner, images: f.images, batchSize: f.batch, captionBatch: f.captionBatch, tokens: f.tokens, captionImages: f.captionImages, ...common };
    const work = f.stageWork.split(',').map((w) => w.trim() as StageWork);
    process.stdout.write(formatAnnotateStage((out.d = await benchAnnotateStage({ ...stage, work, ...(pools ? { pools } : {}) }))) + '\n');
  }
  if (only.has('f')) process.stdout.write(formatDecodeOnce((out.f = await benchDecodeOnce({ clipDir: f.clip, captionerDir: f.captioner, runs: f.runs }))) + '\n');
  if (f.json) writeFileSync(f.json, JSON.stringify(out, null, 2) + '\n');
}

run().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
