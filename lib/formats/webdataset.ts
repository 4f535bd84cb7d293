/**
 * WebDataset tar shards: a sample is the run of consecutive tar members sharing a key, e.g.
 * `000000000042.jpg`, `000000000042.txt`, `000000000042.json`. Read and write stream one sample at a time
 * so a multi-GB shard never sits in memory.
 */
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { InputError } from '../errors';

export interface WdsSample {
  /** Member path up to the first dot of its basename (directory prefix kept, as webdataset does). */
  key: string;
  /** Extension (everything after that first dot, lower-cased, no leading dot) -> bytes: 'jpg', 'txt', 'json'. */
  files: Record<string, Buffer>;
}

export interface ReadWebDatasetOptions {
  /** Shard name used in error messages (e.g. its uri). */
  name?: string;
}

/**
 * Split a tar member path into key and extension like webdataset's `base_plus_ext`:
 * `dir/000001.seg.npy` -> key `dir/000001`, ext `seg.npy`. Returns null for members with no extension.
 */
export function splitMemberName(name: string): { key: string; ext: string } | null {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return null;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

/**
 * Why a key cannot be written as tar member names `{key}.{ext}` that read back as the same key, or null. Folders are
 * fine (`v1.0/000001`: webdataset splits at the first dot of the basename), but not an empty, absolute or `..` path
 * (it would leave the output prefix when extracted) nor a dot in the basename (it would split the key).
 */
export function unsafeKeyReason(key: string): string | null {
  if (!key) return 'empty key';
  if (key.startsWith('/')) return 'absolute path';
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return 'empty, "." or ".." path segment';
  if (parts.at(-1)!.includes('.')) return 'dot in the file name';
  return null;
}

/** webdataset skips `__meta__`-style members (e.g. `__index__`); we do too. */
const META_RE = /(^|\/)__[^/]*__($|\/)/;

/**
 * Stream the samples of a WebDataset tar in file order. Each yielded sample owns its buffers; only the
 * current sample is held in memory. A truncated or corrupt tar throws `InputError('CorruptShard')` naming
 * the shard when the damage is reached (samples before it have already been yielded). Errors of the source
 * stream itself (I/O, MissingInput) are re-thrown unchanged so infra failures stay retryable.
 */
export async function* readWebDataset(stream: Readable, opts: ReadWebDatasetOptions = {}): AsyncGenerator<WdsSample> {
  const shard = opts.name ?? 'webdataset shard';
  const extract = tar.extract();
  let sourceError: unknown;
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('error', (err) => {
    sourceError = err;
    extract.destroy(err);
  });
  stream.pipe(extract as unknown as Writable);

  let current: WdsSample | null = null;
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      const parts = type === 'file' || type === 'contiguous-file' ? splitMemberName(name) : null;
      if (!parts || META_RE.test(name)) {
        entry.resume(); // skip directories, links and extension-less members, as webdataset does
        continue;
      }
      const data = await readEntry(entry);
      if (current && current.key !== parts.key) {
        yield current;
        current = null;
      }
      current ??= { key: parts.key, files: {} };
      if (parts.ext in current.files) {
        throw new InputError('CorruptShard', `${shard}: duplicate member ${name} in sample ${parts.key}`);
      }
      current.files[parts.ext] = data;
    }
  } catch (err) {
    if (err instanceof InputError || (sourceError !== undefined && err === sourceError)) throw err;
    throw new InputError('CorruptShard', `${shard}: corrupt or truncated tar: ${(err as Error).message}`);
  } finally {
    stream.unpipe(extract as unknown as Writable);
    extract.destroy();
    stream.destroy();
  }
  // An empty file is no tar (Python's tarfile refuses it too), not an empty shard.
  if (bytes === 0) throw new InputError('CorruptShard', `${shard}: zero-byte file, not a tar`);
  if (current) yield current;
}

async function readEntry(entry: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

export interface WebDatasetWriterOptions {
  /** mtime of every member. Fixed (default: 0 = 1970-01-01) so the same samples give the same bytes. */
  mtime?: Date;
  /** File mode of every member (webdataset's TarWriter uses 0o444). */
  mode?: number;
  /** Owner names, as webdataset's TarWriter writes them. */
  uname?: string;
  gname?: string;
}

/**
 * Writes samples as tar members `{key}.{ext}`, each sample's members contiguous, in the order of the
 * sample's `files` object. Headers are deterministic (fixed mtime, uid/gid 0, mode, names), so output is
 * byte-reproducible; OpenCLIP / python `webdataset` read it as written by `webdataset.TarWriter`.
 * `write()` resolves once the destination has accepted the bytes (backpressure): await it.
 */
export class WebDatasetWriter {
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;
  private readonly header: { mtime: Date; mode: number; uname: string; gname: string };
  private failure: unknown;
  private closed = false;
  private lastKey: string | undefined;
  /** Number of samples written so far. */
  count = 0;

  constructor(dest: Writable, opts: WebDatasetWriterOptions = {}) {
    this.header = {
      mtime: opts.mtime ?? new Date(0),
      mode: opts.mode ?? 0o444,
      uname: opts.uname ?? 'bigdata',
      gname: opts.gname ?? 'bigdata',
    };
    this.done = pipeline(this.pack as unknown as Readable, dest);
    this.done.catch((err: unknown) => {
      this.failure ??= err;
    });
    // pipeline() stops listening once it has failed; a later error of the pack (an entry written after the
    // destination broke) must be remembered, not crash the process as an unhandled 'error' event.
    this.pack.on('error', (err: unknown) => {
      this.failure ??= err;
    });
  }

  async write(sample: WdsSample): Promise<void> {
    if (this.closed) throw new Error('WebDatasetWriter is closed');
    if (this.failure) throw this.failure;
    const { key, files } = sample;
    const unsafe = unsafeKeyReason(key);
    if (unsafe) throw new Error(`invalid webdataset key ${JSON.stringify(key)}: ${unsafe}`);
    if (key === this.lastKey) throw new Error(`sample key ${key} written twice in a row (would merge samples)`);
    const exts = Object.keys(files);
    if (exts.length === 0) throw new Error(`sample ${key} has no files`);
    for (const ext of exts) {
      if (!ext || ext.startsWith('.') || ext.includes('/')) throw new Error(`invalid extension ${JSON.stringify(ext)} in sample ${key}`);
      await this.entry(`${key}.${ext}`, files[ext]);
    }
    this.lastKey = key;
    this.count++;
  }

  /** Finish the tar (end-of-archive blocks) and wait until the destination has flushed it. */
  async close(): Promise<void> {
    if (this.closed) return this.done;
    this.closed = true;
    if (this.failure) throw this.failure;
    this.pack.finalize();
    await this.done;
  }

  /** Abandon the tar: the destination is destroyed (pair with AtomicWriter.abort()). */
  destroy(err?: Error): void {
    this.closed = true;
    this.pack.destroy(err);
  }

  private entry(name: string, data: Buffer | Uint8Array | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return new Promise<void>((resolve, reject) => {
      // The callback fires once tar-stream's buffer has room again, i.e. the consumer has caught up.
      this.pack.entry({ name, size: buf.byteLength, type: 'file', uid: 0, gid: 0, ...this.header }, buf, (err) =>
        err ? reject(this.failure ?? err) : resolve(),
      );
    });
  }
}
