/**
 * The annotate stage's preprocessing threads: everything heavy on the JS side that is not the models — tar parsing,
 * image decode scheduling and preprocessing, stacking, float16 conversion, tokenising — runs in worker threads, so
 * the stage's own thread only feeds ONNX Runtime (whose session.run blocks the thread that calls it) and commits.
 *
 * Per shard, one reader thread streams the tar as raw batches (images packed in one transferred buffer) and the
 * pool's threads prepare them (batches.ts prepareBatch), up to `threads + 1` batches ahead of the models; results
 * come back as transferred buffers the models feed as they are (pixel-batch.ts). Batches are handed to the stage in
 * tar order, so its results equal those of preparing on the calling thread (`threads: 0`).
 *
 * Threads: piscina (well kept, transfers buffers, restarts a crashed thread). The pool is started once per process
 * (sharedPrepPool) and reused by every stage; readers are a second, elastic piscina pool because a reader holds its
 * thread for a whole shard and waits on the stage, which must never wait on a thread a reader holds. Size: one
 * thread per core but the stage's own (RECAPTION_PREP_THREADS, `recaption worker --prep-threads`). Decoding and
 * resizing run in sharp's native code on libuv's pool (UV_THREADPOOL_SIZE, sized to the cores by bin/recaption.js;
 * sharp.concurrency() libvips threads per image): the prep threads run the JS around it (lookup-table normalise,
 * Pillow-exact resampling of alpha/CMYK images, stacking, float16, tokenising) and keep libuv's pool fed.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { MessageChannel, SHARE_ENV } from 'node:worker_threads';
import { Piscina } from 'piscina';
// sharp must be loaded by the main thread before threads that load it start (sharp's docs: glibc Linux keeps the
// shared libraries loaded only then); batches.ts loads it through preprocess.ts.
import { prepareBatch, preparedBatch, readRawBatches, tokenizeTexts, type BatchPrep, type PreparedBatch, type PrepareTask, type PreparedData, type RawBatch, type ShardRead } from './batches';
import type { TextRecipe, TokenBatch } from '../models/types';
import { storageOptionsHere } from '../storage';
import { decodeError, unwrap, type Outcome, type ReaderControl, type ReaderMessage } from './prep-protocol';

/** Per sample of a batch: other texts to tokenise with the batch (the captions a stage scores), or null. */
export type TextsAt = (position: number) => string[] | null;

export interface PrepPool {
  /** threads preparing batches; 0: on the calling thread */
  readonly threads: number;
  /** The shard's prepared batches, in tar order, prepared ahead of the caller. */
  batches(read: ShardRead, prep: BatchPrep, textsAt?: TextsAt): AsyncGenerator<PreparedBatch>;
  /** Texts tokenised off the calling thread (where there are threads). */
  tokenize(recipe: TextRecipe, texts: readonly string[]): Promise<TokenBatch>;
  /**
   * The caller is done with a batch (its models have run): its pixel buffers are reused for later batches, so its
   * tensors must not be read after. Optional — a batch not recycled is garbage-collected — but recycling spares
   * allocating, page-faulting and collecting tens of MB per batch.
   */
  recycle(batch: PreparedBatch): void;
  close(): Promise<void>;
}

const WORKER_ENTRY = path.join(__dirname, 'prep-worker.js');
/** Shards read at once by one process (more wait for a reader thread). */
const MAX_READERS = 32;

/** Recycled pixel buffers; at most a few batches' worth are kept. */
class Spares {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly max: number) {}

  add(buffers: ArrayBuffer[]): void {
    for (const b of buffers) if (b.byteLength > 0 && this.free.length < this.max) this.free.push(b); // a detached one has none
  }

  /** As many as a batch of `prep` stacks into (one per model). */
  take(prep: BatchPrep): ArrayBuffer[] {
    const n = [prep.captioner, prep.clip].filter((r) => r).length;
    return this.free.splice(0, n);
  }
}

function taskOf(raw: RawBatch, prep: BatchPrep, textsAt: TextsAt | undefined, reuse: ArrayBuffer[]): PrepareTask {
  return { raw, prep, texts: textsAt ? raw.samples.map((s) => textsAt(s.position)) : null, reuse };
}

/** Preparing on the calling thread, one batch ahead (sharp still decodes on libuv's threads meanwhile). */
class InlinePrepPool implements PrepPool {
  readonly threads = 0;
  private readonly spares = new Spares(8);

  async *batches(read: ShardRead, prep: BatchPrep, textsAt?: TextsAt): AsyncGenerator<PreparedBatch> {
    const start = (raw: RawBatch): Promise<PreparedBatch> => {
      const p = prepareBatch(taskOf(raw, prep, textsAt, this.spares.take(prep))).then((d) => preparedBatch(raw.samples, d));
      p.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection in between
      return p;
    };
    let pending: Promise<PreparedBatch> | null = null;
    for await (const raw of readRawBatches(read)) {
      const next = start(raw);
      if (pending) yield await pending;
      pending = next;
    }
    if (pending) yield await pending;
  }

  tokenize(recipe: TextRecipe, texts: readonly string[]): Promise<TokenBatch> {
    return tokenizeTexts(recipe, texts);
  }

