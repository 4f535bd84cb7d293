/**
 * Benchmark (b): what the CLIP scoring stage costs over the bare model, on one shard's worth of samples. Three
 * timings of the same work per image (one image embedding, the raw and the synthetic caption's text embeddings,
 * their two cosines), same batch size, same session options, interleaved round by round:
 *
 *  (i)   bare: `session.run` of vision_model / text_model on ready tensors (pixel batches stacked and converted,
 *        texts tokenised, all before the clock starts) — the reference;
 *  (ii)  scorer: ClipScorer.embedImages / embedTexts + cosine on the same PixelTensors and strings (our stacking,
 *        dtype adaptation, tokenisation, L2 normalisation);
 *  (iii) stage: the annotate stage scoring committed captions on a real WebDataset shard of the same images (tar
 *        read, decode + preprocess with one batch of look-ahead, embed, cosine, annotation parquets + commit).
 *
 * Overhead = t_ours / t_bare − 1; the goal is ≤ 10 % for the scorer.
 */
import { storageFor } from '../lib/storage';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { parseConfig } from '../lib/config/load';
import { loadClip } from '../lib/models/clip';
import { ModelFolder, onnxFileName } from '../lib/models/model-folder';
import { createSession, floatInputType, floatTensor, int64Tensor, type Session } from '../lib/models/session';
import { cosine } from '../lib/models/similarity';
import { TextTokenizer } from '../lib/models/tokenizer';
import type { Device, PixelTensor, RuntimeOptions } from '../lib/models/types';
import { RunLayout } from '../lib/run/layout';
import { planRun } from '../lib/pipeline/plan-stage';
import { rawCaptionOf, readImg2DatasetShard } from '../lib/formats/img2dataset';
import { annotateShard } from '../lib/pipeline/annotate-stage';
import { annotationStore } from '../lib/run/plan';
import { CAPTIONS_TABLE, type CaptionRow } from '../lib/run/tables';
import { generateSampleData } from '../lib/sampledata';
import { median, seconds } from './timing';

export interface ClipScoringOptions {
  /** CLIP model folder (split export). */
  dir: string;
  images?: number;
  batchSize?: number;
  /** Timed rounds (after one warm-up round); medians are reported. */
  runs?: number;
  device?: Device;
  dtype?: 'fp32' | 'fp16';
  /** ORT intra-op threads on every side (default: ORT's, one per physical core). */
  threads?: number;
}

export interface ClipScoringResult {
  model: string;
  device: string;
  dtype: string;
  images: number;
  batch_size: number;
  runs: number;
  threads: number | null;
  /** median seconds for all images */
  bare_s: number;
  scorer_s: number;
  stage_s: number;
  bare_ips: number;
  scorer_ips: number;
  stage_ips: number;
  /** (t_ours / t_bare − 1) × 100 */
  scorer_overhead_pct: number;
  stage_overhead_pct: number;
}

interface Sample {
  key: string;
  uid: string | null;
  raw: string;
  synthetic: string;
  pixels: PixelTensor;
}

export function batches<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

type Feeds = Record<string, ort.Tensor>;
interface ReadyBatch {
  image: Feeds;
  raw: Feeds;
  synthetic: Feeds;
}

/** The bare reference: the same ONNX files in sessions of our own, fed tensors built before timing. */
export class BareClip {
  private constructor(
    private readonly vision: Session,
    private readonly text: Session,
    private readonly tokenizer: TextTokenizer,
    private readonly textOpts: { maxLength: number; padTo: number | undefined },
  ) {}

