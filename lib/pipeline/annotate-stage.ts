/**
 * Stage 1 (GPU): annotate a shard — read its tar once, decode each image once, preprocess it for each model that
 * the missing annotation groups need (captioner, CLIP image tower, nearest centroid), run them, and write only
 * those groups (lib/run/annotations.ts). Groups already committed by any earlier run are not recomputed.
 *
 * The JS work around the models — tar parsing, decoding and preprocessing, stacking, float16, tokenising — runs in
 * preprocessing threads (prep-pool.ts), batches ahead; this thread feeds ONNX Runtime and commits. Its busy time is
 * reported in the summary's counts (mainThreadMs, of which onnxRunMs inside ONNX Runtime).
 *
 * Mid-shard checkpoint: work is committed in chunks of whole batches (annotations.chunkSize rounded up to a multiple
 * of score.batchSize); a retried attempt skips the committed chunks (reading, not decoding, their samples) and
 * continues after them. Batches are aligned to tar positions, so the result equals an uninterrupted attempt's.
 */
import type { NearestCentroid } from '../clusters/nearest';
import { InputError } from '../errors';
import type { ColumnDecls, ParquetTable, RowOf } from '../formats/parquet';
import { bestCandidate, captionCandidates } from '../models/candidates';
import { onnxRunCpuMs, onnxRunMs, threadCpuMs } from '../models/run-clock';
import { cosine } from '../models/similarity';
import type { Captioner, ClipScorer } from '../models/types';
import { AnnotationStore, type AnnotationGroup, type ModelGroup, type ShardIdentity } from '../run/annotations';
import { annotationStore, type RunPlan } from '../run/plan';
import { ANNOTATION_TABLES, CANDIDATE_TABLE, CAPTIONS_TABLE, SAMPLES_TABLE, type CandidateRow, type SampleRow } from '../run/tables';
import { storageFor, type Storage } from '../storage';
import type { BatchPrep, PreparedBatch, SampleSlot } from './batches';
import { rowsOutcome, runShardStage, type ShardWork, type StageOutcome, type StageSummary } from './checkpoint';
import { NO_CONTEXT, StageStopped, throwIfAborted, type StageContext } from './context';
import { sharedPrepPool, type PrepPool } from './prep-pool';

/** The models of the groups an attempt computes (null where no missing group needs one). */
export interface AnnotateModels {
  captioner: Captioner | null;
  clip: ClipScorer | null;
  centroids: NearestCentroid | null;
}

/** Loads the models the missing groups need: a GPU worker's StageModels, or a test's own. */
export type LoadAnnotateModels = (groups: ReadonlySet<ModelGroup>) => Promise<AnnotateModels>;

const NO_MODELS: LoadAnnotateModels = async () => ({ captioner: null, clip: null, centroids: null });

/** Each group's table, seen alike: rows are built per group below and written through their table's checks. */
const TABLES: Record<AnnotationGroup, ParquetTable<ColumnDecls>> = ANNOTATION_TABLES;
type AnyRow = RowOf<ColumnDecls>;

/** The per-sample RNG seed: the same sample gets the same caption in any batch, retry, resume or run. */
export function sampleSeed(runSeed: number, sample: { uid: string | null; key: string }): string {
  return `${runSeed}:${sample.uid ?? sample.key}`;
}

/** `prep`: the threads that read, decode, preprocess and tokenise for the stage (default: the process's pool). */
export function annotateShard(plan: RunPlan, index: number, load: LoadAnnotateModels, ctx: StageContext = NO_CONTEXT, prep: PrepPool = sharedPrepPool()): Promise<StageSummary> {
  return runShardStage('annotate', plan, index, (w) => annotate(w, plan.annotations.compute, load, ctx, prep));
}

/** The shard's `samples` annotation, computed (images decoded on this machine, no model) when no run has yet. */
export async function sampleRows(w: ShardWork, ctx: StageContext = NO_CONTEXT, prep: PrepPool = sharedPrepPool()): Promise<SampleRow[]> {
  await annotate(w, [], NO_MODELS, ctx, prep);
  const store = annotationStore(w.plan);
  return SAMPLES_TABLE.read(storageFor(store.root), store.file('samples', w.shard));
}

