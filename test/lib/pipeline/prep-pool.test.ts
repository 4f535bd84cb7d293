/**
 * The annotate stage with its preprocessing threads (lib/pipeline/prep-pool.ts): real worker threads (TypeScript
 * loaded through prep-worker.js under jest too), real sharp, real ONNX sessions. The threads must change nothing
 * in the results — every annotation group equals the one made on the calling thread, over ordinary JPEGs and the
 * images whose preprocessing takes other paths (alpha, palette, CMYK, EXIF-rotated, grey, 16-bit, corrupt) — hand
 * their tensors over without a copy, and never load ONNX Runtime.
 */
import * as path from 'node:path';
import sharp from 'sharp';
import { parseConfig } from '../../../lib/config/load';
import { InputError } from '../../../lib/errors';
import { toFloat16Bits } from '../../../lib/formats/float16';
import { Img2DatasetShardWriter } from '../../../lib/formats/img2dataset';
import { loadCaptioner, loadClip } from '../../../lib/models';
import { batchPixels } from '../../../lib/models/pixel-batch';
import type { Captioner, ClipScorer } from '../../../lib/models/types';
import { annotateShard } from '../../../lib/pipeline/annotate-stage';
import type { BatchPrep, PreparedBatch } from '../../../lib/pipeline/batches';
import { planRun } from '../../../lib/pipeline/plan-stage';
import { createPrepPool, ThreadPrepPool, type PrepPool } from '../../../lib/pipeline/prep-pool';
import type { RunPlan } from '../../../lib/run/plan';
import { generateSampleData } from '../../../lib/sampledata';
import { storageFor } from '../../../lib/storage';
import { annotationFile, annotations } from '../../helpers/annotations';
import { TINY_CAPTIONER, TINY_CLIP, tempDir } from '../../helpers/paths';
import { givenModels } from '../../helpers/stages';

let captioner: Captioner;
let clip: ClipScorer;
let input: string;
let threads: ThreadPrepPool;
let inline: PrepPool;

/** Images whose preprocessing is not the plain-JPEG path, written as one more shard of the input. */
async function oddImages(): Promise<Buffer[]> {
  const w = 96;
  const h = 64;
  const pixels = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) pixels.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, (i * 3) % 256], i * 4);
  const rgba = sharp(pixels, { raw: { width: w, height: h, channels: 4 } });
  const rgb = () => rgba.clone().removeAlpha();
  return Promise.all([
    rgba.clone().png().toBuffer(), // alpha
    rgb().png({ palette: true, colours: 16 }).toBuffer(), // palette
    rgb().toColourspace('cmyk').jpeg().toBuffer(), // CMYK
    rgb().jpeg().withMetadata({ orientation: 6 }).toBuffer(), // EXIF-rotated
    rgb().toColourspace('b-w').png().toBuffer(), // grey
    rgb().toColourspace('rgb16').png().toBuffer(), // 16-bit
    rgb().resize(40, 300).jpeg().toBuffer(), // tall: smaller than the crop on one side
    Buffer.from('not an image at all'), // decode error
  ]);
}

beforeAll(async () => {
  captioner = await loadCaptioner(TINY_CAPTIONER);
  clip = await loadClip(TINY_CLIP);
  input = path.join(tempDir(), 'in');
  await generateSampleData({ out: input, shards: 1, perShard: 11, seed: 21, corrupt: 1, failures: 1 });
  const writer = await Img2DatasetShardWriter.open(storageFor(input), input, 1);
  const images = await oddImages();
  for (const [i, image] of images.entries()) {
    await writer.writeSuccess({ index: i, uid: `${'ab'.repeat(15)}${String(i).padStart(2, '0')}`, url: `http://x/${i}`, caption: `odd image ${i}`, image, width: 96, height: 64, original_width: 96, original_height: 64 });
  }
  await writer.close({ endTime: 0 });
  threads = createPrepPool(2) as ThreadPrepPool;
  inline = createPrepPool(0);
});

afterAll(async () => {
  await Promise.all([captioner?.release(), clip?.release(), threads?.close()]);
});

