/**
 * Benchmark (c): generated tokens/s of our captioning loop (generation.ts: KV cache, batched rows) against
 *  - no cache: a reference loop written here that feeds the whole sequence every step through the same merged
 *    decoder with use_cache_branch = false and an empty past (what a runtime without cache support does), and
 *  - batch 1: the same images captioned one at a time.
 * Same images, seeds and sampling settings on every side; minLength = maxLength so every row generates exactly
 * the same number of tokens. The encoder runs inside every timing (once per batch), as it does in production.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { PAPER_CAPTION_OPTIONS } from '../lib/config/schema';
import { loadCaptionModel } from '../lib/models/captioner';
import type { CaptionModel } from '../lib/models/caption-model';
import { generateTokens } from '../lib/models/generation';
import { ModelFolder, onnxFileName, staticDim } from '../lib/models/model-folder';
import { stackPixels } from '../lib/models/preprocess';
import { SeededRng } from '../lib/models/rng';
import { nextToken } from '../lib/models/sampling';
import { boolTensor, createSession, floatInputType, floatTensor, int64Tensor, readFloats, selectRows, type Session } from '../lib/models/session';
import type { CaptionOptions, Device, PixelTensor, RuntimeOptions } from '../lib/models/types';
import { randomScene, Rng, sceneSvg } from '../lib/sampledata';
import { median, seconds } from './timing';

/** What every generation benchmark takes: batch, caption length, rounds and the runtime. */
export interface GenerationBenchOptions {
  /** Images per batch (default 16). */
  batch?: number;
  /** Tokens generated per caption (minLength = maxLength). */
  tokens?: number;
  /** Timed rounds after a warm-up; medians are reported. */
  runs?: number;
  device?: Device;
  dtype?: 'fp32' | 'fp16';
  threads?: number;
}

export interface CaptionTokensOptions extends GenerationBenchOptions {
  /** Captioner folder (vision-encoder-decoder, Optimum layout). */
  dir: string;
  /** Skip the no-cache sides (slow at real size on a CPU). */
  noCache?: boolean;
}

export interface CaptionTokensResult {
  model: string;
  device: string;
  dtype: string;
  batch: number;
  tokens: number;
  runs: number;
  threads: number | null;
  /** generated tokens per second (all rows), median over runs */
  kv_batch_tps: number;
  kv_b1_tps: number;
  nocache_batch_tps: number | null;
  nocache_b1_tps: number | null;
  /** ratios of tokens/s */
  kv_over_nocache_batch: number | null;
  kv_over_nocache_b1: number | null;
  batch_over_b1_kv: number;
  batch_over_b1_nocache: number | null;
  /** share of rows whose warm-up tokens are identical with and without the cache */
  tokens_agree: number | null;
}

/**
 * The no-cache reference: its own sessions of the same encoder and merged decoder, the same sampling
 * (sampling.ts nextToken, per-row seeded RNG), the whole prefix fed at every step.
 */
class NoCacheCaptioner {
  private constructor(
    private readonly encoder: Session,
    private readonly decoder: Session,
    private readonly layers: number,
    private readonly heads: number,
    private readonly headDim: number,
    private readonly model: CaptionModel,
    private readonly size: [number, number],
  ) {}

  static async open(dir: string, model: CaptionModel, opts: RuntimeOptions): Promise<NoCacheCaptioner> {
    const folder = await ModelFolder.open(dir, opts.dtype);
    const encoder = await createSession(folder.display(onnxFileName('encoder_model', folder.dtype)), 'bare encoder_model', opts);
    const decoder = await createSession(folder.display(onnxFileName('decoder_model_merged', folder.dtype)), 'bare decoder_model_merged', opts);
    const config = JSON.parse(await readFile(folder.display('config.json'), 'utf8')) as { decoder: Record<string, number | undefined> };
    const layers = decoder.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
    const heads = staticDim(decoder, 'past_key_values.0.key', 'input', 1) ?? config.decoder['n_head'] ?? config.decoder['num_attention_heads']!;
    const hidden = config.decoder['n_embd'] ?? config.decoder['hidden_size']!;
    const headDim = staticDim(decoder, 'past_key_values.0.key', 'input', 3) ?? hidden / heads;
    const px = staticDim(encoder, 'pixel_values', 'input', 2) ?? 224;
    return new NoCacheCaptioner(encoder, decoder, layers, heads, headDim, model, [px, staticDim(encoder, 'pixel_values', 'input', 3) ?? px]);
  }