/** The groups among `samples` and `wanted` that are not committed for the shard. */
async function missingAnnotations(store: AnnotationStore, shard: ShardIdentity, wanted: readonly ModelGroup[]): Promise<AnnotationGroup[]> {
  const files = storageFor(store.root);
  const missing: AnnotationGroup[] = [];
  for (const group of ['samples', ...wanted] as const) if (!(await files.exists(store.file(group, shard)))) missing.push(group);
  return missing;
}

/**
 * For each shard, the groups among `samples` and the plan's `compute` groups not committed yet — a few dozen shards
 * at a time (a page of 1,000 shards is a few thousand object lookups); `onBatch` is called after each batch.
 */
export async function missingByShard(annotations: RunPlan['annotations'], shards: readonly ShardIdentity[], onBatch: () => void = () => undefined): Promise<AnnotationGroup[][]> {
  const store = new AnnotationStore(annotations.root, annotations.keys);
  const out: AnnotationGroup[][] = [];
  for (let from = 0; from < shards.length; from += 32) {
    out.push(...(await Promise.all(shards.slice(from, from + 32).map((s) => missingAnnotations(store, s, annotations.compute)))));
    onBatch();
  }
  return out;
}

/** Whether a shard lacks any of the run's model annotations (the GPU stage's work), from `missingByShard`. */
export function needsModels(missing: readonly AnnotationGroup[]): boolean {
  return missing.some((g) => g !== 'samples');
}

/** Rows of one chunk, per group being computed. */
type ChunkRows = { [G in AnnotationGroup]?: AnyRow[] } & { candidates?: CandidateRow[] };