const config = (name: string, preset: string, annotationsUri: string, score = 4) =>
  parseConfig(
    {
      run: { name, seed: 3 },
      input: { uri: input },
      output: { uri: path.join(tempDir(), 'out') },
      annotations: { uri: annotationsUri },
      strategy: { preset },
      models: { captioner: { path: TINY_CAPTIONER }, clip: { path: TINY_CLIP } },
      caption: { batchSize: 3, maxLength: 8, candidates: 2, pick: 'clip' },
      score: { batchSize: score },
    },
    'test',
  );


/** Every annotation the plan computes, per shard. */
async function allAnnotations(plan: RunPlan): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < plan.shards.length; i++) {
    const groups: Array<keyof typeof annotations> = ['samples', ...plan.annotations.compute];
    if (plan.annotations.compute.includes('captions')) groups.push('candidates');
    for (const g of groups) out.push({ shard: i, group: g, rows: await annotations[g](plan, i) });
  }
  return out;
}

async function annotateAll(plan: RunPlan, prep: PrepPool) {
  const load = givenModels(captioner, clip)(plan);
  const summaries = [];
  for (let i = 0; i < plan.shards.length; i++) summaries.push(await annotateShard(plan, i, load, undefined, prep));
  return summaries;
}

describe('annotate stage with preprocessing threads', () => {
  it('gives the annotations of preparing on the calling thread, captions and scores alike, and reports its busy time', async () => {
    const results = [];
    for (const prep of [inline, threads]) {
      const plan = await planRun(config(`r${prep.threads}`, 'raw30-synthetic70', path.join(tempDir(), 'ann')));
      expect(plan.annotations.compute).toEqual(expect.arrayContaining(['captions', 'rawScores', 'syntheticScores']));
      const summaries = await annotateAll(plan, prep);
      for (const s of summaries) {
        expect(s.counts).toMatchObject({ prepThreads: prep.threads });
        expect(s.counts!.mainThreadMs).toBeGreaterThan(0);
        expect(s.counts!.onnxRunMs).toBeGreaterThan(0);
      }
      // the rest of the counts must agree; timings differ run to run
      const timings = new Set(['mainThreadMs', 'onnxRunMs', 'mainThreadCpuMs', 'onnxRunCpuMs', 'prepThreads']);
      const untimed = summaries.map((s) => ({ ...s, counts: Object.fromEntries(Object.entries(s.counts!).filter(([k]) => !timings.has(k))) }));
      results.push({ summaries: untimed, rows: await allAnnotations(plan) });
    }
    expect(results[1]).toEqual(results[0]);
    // the odd images were annotated (all but the garbage one), and its decode failure recorded
    const odd = (results[0]!.rows as Array<{ shard: number; group: string; rows: Array<{ error: string | null }> }>).find((r) => r.shard === 1 && r.group === 'samples')!;
    expect(odd.rows.map((r) => r.error)).toEqual([null, null, null, null, null, null, null, 'decode_error']);
  });

  it('scores committed captions with their tokens made by the threads, as on the calling thread', async () => {
    const results = [];
    for (const prep of [inline, threads]) {
      const root = path.join(tempDir(), 'ann');
      // Captions first (a synthetic run; its scores dropped), then a run that scores the committed captions: their
      // texts come tokenised with each batch.
      const first = await planRun(config(`c${prep.threads}`, 'synthetic', root));
      await annotateAll(first, prep);
      for (let i = 0; i < first.shards.length; i++) await storageFor(root).remove(annotationFile(first, 'syntheticScores', i));
      const plan = await planRun(config(`s${prep.threads}`, 'raw30-synthetic70', root, 3));
      const summaries = await annotateAll(plan, prep);
      expect(summaries.map((s) => Object.keys(s.counts!).filter((k) => k.startsWith('computed:')).sort())).toEqual(plan.shards.map(() => ['computed:rawScores', 'computed:syntheticScores']));
      results.push(await allAnnotations(plan));
    }
    expect(results[1]).toEqual(results[0]);
  });

  it('hands tensors over without copying: the model feeds the thread-made buffer, float16 bits included; buffers go round', async () => {
    const recipe = clip.imageRecipe;
    const prep: BatchPrep = { decode: {}, captioner: { ...recipe, type: 'float16' }, clip: recipe, text: clip.textRecipe, rawCaptions: true };
    const read = { tar: path.join(input, '00000000.tar'), from: 2, batchSize: 3, requireUid: true };
    const inlineGot: PreparedBatch[] = [];
    for await (const b of inline.batches(read, prep)) inlineGot.push(b);
    const positions: number[][] = [];
    for (let round = 0; round < 2; round++) {
      let k = 0;
      for await (const b of threads.batches(read, prep)) {
        if (round === 0) positions.push(b.samples.map((s) => s.position));
        const views = b.clip!;
        expect(views).toHaveLength(b.ok.length);
        const fed = batchPixels('float32', views, recipe.size);
        expect(fed.data.buffer).toBe(views[0]!.data.buffer); // the thread's buffer itself
        expect(fed.dims).toEqual([b.ok.length, 3, ...recipe.size]);
        const half = batchPixels('float16', b.captioner!, recipe.size);
        expect(half.data.buffer).toBe(b.captioner![0]!.half!.buffer);
        // The same images and recipe as CLIP's, stacked straight into float16: one buffer per model is handed over.
        expect(Array.from(half.data)).toEqual(Array.from(toFloat16Bits(fed.data as Float32Array)));
        expect(b.pixelBuffers).toEqual([half.data.buffer, fed.data.buffer]);
        // the same tensors and tokens as made on this thread, whether stacked into new or recycled buffers
        expect(Array.from(fed.data)).toEqual(Array.from(batchPixels('float32', inlineGot[k]!.clip!).data));
        expect(b.rawTokens).toEqual(inlineGot[k]!.rawTokens);
        // and the same embeddings as the scorer's own tokenising
        expect(await clip.embedTokens(b.rawTokens!)).toEqual(await clip.embedTexts(b.ok.map((s) => s.info.rawCaption)));
        threads.recycle(b);
        k++;
      }
      expect(k).toBe(inlineGot.length);
    }
    expect(positions).toEqual([[2, 3, 4], [5, 6, 7], [8, 9]]);
  });

  it('reuses recycled buffers on the calling thread too', async () => {
    const prep: BatchPrep = { decode: {}, captioner: null, clip: clip.imageRecipe, text: null, rawCaptions: false };
    const own = createPrepPool(0);
    const buffers: ArrayBufferLike[] = [];
    for await (const b of own.batches({ tar: path.join(input, '00000000.tar'), from: 0, batchSize: 2, requireUid: true }, prep)) {
      buffers.push(b.clip![0]!.data.buffer);
      own.recycle(b);
    }
    // one batch is prepared ahead of the one in use: from the third on, each batch reuses one handed back before
    expect(new Set(buffers).size).toBeLessThan(buffers.length);
  });

  it('never loads ONNX Runtime in a prep thread', async () => {
    expect(await threads.nativePackages()).toEqual(['sharp']);
  });

  it('stops the reader when the stage stops early, and the pool carries on', async () => {
    const read = { tar: path.join(input, '00000000.tar'), from: 0, batchSize: 2, requireUid: true };
    const prep: BatchPrep = { decode: {}, captioner: null, clip: clip.imageRecipe, text: null, rawCaptions: false };
    for await (const b of threads.batches(read, prep)) {
      expect(b.samples).toHaveLength(2);
      break;
    }
    let n = 0;
    for await (const b of threads.batches(read, prep)) n += b.samples.length;
    expect(n).toBe(10);
  });

  it('fails a corrupt tar with the InputError the reader thread met', async () => {
    const bad = path.join(tempDir(), 'bad.tar');
    await storageFor(bad).writeAtomic(bad, Buffer.alloc(3000, 7));
    const prep: BatchPrep = { decode: {}, captioner: null, clip: null, text: null, rawCaptions: false };
    const run = async () => {
      for await (const b of threads.batches({ tar: bad, from: 0, batchSize: 2, requireUid: false }, prep)) void b;
    };
    await expect(run()).rejects.toThrow(InputError);
    await expect(run()).rejects.toMatchObject({ type: 'CorruptShard' });
  });
});
