/**
 * The annotate stage's input, batch by batch, in two steps that are plain functions: `readRawBatches` streams the
 * shard's tar (tar parsing, the per-sample checks, the metadata the stage writes) into batches of tar positions with
 * their image bytes packed in one buffer; `prepareBatch` decodes each image once and makes every model's tensor from
 * it, stacks each model's tensors into one buffer (plus float16 bits for a float16 model) and tokenises the texts
 * CLIP will embed. prep-pool.ts runs them in worker threads (every buffer handed over, never copied) or on the
 * calling thread; the results are the same either way.
 */
import { SampleError } from '../errors';
import { rawCaptionOf, readImg2DatasetShard } from '../formats/img2dataset';
import { newBuffer, stackBatch, pixelViews, type BufferSource, type StackedPixels } from '../models/pixel-batch';
import { decodeImage, preprocessDecoded, type DecodeOptions } from '../models/preprocess';
import { encodeTexts } from '../models/text-batch';
import { TextTokenizer } from '../models/tokenizer';
import { jsonFolder } from '../models/json-folder';
import type { ImageRecipe, PixelTensor, TextRecipe, TokenBatch } from '../models/types';
import { FAILURE_REASONS } from '../reasons';
import { storageFor, type StorageOptions } from '../storage';
import { SampleChecks } from './sample-checks';

/** Which tar, and which of its positions, in batches of how many. */
export interface ShardRead {
  tar: string;
  /** first position to hand over: earlier samples are read past (and checked), not decoded */
  from: number;
  batchSize: number;
  requireUid: boolean;
  /** storageFor's options (a thread passes the stage thread's: storageOptionsHere) */
  storage?: StorageOptions;
}

/** What the stage writes of a sample besides model outputs (its `samples` row), taken from the tar. */
export interface SampleInfo {
  key: string;
  uid: string | null;
  rawCaption: string;
  originalWidth: number | null;
  originalHeight: number | null;
}

/** A sample at its tar position (annotations are one row per position), and why it cannot be used, if it cannot. */
export interface SampleSlot {
  info: SampleInfo;
  position: number;
  /** reason code, or null */
  error: string | null;
  errorMessage: string | null;
}

/** One batch as read: the images of the samples still usable, packed in `bytes` (one buffer to hand over). */
export interface RawBatch {
  samples: SampleSlot[];
  /** [offset, length] in `bytes` of each sample's image, null where the sample already failed */
  images: Array<[number, number] | null>;
  bytes: ArrayBuffer;
}

/** What to make of each batch. */
export interface BatchPrep {
  /** decodeImage's limits */
  decode: DecodeOptions;
  captioner: ImageRecipe | null;
  clip: ImageRecipe | null;
  /** how CLIP tokenises: for the raw captions (rawCaptions) and a task's `texts` */
  text: TextRecipe | null;
  /** tokenise the decodable samples' raw captions */
  rawCaptions: boolean;
}

/**
 * A batch to prepare: `texts` (per sample, or null) are other texts to tokenise with prep.text; `reuse`, buffers of
 * earlier batches the stage is done with, to stack into rather than allocate (recycled: see prep-pool.ts).
 */
export interface PrepareTask {
  raw: RawBatch;
  prep: BatchPrep;
  texts: Array<string[] | null> | null;
  reuse?: ArrayBuffer[];
}

/** What preparing a batch makes: only plain data and fresh buffers, to hand over whole. */
export interface PreparedData {
  /** per sample: why its image could not be used (decode failure), else null */
  failures: Array<{ reason: string; message: string } | null>;
  decoded: number;
  /** tensors of the decodable samples, in order */
  captioner: StackedPixels | null;
  clip: StackedPixels | null;
  /** raw captions of the decodable samples, in order */
  rawTokens: TokenBatch | null;
  /** `texts` of the decodable samples that have some, flattened in order */
  textTokens: TokenBatch | null;
}

/** A prepared batch as the stage uses it. */
export interface PreparedBatch {
  /** every tar position of the batch, with decode failures now included */
  samples: SampleSlot[];
  /** the decodable samples, in order: row i of every tensor and token batch below is ok[i] */
  ok: SampleSlot[];
  captioner: PixelTensor[] | null;
  clip: PixelTensor[] | null;
  rawTokens: TokenBatch | null;
  textTokens: TokenBatch | null;
  decoded: number;
  /**
   * The pixel buffers of the batch, for the pool to recycle once the models are done with it (its tensors are
   * unusable after: call it last).
   */
  pixelBuffers: ArrayBuffer[];
}

function intOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31 ? v : null;
}

/**
 * The shard's samples from `from` on, in batches of `batchSize` positions. Samples before `from` are read past, not
 * decoded, but still checked: a duplicate is one whatever chunk its first occurrence was committed in.
 */
export async function* readRawBatches(read: ShardRead): AsyncGenerator<RawBatch> {
  const checks = new SampleChecks(read.tar, read.requireUid);
  let slots: SampleSlot[] = [];
  let images: Array<Buffer | null> = [];
  let position = 0;
  for await (const sample of readImg2DatasetShard(storageFor(read.tar, read.storage), read.tar)) {
    const problem = checks.check(sample);
    if (position >= read.from) {
      const meta = sample.meta;
      const info: SampleInfo = {
        key: sample.key,
        uid: sample.uid,
        rawCaption: rawCaptionOf(sample),
        originalWidth: intOrNull(meta?.original_width ?? meta?.width),
        originalHeight: intOrNull(meta?.original_height ?? meta?.height),
      };
      const [error, errorMessage] = problem
        ? [problem.reason, problem.message]
        : !sample.image
          ? [FAILURE_REASONS.missingImage, `sample ${sample.key} has no image file`]
          : [null, null];
      slots.push({ info, position, error, errorMessage });
      images.push(error ? null : sample.image);
      if (slots.length === read.batchSize) {
        yield pack(slots, images);
        slots = [];
        images = [];
      }
    }
    position++;
  }
  if (slots.length) yield pack(slots, images);
}