async function annotate(w: ShardWork, wanted: readonly ModelGroup[], load: LoadAnnotateModels, ctx: StageContext, prep: PrepPool): Promise<StageOutcome> {
  const { plan, shard } = w;
  const config = plan.config;
  const store = annotationStore(plan);
  const files = storageFor(store.root);
  const todo = new Set(await missingAnnotations(store, shard, wanted));
  if (todo.size === 0) return { samples: 0, failed: 0, counts: { reused: 1 } };

  const computing = (g: AnnotationGroup) => todo.has(g);
  const clipGroups = computing('rawScores') || computing('syntheticScores') || computing('clusters');
  const models = await load(new Set([...todo].filter((g): g is ModelGroup => g !== 'samples')));
  if ((computing('captions') && !models.captioner) || (clipGroups && !models.clip) || (computing('clusters') && !models.centroids)) {
    throw new Error(`annotate ${shard.name}: the models for ${[...todo].join(', ')} were not loaded`);
  }
  const batchSize = config.score.batchSize;
  const chunkSize = Math.ceil(config.annotations.chunkSize / batchSize) * batchSize;
  const resumeFrom = Math.min(...(await Promise.all([...todo].map((g) => committedEnd(files, store, g, shard)))));
  // Captions committed by an earlier run, when this attempt scores them.
  const captionsIn = computing('syntheticScores') && !computing('captions') ? await readCandidateTexts(files, store, shard, config.caption.candidates) : null;

  // What the prep threads make of each batch: each image decoded once, each model's tensors, CLIP's tokens.
  const batchPrep: BatchPrep = {
    decode: { maxPixels: config.image.maxPixels },
    captioner: computing('captions') ? models.captioner!.imageRecipe : null,
    clip: clipGroups ? models.clip!.imageRecipe : null,
    text: computing('rawScores') || computing('syntheticScores') ? models.clip!.textRecipe : null,
    rawCaptions: computing('rawScores'),
  };
  const textsAt = captionsIn ? (position: number) => captionsIn[position] ?? null : undefined;
  let decoded = 0;

  let rows: ChunkRows = {};
  let chunkStart = resumeFrom;
  let next = resumeFrom;
  const flush = async (): Promise<void> => {
    if (next === chunkStart) return;
    for (const g of todo) await TABLES[g].write(files, store.chunk(g, shard, chunkStart, next), rows[g] ?? []);
    if (rows.candidates) await CANDIDATE_TABLE.write(files, store.chunk('captions', shard, chunkStart, next, 'candidates'), rows.candidates);
    rows = {};
    chunkStart = next;
  };
  const push = (g: AnnotationGroup, row: AnyRow) => (rows[g] ??= []).push(row);

  // This thread's busy time over the attempt (event-loop utilisation), and how much of it ONNX Runtime took.
  const eluStart = performance.eventLoopUtilization();
  const onnxStart = onnxRunMs();
  const cpuStart = { thread: threadCpuMs(), onnx: onnxRunCpuMs() };
  const read = { tar: shard.tar, from: resumeFrom, batchSize, requireUid: config.input.requireUid };
  for await (const batch of prep.batches(read, batchPrep, textsAt)) {
    throwIfAborted(ctx);
    decoded += batch.decoded;
    if (computing('samples')) for (const s of batch.samples) push('samples', sampleRow(s));

    // Captions first: the synthetic scores may need them.
    let texts = new Map<number, string[]>();
    if (computing('captions')) {
      texts = await captionBatch(models.captioner!, batch, plan);
      for (const s of batch.samples) {
        const cands = texts.get(s.position) ?? null;
        push('captions', { key: s.info.key, synthetic_caption: cands ? cands[0]! : null });
        if (cands && config.caption.candidates > 1) {
          (rows.candidates ??= []).push(...cands.map((caption, k) => ({ key: s.info.key, uid: s.info.uid, candidate: k, caption })));
        }
      }
    } else if (captionsIn) {
      for (const s of batch.ok) if (captionsIn[s.position]) texts.set(s.position, captionsIn[s.position]!);
    }

    if (clipGroups) await scoreBatch(batch, texts, models, todo, plan, push, prep);
    prep.recycle(batch); // the models are done with its tensors
    next = batch.samples[batch.samples.length - 1]!.position + 1;
    if (next - chunkStart >= chunkSize) await flush();
    ctx.heartbeat(next, chunkStart);
    if (ctx.stopping?.aborted) {
      // The worker is shutting down: commit this partial chunk (it ends on a batch, like any) and hand the rest on.
      await flush();
      ctx.heartbeat(next, chunkStart);
      throw new StageStopped(`annotate ${shard.name}: worker shutting down; samples [0, ${next}) committed, the next attempt resumes there`);
    }
  }
  await flush();
  const total = await assemble(files, store, shard, todo);
  const errors = (await SAMPLES_TABLE.read(files, store.file('samples', shard))).map((r) => r.error);
  if (total >= 0 && errors.length !== total) throw new Error(`annotate ${shard.name}: ${total} annotated rows for ${errors.length} samples`);
  const outcome = rowsOutcome(errors);
  const busy = { mainThreadMs: performance.eventLoopUtilization(eluStart).active, onnxRunMs: onnxRunMs() - onnxStart };
  const ms = (v: number) => Math.round(v * 10) / 10;
  // The same split in CPU time where the OS gives it per thread (Linux): unaffected by a crowded machine.
  const cpu = cpuStart.thread !== null ? { mainThreadCpuMs: threadCpuMs()! - cpuStart.thread, onnxRunCpuMs: onnxRunCpuMs()! - cpuStart.onnx! } : null;
  return {
    ...outcome,
    counts: {
      ...outcome.counts,
      decoded,
      resumedAt: resumeFrom,
      ...Object.fromEntries([...todo].map((g) => [`computed:${g}`, 1])),
      // per image: (mainThreadMs - onnxRunMs) / (samples - resumedAt) is this thread's own JS (workers/metrics.ts);
      // the *CpuMs pair is the same split in CPU time (Linux)
      mainThreadMs: ms(busy.mainThreadMs),
      onnxRunMs: ms(busy.onnxRunMs),
      ...(cpu ? { mainThreadCpuMs: cpu.mainThreadCpuMs, onnxRunCpuMs: cpu.onnxRunCpuMs } : {}),
      prepThreads: prep.threads,
    },
  };
}

function sampleRow(s: SampleSlot): SampleRow {
  const { info } = s;
  return {
    key: info.key,
    uid: info.uid,
    raw_caption: info.rawCaption,
    original_width: info.originalWidth,
    original_height: info.originalHeight,
    error: s.error,
    error_message: s.errorMessage,
  };
}