  async generate(pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions): Promise<number[][]> {
    const batch = stackPixels(pixels, this.size);
    const enc = (await this.encoder.run({ pixel_values: floatTensor(floatInputType(this.encoder, 'pixel_values'), batch.data, batch.dims) }))['last_hidden_state']!;
    const hiddenType = floatInputType(this.decoder, 'encoder_hidden_states');
    let hidden = enc.type === hiddenType ? enc : floatTensor(hiddenType, readFloats(enc, 'encoder'), enc.dims);
    const kvType = floatInputType(this.decoder, 'past_key_values.0.key');
    const { promptIds, eosIds } = this.model;
    const rngs = seeds.map((s) => new SeededRng(s));
    const histories = seeds.map(() => [...promptIds]);
    const generated: number[][] = seeds.map(() => []);
    let active = pixels.map((_, i) => i);
    while (active.length > 0) {
      const rows = active.length;
      const seq = histories[active[0]!]!.length; // all active rows have fed the same number of tokens
      const empty = floatTensor(kvType, new Float32Array(0), [rows, this.heads, 0, this.headDim]);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: int64Tensor(active.flatMap((r) => histories[r]!), [rows, seq]),
        encoder_hidden_states: hidden,
        use_cache_branch: boolTensor([false], [1]),
      };
      for (let i = 0; i < this.layers; i++) feeds[`past_key_values.${i}.key`] = feeds[`past_key_values.${i}.value`] = empty;
      const names = this.decoder.inputNames;
      if (names.includes('attention_mask')) feeds['attention_mask'] = int64Tensor(new Array<number>(rows * seq).fill(1), [rows, seq]);
      if (names.includes('encoder_attention_mask')) feeds['encoder_attention_mask'] = int64Tensor(new Array<number>(rows * hidden.dims[1]!).fill(1), [rows, hidden.dims[1]!]);
      if (names.includes('position_ids')) feeds['position_ids'] = int64Tensor(Array.from({ length: rows * seq }, (_, k) => k % seq), [rows, seq]);
      // Only the logits are fetched: a runtime without a cache has no use for the presents.
      const logits = (await this.decoder.run(feeds, ['logits']))['logits']!;
      const vocab = logits.dims[2]!;
      const all = readFloats(logits, 'decoder');
      const keep: number[] = [];
      active.forEach((row, slot) => {
        const last = all.subarray((slot * seq + seq - 1) * vocab, (slot * seq + seq) * vocab);
        const token = nextToken(last, { history: histories[row]!, generated: generated[row]!.length, eosIds, rng: rngs[row]! }, o);
        if (eosIds.includes(token)) return;
        generated[row]!.push(token);
        histories[row]!.push(token);
        if (generated[row]!.length < o.maxLength) keep.push(slot);
      });
      if (keep.length < rows && keep.length > 0) hidden = selectRows(hidden, keep);
      active = keep.map((slot) => active[slot]!);
    }
    return generated;
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}

/** The paper's sampling at a fixed caption length (min = max), so every row generates `tokens` tokens. */
export const fixedLengthOptions = (tokens: number): CaptionOptions => ({ ...PAPER_CAPTION_OPTIONS, minLength: tokens, maxLength: tokens });

/** Throws unless every row generated `want` tokens (a benchmark must time the work it says). */
export function checkLengths(out: number[][], want: number): void {
  if (out.some((ids) => ids.length !== want)) throw new Error(`bench: rows generated ${out.map((r) => r.length).join(',')} tokens, expected ${want} each`);
}