  recycle(batch: PreparedBatch): void {
    this.spares.add(batch.pixelBuffers);
  }

  async close(): Promise<void> {}
}

export class ThreadPrepPool implements PrepPool {
  private readonly workers: Piscina;
  private readonly readers: Piscina;
  private readonly spares: Spares;

  constructor(readonly threads: number) {
    // Handing buffers back and forth instead of allocating each batch anew: on this thread, a batch then costs a
    // young-generation collection or two (V8 still counts each buffer that arrives as new external memory) instead of
    // full mark-compacts; the threads stack into pages already mapped.
    this.spares = new Spares(4 * (threads + 2));
    // SHARE_ENV: the threads see the process's environment as it is now, not as it was when they started (the
    // storage settings of the stage's thread are passed with each shard: under jest its environment is its own).
    const common = { filename: WORKER_ENTRY, env: SHARE_ENV } as const;
    this.workers = new Piscina({ ...common, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
    this.readers = new Piscina({ ...common, minThreads: 0, maxThreads: MAX_READERS, idleTimeout: 60_000 });
  }

  async *batches(read: ShardRead, prep: BatchPrep, textsAt?: TextsAt): AsyncGenerator<PreparedBatch> {
    const { port1: port, port2 } = new MessageChannel();
    const queue: Array<Promise<PreparedBatch>> = [];
    let ended = false;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    const end = (err: Error | null) => {
      if (ended) return;
      ended = true;
      failure = err;
      notify();
    };
    port.on('message', (m: ReaderMessage) => {
      if ('batch' in m) {
        const p = this.prepare(m.batch, prep, textsAt);
        p.catch(() => undefined); // surfaced when its turn comes
        queue.push(p);
        notify();
      } else end('error' in m ? decodeError(m.error) : null);
    });
    // The reader's last message is `done` or `error`; its port closes after it (a close delivered after the port's
    // messages). A port that closes without one, or a reader thread that dies, ends the stream as a failure.
    port.on('close', () => end(new Error(`reading ${read.tar}: the reader thread stopped without finishing`)));
    const reading = this.readers.run({ storage: storageOptionsHere(), ...read, port: port2 }, { name: 'read', transferList: [port2] });
    reading.catch((err: unknown) => end(err instanceof Error ? err : new Error(String(err))));
    const control = (m: ReaderControl) => port.postMessage(m);
    control({ credit: this.threads + 1 });
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          control({ credit: 1 });
          yield await next;
          continue;
        }
        if (ended) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      control({ stop: true });
      port.close();
    }
  }

  private async prepare(raw: RawBatch, prep: BatchPrep, textsAt: TextsAt | undefined): Promise<PreparedBatch> {
    const reuse = this.spares.take(prep);
    const out = (await this.workers.run(taskOf(raw, prep, textsAt, reuse), { name: 'prepare', transferList: [raw.bytes, ...reuse] })) as Outcome<PreparedData>;
    return preparedBatch(raw.samples, unwrap(out));
  }

  recycle(batch: PreparedBatch): void {
    this.spares.add(batch.pixelBuffers);
  }

  async tokenize(recipe: TextRecipe, texts: readonly string[]): Promise<TokenBatch> {
    return unwrap((await this.workers.run({ recipe, texts }, { name: 'tokenize' })) as Outcome<TokenBatch>);
  }

  /** The native packages a prep thread has loaded (tests). */
  async nativePackages(): Promise<string[]> {
    return (await this.workers.run(null, { name: 'nativePackages' })) as string[];
  }

  async close(): Promise<void> {
    await Promise.all([this.workers.destroy(), this.readers.destroy()]);
  }
}

/** A pool of `threads` preparing threads (0: prepare on the calling thread). */
export function createPrepPool(threads: number): PrepPool {
  if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`prep threads must be a non-negative integer, got ${threads}`);
  return threads === 0 ? new InlinePrepPool() : new ThreadPrepPool(threads);
}

/** RECAPTION_PREP_THREADS, else one per core but the stage's own (at least one). */
export function defaultPrepThreads(): number {
  const set = process.env.RECAPTION_PREP_THREADS;
  if (set !== undefined && set !== '') {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`RECAPTION_PREP_THREADS must be a non-negative integer, got ${JSON.stringify(set)}`);
    return n;
  }
  return Math.max(1, availableParallelism() - 1);
}

let shared: PrepPool | undefined;
let sharedThreads: number | undefined;

/** Sets the size of the process's pool (before its first use; a started pool of another size is replaced). */
export async function setPrepThreads(threads: number): Promise<void> {
  if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`prep threads must be a non-negative integer, got ${threads}`);
  sharedThreads = threads;
  if (shared && shared.threads !== threads) {
    const old = shared;
    shared = undefined;
    await old.close();
  }
}

/** The process's pool, started on first use and reused by every stage after. */
export function sharedPrepPool(): PrepPool {
  return (shared ??= createPrepPool(sharedThreads ?? defaultPrepThreads()));
}

/** Stops the process's pool (worker shutdown); a later use starts a new one. */
export async function closeSharedPrepPool(): Promise<void> {
  const old = shared;
  shared = undefined;
  await old?.close();
}