/** The images copied into one fresh buffer (the tar reader's buffers are slices of bigger ones: not transferable). */
function pack(samples: SampleSlot[], images: Array<Buffer | null>): RawBatch {
  const bytes = new ArrayBuffer(images.reduce((n, b) => n + (b?.length ?? 0), 0));
  const view = new Uint8Array(bytes);
  let offset = 0;
  const at = images.map((b): [number, number] | null => {
    if (!b) return null;
    view.set(b, offset);
    offset += b.length;
    return [offset - b.length, b.length];
  });
  return { samples, images: at, bytes };
}

/** Tokenizers by model folder, loaded once per thread. */
const tokenizers = new Map<string, Promise<TextTokenizer>>();

export function tokenizerFor(recipe: TextRecipe): Promise<TextTokenizer> {
  let t = tokenizers.get(recipe.dir);
  if (!t) {
    t = TextTokenizer.load(jsonFolder(recipe.dir));
    t.catch(() => tokenizers.delete(recipe.dir)); // a failed load is not remembered
    tokenizers.set(recipe.dir, t);
  }
  return t;
}

/** `texts` tokenised per `recipe` (the CLIP scorer's own tokenisation: text-batch.ts). */
export async function tokenizeTexts(recipe: TextRecipe, texts: readonly string[]): Promise<TokenBatch> {
  return encodeTexts(await tokenizerFor(recipe), texts, recipe);
}

/**
 * Decodes each usable image once and makes each model's tensor from those pixels (a SampleError marks the sample
 * failed; anything else fails the batch), then stacks and tokenises for the decodable samples.
 */
export async function prepareBatch(task: PrepareTask): Promise<PreparedData> {
  const { raw, prep } = task;
  const spare = [...(task.reuse ?? [])];
  // The smallest recycled buffer that fits, else a new one.
  const buffer: BufferSource = (bytes) => {
    const fits = spare.filter((b) => b.byteLength >= bytes).sort((a, b) => a.byteLength - b.byteLength)[0];
    if (!fits) return newBuffer(bytes);
    spare.splice(spare.indexOf(fits), 1);
    return fits;
  };
  let decoded = 0;
  const failures: PreparedData['failures'] = raw.samples.map(() => null);
  const made = await Promise.all(
    raw.images.map(async (at, i) => {
      if (!at) return null;
      try {
        const image = await decodeImage(Buffer.from(raw.bytes, at[0], at[1]), prep.decode);
        decoded++;
        const [captioner, clip] = await Promise.all([
          prep.captioner ? preprocessDecoded(image, prep.captioner.spec, prep.captioner.decode) : null,
          prep.clip ? preprocessDecoded(image, prep.clip.spec, prep.clip.decode) : null,
        ]);
        return { captioner, clip };
      } catch (e) {
        if (!(e instanceof SampleError)) throw e;
        failures[i] = { reason: e.reason, message: `${raw.samples[i]!.info.key}: ${e.message}` };
        return null;
      }
    }),
  );
  const ok = made.flatMap((m, i) => (m ? [i] : []));
  const stacked = (recipe: ImageRecipe | null, pick: (i: number) => PixelTensor | null): StackedPixels | null =>
    recipe && ok.length ? stackBatch(ok.map((i) => pick(i)!), recipe.type, recipe.size, buffer) : null;
  const okTexts = task.texts ? ok.flatMap((i) => task.texts![i] ?? []) : [];
  return {
    failures,
    decoded,
    captioner: stacked(prep.captioner, (i) => made[i]!.captioner),
    clip: stacked(prep.clip, (i) => made[i]!.clip),
    rawTokens: prep.text && prep.rawCaptions && ok.length ? await tokenizeTexts(prep.text, ok.map((i) => raw.samples[i]!.info.rawCaption)) : null,
    textTokens: prep.text && okTexts.length ? await tokenizeTexts(prep.text, okTexts) : null,
  };
}

/** The pixel buffers of prepared data: the big ones, recycled once the models are done with them. */
export function pixelBuffers(d: Pick<PreparedData, 'captioner' | 'clip'>): ArrayBuffer[] {
  const out: ArrayBufferLike[] = [];
  for (const s of [d.captioner, d.clip]) if (s) out.push(s.values.buffer);
  return out as ArrayBuffer[];
}

/** The buffers of prepared data, to hand over rather than copy. */
export function transferables(d: PreparedData): ArrayBuffer[] {
  const out: ArrayBufferLike[] = pixelBuffers(d);
  for (const t of [d.rawTokens, d.textTokens]) if (t) out.push(t.ids.buffer, t.mask.buffer);
  return out as ArrayBuffer[];
}

/** The stage's view of a prepared batch: failures merged into the samples, tensors as per-image views. */
export function preparedBatch(samples: readonly SampleSlot[], d: PreparedData): PreparedBatch {
  const all = samples.map((s, i) => {
    const f = d.failures[i];
    return f ? { ...s, error: f.reason, errorMessage: f.message } : s;
  });
  // Decodable: no problem before decoding, no decode failure (what prepareBatch stacked, in the same order).
  const ok = all.filter((s) => s.error === null);
  return {
    samples: all,
    ok,
    captioner: d.captioner ? pixelViews(d.captioner) : null,
    clip: d.clip ? pixelViews(d.clip) : null,
    rawTokens: d.rawTokens,
    textTokens: d.textTokens,
    decoded: d.decoded,
    pixelBuffers: pixelBuffers(d),
  };
}
