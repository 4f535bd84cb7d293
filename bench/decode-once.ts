/**
 * Benchmark (d): the annotate stage's image work for two models, host CPU time per sample, decoding each image
 * once against the reference measured in the same run, decoding it once per model:
 *
 *   before (ref)  captioner.preprocess(bytes) and clip.preprocess(bytes): each model decodes the bytes itself;
 *   after (ours)  decodeImage(bytes) once, then captioner.preprocessDecoded and clip.preprocessDecoded.
 *
 * Same models (their real preprocessor configs), same images, same tensors (checked bit for bit in the warm-up);
 * both models' preprocessing of a sample in flight together, `IN_FLIGHT` samples at a time, as the stage's look-ahead
 * batch has them. CPU time is process.cpuUsage(): every thread of the process, so libuv's and libvips's threads,
 * where sharp decodes and resizes, count. Two image sets: the sample-data shard's JPEGs (lib/sampledata: DataComp's
 * ≤ 512 px) and larger renders of the same scenes (1024–2048 px), where decoding dominates.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { readImg2DatasetShard } from '../lib/formats/img2dataset';
import { loadCaptioner } from '../lib/models/captioner';
import { loadClip } from '../lib/models/clip';
import { decodeImage } from '../lib/models/preprocess';
import type { Captioner, ClipScorer, PixelTensor } from '../lib/models/types';
import { generateSampleData, randomScene, Rng, sceneSvg } from '../lib/sampledata';
import { storageFor } from '../lib/storage';
import { median } from './timing';

/** Samples whose preprocessing is in flight together (the stage prepares a whole batch ahead). */
const IN_FLIGHT = 16;
const LARGE_SIZES = [[1024, 768], [1280, 960], [1536, 1024], [2048, 1536], [1200, 1600], [1536, 2048]] as const;

export interface DecodeOnceOptions {
  clipDir: string;
  captionerDir: string;
  /** sample-data JPEGs */
  images?: number;
  /** timed rounds per side after a warm-up round (medians) */
  runs?: number;
}

export interface DecodeOnceSet {
  name: string;
  images: number;
  /** median host CPU milliseconds per sample */
  before_cpu_ms: number;
  after_cpu_ms: number;
  /** median wall-clock samples per second */
  before_sps: number;
  after_sps: number;
  /** before / after CPU time: how many times less CPU a sample costs */
  cpu_ratio: number;
}

export interface DecodeOnceResult {
  clip: string;
  captioner: string;
  runs: number;
  in_flight: number;
  libuv_threads: number;
  sets: DecodeOnceSet[];
}

type Side = (image: Buffer) => Promise<PixelTensor[]>;

async function sampleDataJpegs(n: number): Promise<Buffer[]> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bench-decode-'));
  try {
    const tar = (await generateSampleData({ out: root, shards: 1, perShard: n, seed: 5 })).shards[0]!.tar;
    const out: Buffer[] = [];
    for await (const s of readImg2DatasetShard(storageFor(tar), tar)) if (s.image) out.push(s.image);
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Sample-data scenes rendered at the sizes of unresized web photos, each size twice. */
function largeJpegs(): Promise<Buffer[]> {
  return Promise.all(
    [...LARGE_SIZES, ...LARGE_SIZES].map(([w, h], i) => sharp(Buffer.from(sceneSvg(randomScene(new Rng('bench-decode-large', i), w, h)))).jpeg({ quality: 90 }).toBuffer()),
  );
}

async function round(images: Buffer[], side: Side): Promise<{ cpuMs: number; sps: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < images.length) await side(images[next++]!);
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  return { cpuMs: (cpu.user + cpu.system) / 1e3 / images.length, sps: images.length / wall };
}

const fingerprint = (ps: PixelTensor[]): string => ps.map((p) => createHash('sha256').update(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength)).digest('hex')).join(',');

async function measureSet(name: string, images: Buffer[], before: Side, after: Side, runs: number): Promise<DecodeOnceSet> {
  // Warm-up, and the fairness check: both sides make the same tensors.
  for (const image of images) {
    if (fingerprint(await before(image)) !== fingerprint(await after(image))) throw new Error(`${name}: decoding once changed a tensor`);
  }
  const b: { cpuMs: number; sps: number }[] = [];
  const a: { cpuMs: number; sps: number }[] = [];
  for (let r = 0; r < runs; r++) {
    // Interleaved, alternating which goes first, so drift on a busy machine lands on both.
    const [first, second] = r % 2 === 0 ? [before, after] : [after, before];
    const x = await round(images, first);
    const y = await round(images, second);
    b.push(r % 2 === 0 ? x : y);
    a.push(r % 2 === 0 ? y : x);
  }
  const before_cpu_ms = median(b.map((x) => x.cpuMs));
  const after_cpu_ms = median(a.map((x) => x.cpuMs));
  return { name, images: images.length, before_cpu_ms, after_cpu_ms, before_sps: median(b.map((x) => x.sps)), after_sps: median(a.map((x) => x.sps)), cpu_ratio: before_cpu_ms / after_cpu_ms };
}

export async function benchDecodeOnce(o: DecodeOnceOptions): Promise<DecodeOnceResult> {
  const runs = o.runs ?? 5;
  const [clip, captioner]: [ClipScorer, Captioner] = await Promise.all([loadClip(o.clipDir), loadCaptioner(o.captionerDir)]);
  try {
    const before: Side = (image) => Promise.all([captioner.preprocess(image), clip.preprocess(image)]);
    const after: Side = async (image) => {
      const decoded = await decodeImage(image);
      return Promise.all([captioner.preprocessDecoded(decoded), clip.preprocessDecoded(decoded)]);
    };
    const sets = [
      await measureSet('sample-data JPEGs (≤ 512 px)', await sampleDataJpegs(o.images ?? 128), before, after, runs),
      await measureSet('large JPEGs (1024–2048 px)', await largeJpegs(), before, after, runs),
    ];
    return { clip: o.clipDir, captioner: o.captionerDir, runs, in_flight: IN_FLIGHT, libuv_threads: Number(process.env.UV_THREADPOOL_SIZE ?? 4), sets };
  } finally {
    await Promise.all([clip.release(), captioner.release()]);
  }
}

/** The lines `npm run bench` prints for this benchmark. */
export function formatDecodeOnce(r: DecodeOnceResult): string {
  const ms = (v: number) => `${v.toFixed(2).padStart(7)} ms`;
  return [
    `decode once for two models (${path.basename(r.captioner)} + ${path.basename(r.clip)} preprocessing), host CPU per sample, median of ${r.runs}, ${r.in_flight} in flight, ${r.libuv_threads} libuv threads:`,
    ...r.sets.flatMap((s) => [
      `  ${s.name}, ${s.images} images:`,
      `    decode per model (ref)   ${ms(s.before_cpu_ms)}   (wall ${s.before_sps.toFixed(1)} samples/s)`,
      `    decode once (ours)       ${ms(s.after_cpu_ms)}   (wall ${s.after_sps.toFixed(1)} samples/s)   ref / ours = ${s.cpu_ratio.toFixed(2)}× CPU`,
    ]),
  ].join('\n');
}