/** Caption candidates of the decodable samples, by tar position, in caption.batchSize-image decodes. */
async function captionBatch(captioner: Captioner, batch: PreparedBatch, plan: RunPlan): Promise<Map<number, string[]>> {
  const c = plan.config.caption;
  const options = { topK: c.topK, temperature: c.temperature, minLength: c.minLength, maxLength: c.maxLength, repetitionPenalty: c.repetitionPenalty };
  // Candidates multiply the decoder rows, so fewer images go in at once to keep about batchSize rows per decode.
  const imagesPerDecode = Math.max(1, Math.floor(c.batchSize / c.candidates));
  const { ok } = batch;
  const pixels = batch.captioner ?? [];
  const out = new Map<number, string[]>();
  for (let i = 0; i < ok.length; i += imagesPerDecode) {
    const part = ok.slice(i, i + imagesPerDecode);
    const captions = await captionCandidates(
      captioner,
      pixels.slice(i, i + imagesPerDecode),
      part.map((s) => sampleSeed(plan.config.run.seed, s.info)),
      c.candidates,
      options,
    );
    part.forEach((s, k) => out.set(s.position, captions[k]!));
  }
  return out;
}

/** CLIP scores and clusters of one batch: one image-tower pass serves every group. */
async function scoreBatch(
  batch: PreparedBatch,
  texts: Map<number, string[]>,
  models: AnnotateModels,
  todo: ReadonlySet<AnnotationGroup>,
  plan: RunPlan,
  push: (g: AnnotationGroup, row: AnyRow) => void,
  prep: PrepPool,
): Promise<void> {
  const clip = models.clip!;
  const { ok } = batch;
  const scored = ok.filter((s) => texts.has(s.position));
  const flatTexts = scored.flatMap((s) => texts.get(s.position)!);
  // Committed captions came tokenised with the batch; this attempt's own are tokenised by a prep thread meanwhile.
  const synTokens = todo.has('syntheticScores') && flatTexts.length ? (batch.textTokens ?? prep.tokenize(clip.textRecipe, flatTexts)) : null;
  // Started together: ORT runs one while the others' inputs are made.
  const [imageEmb, rawEmb, synEmb] = ok.length
    ? await Promise.all([
        clip.embedImages(batch.clip!),
        todo.has('rawScores') ? clip.embedTokens(batch.rawTokens!) : Promise.resolve([]),
        synTokens ? Promise.resolve(synTokens).then((t) => clip.embedTokens(t)) : Promise.resolve([]),
      ])
    : [[], [], []];
  const at = new Map(ok.map((s, i) => [s.position, i]));
  const clusters = todo.has('clusters') && ok.length ? await assignClusters(models.centroids!, imageEmb) : null;
  const syn = new Map<number, { s: number; choice: number; caption: string; first: number }>();
  if (todo.has('syntheticScores')) {
    const { candidates, pick } = plan.config.caption;
    let offset = 0;
    for (const s of scored) {
      const cands = texts.get(s.position)!;
      const scores = cands.map((_, k) => cosine(imageEmb[at.get(s.position)!]!, synEmb[offset + k]!));
      offset += cands.length;
      const choice = candidates > 1 && pick === 'clip' ? bestCandidate(scores) : 0;
      syn.set(s.position, { s: scores[choice]!, choice, caption: cands[choice]!, first: scores[0]! });
    }
  }
  const several = plan.config.caption.candidates > 1;
  for (const b of batch.samples) {
    const i = at.get(b.position);
    const key = b.info.key;
    if (todo.has('rawScores')) push('rawScores', { key, s_raw: i === undefined ? null : cosine(imageEmb[i]!, rawEmb[i]!) });
    if (todo.has('syntheticScores')) {
      const s = syn.get(b.position);
      push('syntheticScores', {
        key,
        s_syn: s ? s.s : null,
        synthetic_choice: s && several ? s.choice : null,
        synthetic_caption: s && several ? s.caption : null,
        s_syn_first: s && several ? s.first : null,
      });
    }
    if (clusters) push('clusters', { key, cluster: i === undefined ? null : clusters[i]! });
  }
}

async function assignClusters(nc: NearestCentroid, embeddings: Float32Array[]): Promise<Int32Array> {
  const flat = new Float32Array(embeddings.length * nc.d);
  embeddings.forEach((e, i) => flat.set(e, i * nc.d));
  return nc.assign(flat, embeddings.length);
}

interface ChunkFile {
  uri: string;
  start: number;
  end: number;
}

const CHUNK = /(\d{8})-(\d{8})\.parquet$/;