  static async open(dir: string, opts: RuntimeOptions): Promise<BareClip> {
    const folder = await ModelFolder.open(dir, opts.dtype);
    const config = JSON.parse(await readFile(folder.display('config.json'), 'utf8')) as { model_type: string; text_config?: { max_position_embeddings?: number } };
    const maxLength = config.text_config?.max_position_embeddings ?? 77;
    const vision = await createSession(folder.display(onnxFileName('vision_model', folder.dtype)), 'bare vision_model', opts);
    const text = await createSession(folder.display(onnxFileName('text_model', folder.dtype)), 'bare text_model', opts);
    // Same tokenisation as the scorer (clip.ts): SigLIP pads to the full context, CLIP to the batch's longest.
    return new BareClip(vision, text, await TextTokenizer.load(folder), { maxLength, padTo: config.model_type === 'siglip' ? maxLength : undefined });
  }

  imageFeeds(batch: readonly PixelTensor[]): Record<string, ort.Tensor> {
    const [c, h, w] = batch[0]!.dims;
    const data = new Float32Array(batch.length * c * h * w);
    batch.forEach((p, i) => data.set(p.data, i * c * h * w));
    return { pixel_values: floatTensor(floatInputType(this.vision, 'pixel_values'), data, [batch.length, c, h, w]) };
  }

  textFeeds(texts: readonly string[]): Record<string, ort.Tensor> {
    const enc = this.tokenizer.encodeBatch(texts, this.textOpts);
    const feeds: Record<string, ort.Tensor> = { input_ids: int64Tensor(enc.ids, [enc.batch, enc.length]) };
    if (this.text.inputNames.includes('attention_mask')) feeds['attention_mask'] = int64Tensor(enc.attentionMask, [enc.batch, enc.length]);
    return feeds;
  }

  /** Every batch's feeds (image, raw caption, synthetic caption), built now, before any timing. */
  readyFeeds(items: readonly { pixels: PixelTensor; raw: string; synthetic: string }[], batchSize: number): ReadyBatch[] {
    return batches(items, batchSize).map((g) => ({
      image: this.imageFeeds(g.map((s) => s.pixels)),
      raw: this.textFeeds(g.map((s) => s.raw)),
      synthetic: this.textFeeds(g.map((s) => s.synthetic)),
    }));
  }

  /** The bare model over ready batches: a batch's three runs in flight together, as in the stage. */
  async runReady(ready: readonly ReadyBatch[]): Promise<void> {
    for (const r of ready) await Promise.all([this.vision.run(r.image), this.text.run(r.raw), this.text.run(r.synthetic)]);
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.text.release()]);
  }
}

export interface GeneratedSample {
  key: string;
  uid: string | null;
  raw: string;
  /** each image's exact scene description (caption-length text), standing in for a synthetic caption */
  synthetic: string;
  image: Buffer;
}

/**
 * One img2dataset shard (folder `<root>/in`) of `n` generated samples (sample-data's JPEGs and raw captions, from
 * `seed`), its samples read back with their scene descriptions.
 */
export async function makeShard(root: string, n: number, seed: number): Promise<{ input: string; samples: GeneratedSample[] }> {
  const input = path.join(root, 'in');
  const data = await generateSampleData({ out: input, shards: 1, perShard: n, seed });
  const shard = data.shards[0]!;
  const samples: GeneratedSample[] = [];
  for await (const s of readImg2DatasetShard(storageFor(shard.tar), shard.tar)) {
    const truth = s.uid ? data.truth[s.uid] : undefined;
    if (!s.image || !truth) throw new Error(`bench shard: sample ${s.key} has no image or ground truth`);
    samples.push({ key: s.key, uid: s.uid, raw: rawCaptionOf(s), synthetic: truth.description, image: s.image });
  }
  return { input, samples };
}