/** `n` sample-data scenes as JPEGs (the sizes img2dataset leaves), preprocessed for the captioner; `seed` names the set. */
export async function makePixels(model: CaptionModel, n: number, seed = 'bench-caption'): Promise<PixelTensor[]> {
  const out: PixelTensor[] = [];
  for (let i = 0; i < n; i++) {
    const rng = new Rng(seed, i);
    const scene = randomScene(rng, 320 + (i % 4) * 64, 256 + (i % 3) * 64);
    out.push(await model.preprocess(await sharp(Buffer.from(sceneSvg(scene))).jpeg({ quality: 90 }).toBuffer()));
  }
  return out;
}

export async function benchCaptionTokens(o: CaptionTokensOptions): Promise<CaptionTokensResult> {
  const batch = o.batch ?? 16;
  const tokens = o.tokens ?? 16;
  const runs = o.runs ?? 3;
  const runtime: RuntimeOptions = { device: o.device, dtype: o.dtype, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) };
  const model = await loadCaptionModel(o.dir, runtime);
  const noCache = o.noCache ? null : await NoCacheCaptioner.open(o.dir, model, runtime);
  try {
    const pixels = await makePixels(model, batch);
    const seeds = pixels.map((_, i) => `bench:${i}`);
    const opts = fixedLengthOptions(tokens);
    const total = batch * tokens;
    type Gen = (px: readonly PixelTensor[], sd: readonly string[], co: CaptionOptions) => Promise<number[][]>;
    const kv: Gen = (px, sd, co) => generateTokens(model, px, sd, co);
    const nc: Gen | null = noCache ? (px, sd, co) => noCache.generate(px, sd, co) : null;
    const whole = async (gen: Gen, co = opts): Promise<void> => checkLengths(await gen(pixels, seeds, co), co.maxLength);
    const oneByOne = async (gen: Gen, co = opts): Promise<void> => {
      for (let i = 0; i < batch; i++) checkLengths(await gen([pixels[i]!], [seeds[i]!], co), co.maxLength);
    };

    // Warm-up: every side and batch shape once, on a few tokens. Same seeds and logits (up to float rounding)
    // give the same tokens on both sides: a check that the reference does the same work.
    const short = { ...opts, minLength: 3, maxLength: 3 };
    const warm: number[][][] = [];
    for (const gen of [kv, nc]) {
      if (!gen) continue;
      warm.push(await gen(pixels, seeds, short));
      await gen([pixels[0]!], [seeds[0]!], short);
    }
    const agree = warm.length === 2 ? warm[0]!.filter((row, i) => row.join() === warm[1]![i]!.join()).length / batch : null;

    const sides: Array<[string, () => Promise<void>]> = [
      ['kv_batch', () => whole(kv)],
      ['kv_b1', () => oneByOne(kv)],
    ];
    if (nc) sides.push(['nocache_batch', () => whole(nc)], ['nocache_b1', () => oneByOne(nc)]);
    const times: Record<string, number[]> = {};
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const [name, fn] = sides[(k + r) % sides.length]!; // rotate: spreads a shared machine's drift
        (times[name] ??= []).push(await seconds(fn));
      }
    }
    const tps = (name: string): number | null => (times[name] ? total / median(times[name]) : null);
    const ratio = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? a / b : null);
    const kvBatch = tps('kv_batch')!;
    const kvB1 = tps('kv_b1')!;
    const ncBatch = tps('nocache_batch');
    const ncB1 = tps('nocache_b1');
    return {
      model: path.resolve(o.dir),
      device: o.device ?? 'cpu',
      dtype: o.dtype ?? 'fp32',
      batch,
      tokens,
      runs,
      threads: o.threads ?? null,
      kv_batch_tps: kvBatch,
      kv_b1_tps: kvB1,
      nocache_batch_tps: ncBatch,
      nocache_b1_tps: ncB1,
      kv_over_nocache_batch: ratio(kvBatch, ncBatch),
      kv_over_nocache_b1: ratio(kvB1, ncB1),
      batch_over_b1_kv: kvBatch / kvB1,
      batch_over_b1_nocache: ratio(ncBatch, ncB1),
      tokens_agree: agree,
    };
  } finally {
    await Promise.all([model.release(), noCache?.release()]);
  }
}