async function chunkFiles(files: Storage, store: AnnotationStore, group: AnnotationGroup, shard: ShardIdentity): Promise<ChunkFile[]> {
  return (await files.list(store.chunks(group, shard)))
    .map((uri) => ({ uri, m: CHUNK.exec(uri) }))
    .filter((x): x is { uri: string; m: RegExpExecArray } => x.m !== null && !x.uri.endsWith('.candidates.parquet'))
    .map(({ uri, m }) => ({ uri, start: Number(m[1]), end: Number(m[2]) }))
    .sort((a, b) => a.start - b.start);
}

/** Tar positions [0, end) covered by a group's committed chunks, contiguously from the start. */
async function committedEnd(files: Storage, store: AnnotationStore, group: AnnotationGroup, shard: ShardIdentity): Promise<number> {
  let end = 0;
  for (const c of await chunkFiles(files, store, group, shard)) {
    if (c.start > end) break;
    end = Math.max(end, c.end);
  }
  return end;
}

/**
 * A chunk that vanished after it was listed was dropped by a concurrent attempt that committed the shard's file:
 * not missing input (never retried) but a lost race, which the retry finds committed.
 */
async function readChunk(files: Storage, uri: string): Promise<Buffer> {
  try {
    return await files.readBuffer(uri);
  } catch (err) {
    if (err instanceof InputError && err.type === 'MissingInput') throw new Error(`${uri}: removed by a concurrent attempt that committed the shard; retry`);
    throw err;
  }
}

/** Concatenate each group's chunks into its shard file (the commit), then drop the chunks; returns the row count. */
async function assemble(files: Storage, store: AnnotationStore, shard: ShardIdentity, todo: ReadonlySet<AnnotationGroup>): Promise<number> {
  let total = -1;
  for (const g of todo) {
    // Committed meanwhile by a concurrent attempt at this shard (it also drops the chunks): its file is the record.
    if (await files.exists(store.file(g, shard))) continue;
    const table = TABLES[g];
    const chunks = await chunkFiles(files, store, g, shard);
    const all: AnyRow[] = [];
    const candidates: CandidateRow[] = [];
    let end = 0;
    for (const c of chunks) {
      if (c.start < end) continue; // a chunk an interrupted attempt re-made with other bounds: its rows are in already
      if (c.start !== end) throw new Error(`annotations ${store.chunks(g, shard)}: chunk ${c.start} follows ${end}`);
      all.push(...(await table.decode(await readChunk(files, c.uri), c.uri)));
      const cands = store.chunk(g, shard, c.start, c.end, 'candidates');
      if (g === 'captions' && (await files.exists(cands))) candidates.push(...(await CANDIDATE_TABLE.decode(await readChunk(files, cands), cands)));
      end = c.end;
    }
    if (all.length !== end) throw new Error(`annotations ${store.chunks(g, shard)}: ${all.length} rows for positions [0, ${end})`);
    if (total >= 0 && end !== total) throw new Error(`annotations of ${shard.name}: ${g} has ${end} rows, another group ${total}`);
    total = end;
    // Candidates first: the captions file, committed after, vouches for both.
    if (g === 'captions' && candidates.length) await CANDIDATE_TABLE.write(files, store.candidates(shard), candidates);
    await table.write(files, store.file(g, shard), all);
  }
  for (const g of todo) for (const uri of await files.list(store.chunks(g, shard))) await files.remove(uri);
  return total;
}

/** Per tar position: the caption texts to score (its candidates, or its one caption), or null without one. */
async function readCandidateTexts(files: Storage, store: AnnotationStore, shard: ShardIdentity, candidates: number): Promise<Array<string[] | null>> {
  const captions = await CAPTIONS_TABLE.read(files, store.file('captions', shard));
  if (candidates <= 1) return captions.map((r) => (r.synthetic_caption === null ? null : [r.synthetic_caption]));
  // Candidate rows come in tar order, `candidates` consecutive rows per captioned sample.
  const rows = await CANDIDATE_TABLE.read(files, store.candidates(shard));
  let next = 0;
  return captions.map((r) => {
    if (r.synthetic_caption === null) return null;
    const mine = rows.slice(next, next + candidates);
    next += candidates;
    if (mine.length !== candidates || mine.some((m, k) => m.key !== r.key || m.candidate !== k)) {
      throw new Error(`annotations ${store.candidates(shard)}: candidates of ${r.key} out of order`);
    }
    return mine.map((m) => m.caption);
  });
}