export async function benchClipScoring(o: ClipScoringOptions): Promise<ClipScoringResult> {
  const n = o.images ?? 256;
  const batchSize = o.batchSize ?? 64;
  const runs = o.runs ?? 5;
  const runtime: RuntimeOptions = { device: o.device, dtype: o.dtype, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) };
  const root = await mkdtemp(path.join(os.tmpdir(), 'bench-clip-'));
  const clip = await loadClip(o.dir, { ...runtime, maxBatchSize: batchSize });
  const bare = await BareClip.open(o.dir, runtime);
  try {
    const shard = await makeShard(root, n, 3);
    const input = shard.input;
    const samples: Sample[] = [];
    for (const s of shard.samples) samples.push({ key: s.key, uid: s.uid, raw: s.raw, synthetic: s.synthetic, pixels: await clip.preprocess(s.image) });
    const groups = batches(samples, batchSize);

    // (i) everything the model needs, built before timing; the three runs of a batch are in flight together, as
    // in the stage, so both sides may overlap them.
    const ready = bare.readyFeeds(samples, batchSize);
    const runBare = (): Promise<void> => bare.runReady(ready);

    // (ii) the scorer API on the same PixelTensors and strings.
    let sink = 0;
    const runScorer = async (): Promise<void> => {
      for (const g of groups) {
        const [img, raw, syn] = await Promise.all([clip.embedImages(g.map((s) => s.pixels)), clip.embedTexts(g.map((s) => s.raw)), clip.embedTexts(g.map((s) => s.synthetic))]);
        for (let i = 0; i < g.length; i++) sink += cosine(img[i]!, raw[i]!) + cosine(img[i]!, syn[i]!);
      }
    };

    // (iii) the whole stage; each round scores a fresh run (a committed shard would be skipped).
    const captions: CaptionRow[] = samples.map((s) => ({
      key: s.key,
      synthetic_caption: s.synthetic,
    }));
    const captionParquet = CAPTIONS_TABLE.encode(captions);
    let round = 0;
    const prepareStage = async (): Promise<() => Promise<void>> => {
      const config = parseConfig(
        {
          run: { name: `bench-${round++}` },
          input: { uri: input },
          output: { uri: path.join(root, 'out') },
          // Reads captions, raw and synthetic scores; the captions are given, so the stage scores both.
          strategy: { preset: 'raw30-synthetic70-filtered' },
          annotations: { uri: path.join(root, `annotations-${round}`) },
          models: { captioner: { path: o.dir }, clip: { path: o.dir } },
          score: { batchSize },
        },
        'bench',
      );
      const plan = await planRun(config);
      const file = annotationStore(plan).file('captions', plan.shards[0]!);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, captionParquet);
      return async () => {
        const s = await annotateShard(plan, 0, async () => ({ captioner: null, clip, centroids: null }));
        if (s.samples - s.failed !== n) throw new Error(`bench score stage scored ${s.samples - s.failed} of ${n} samples`);
      };
    };

    const times = { bare: [] as number[], scorer: [] as number[], stage: [] as number[] };
    for (let r = -1; r < runs; r++) {
      // Rotating the order spreads a shared machine's drift over all three sides.
      const order = (['bare', 'scorer', 'stage'] as const).map((_, i, a) => a[(i + Math.max(r, 0)) % 3]!);
      for (const side of order) {
        const stage = side === 'stage' ? await prepareStage() : undefined;
        const t = await seconds(side === 'bare' ? runBare : side === 'scorer' ? runScorer : stage!);
        if (r >= 0) times[side].push(t); // round -1 is the warm-up
      }
    }
    if (!Number.isFinite(sink)) throw new Error('bench: non-finite cosine');

    const bare_s = median(times.bare);
    const scorer_s = median(times.scorer);
    const stage_s = median(times.stage);
    return {
      model: path.resolve(o.dir),
      device: o.device ?? 'cpu',
      dtype: o.dtype ?? 'fp32',
      images: n,
      batch_size: batchSize,
      runs,
      threads: o.threads ?? null,
      bare_s,
      scorer_s,
      stage_s,
      bare_ips: n / bare_s,
      scorer_ips: n / scorer_s,
      stage_ips: n / stage_s,
      scorer_overhead_pct: (scorer_s / bare_s - 1) * 100,
      stage_overhead_pct: (stage_s / bare_s - 1) * 100,
    };
  } finally {
    await Promise.all([clip.release(), bare.release()]);
    await rm(root, { recursive: true, force: true });
  }
}
