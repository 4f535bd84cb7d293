import { Storage as GcsClient, type File } from '@google-cloud/storage';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InputError } from '../errors';
import { endWritable } from './end-writable';
import { gcsInputError, isMissingBucket, isPreconditionFailed, type StorageOp } from './errors';
import { StorageReads } from './reads';
import type { AtomicWriter, Commit, CommitOptions, Storage, StorageStat } from './types';
import { gcsUri, parseGcsUri } from './uri';

/**
 * Storage over Google Cloud Storage (or anything speaking its JSON API, e.g. fake-gcs-server).
 * Atomicity comes from GCS itself: an object becomes visible only when its upload completes, so a
 * failed or aborted upload never leaves a partial object (no temp name + rename needed). No-clobber commits
 * (the default, see CommitOptions) carry the precondition `ifGenerationMatch: 0` — "only if no live object has
 * this name" — which GCS checks when it finalises the object, so of racing uploads exactly one creates it and the
 * others get 412; the client library retries such conditional uploads on transient errors by itself.
 */
export class GcsStorage extends StorageReads implements Storage {
  constructor(private readonly client: GcsClient) {
    super();
  }

  protected isNotFound(err: unknown): boolean {
    return (err as { code?: unknown } | null)?.code === 404 && !isMissingBucket(err);
  }

  protected inputError(err: unknown, op: StorageOp, uri: string) {
    return gcsInputError(err, op, uri);
  }

  private file(uri: string): File {
    const { bucket, key } = parseGcsUri(uri);
    if (!key) throw new InputError('InvalidUri', `gs:// uri names a bucket, not an object: ${uri}`);
    return this.client.bucket(bucket).file(key);
  }

  async exists(uri: string): Promise<boolean> {
    // By stat, not File.exists(), which answers false for a bucket that does not exist either.
    return (await this.stat(uri)) !== null;
  }

  protected async fetchBuffer(uri: string): Promise<Buffer> {
    const [buf] = await this.file(uri).download();
    return buf;
  }

  protected openStream(uri: string): Readable {
    try {
      return this.file(uri).createReadStream();
    } catch (err) {
      // file() throws InvalidUri for a bucket-only uri: report it on the stream, like every other read failure.
      const failed = new PassThrough();
      process.nextTick(() => failed.destroy(err as Error));
      return failed;
    }
  }

  async writeAtomic(uri: string, data: Buffer | string, opts: CommitOptions = {}): Promise<Commit> {
    // Single-request (multipart) upload: the object exists only once the request succeeds.
    const file = this.file(uri);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      await file.save(body, { resumable: false, ...uploadPreconditions(opts) });
      return { committed: true };
    } catch (err) {
      if (!opts.replace && isPreconditionFailed(err)) return this.lostRace(uri);
      throw this.classified(err, 'write', uri);
    }
  }

  async openAtomicWriter(uri: string, opts: CommitOptions = {}): Promise<AtomicWriter> {
    // Resumable upload: survives transient network errors on large shards, and the object is only
    // finalised when the last chunk is accepted, so nothing is visible before commit().
    const upload = this.file(uri).createWriteStream({ resumable: true, ...uploadPreconditions(opts) });
    // Callers write into `stream`, piped to the upload, so the upload's errors reach them classified (a missing
    // bucket, no permission: not retried) wherever they surface — on a write, on close, or at commit().
    const stream = new PassThrough();
    let state: 'open' | 'committed' | 'aborted' = 'open';
    let failure: Error | undefined;
    // A lost race (412) can surface before the caller has written everything (GCS may check the precondition when
    // the upload starts): the caller's bytes are then drained, not failed, and commit() reports the winner's object.
    let lost = false;
    upload.on('error', (err: Error) => {
      if (lost) return; // the refused upload's aftermath, if any
      if (!opts.replace && isPreconditionFailed(err) && !failure) {
        lost = true;
        stream.unpipe(upload);
        stream.resume();
        return;
      }
      failure ??= this.classified(err, 'write', uri) as Error;
      stream.destroy(failure);
    });
    // Keep a listener so an error before commit() is remembered instead of crashing the process.
    stream.on('error', (err: Error) => {
      failure ??= err;
    });
    stream.pipe(upload);
    return {
      stream,
      commit: async () => {
        if (state !== 'open') throw new Error(`atomic writer for ${uri} already ${state}`);
        try {
          if (failure) throw failure;
          if (!stream.writableEnded) stream.end();
          await finished(stream); // every byte handed to the upload (or drained after a lost race)
          if (!lost) await endWritable(upload).catch((err: unknown) => (lost ? undefined : Promise.reject(err)));
          if (failure) throw failure;
          state = 'committed';
        } catch (err) {
          state = 'aborted';
          stream.destroy();
          upload.destroy();
          throw failure ?? this.classified(err, 'write', uri);
        }
        return lost ? this.lostRace(uri) : { committed: true };
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        stream.destroy();
        upload.destroy(new Error(`upload of ${uri} aborted`));
        await finished(upload).catch(() => undefined);
      },
    };
  }

  /**
   * A no-clobber upload was refused (412): another attempt committed the object first. Checked, not assumed — the
   * object must be there (were it deleted since, nothing is committed: fail, and let the retry write it).
   */
  private async lostRace(uri: string): Promise<Commit> {
    if (!(await this.exists(uri))) throw new Error(`upload of ${uri} was refused as already committed, but no object is there; retry`);
    return { committed: false };
  }

  /** Every object under the folder `prefixUri`, with its metadata, in one paginated listing. */
  private async filesUnder(prefixUri: string): Promise<{ bucket: string; files: File[] }> {
    const { bucket, key } = parseGcsUri(prefixUri);
    // Folder semantics, as for local paths: `run` must not match `run2/...`.
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const [files] = await this.guarded('list', prefixUri, () => this.client.bucket(bucket).getFiles({ prefix, autoPaginate: true }));
    return { bucket, files };
  }

  async list(prefixUri: string): Promise<string[]> {
    const { bucket, files } = await this.filesUnder(prefixUri);
    return files.map((f) => gcsUri(bucket, f.name)).sort();
  }

  async listStats(prefixUri: string): Promise<Array<StorageStat & { uri: string }>> {
    const { bucket, files } = await this.filesUnder(prefixUri);
    return files.map((f) => ({ uri: gcsUri(bucket, f.name), ...statOf(f.metadata) })).sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  }

  async remove(uri: string): Promise<void> {
    const file = this.file(uri);
    await this.guarded('remove', uri, () => file.delete({ ignoreNotFound: true }));
  }

  async stat(uri: string): Promise<StorageStat | null> {
    try {
      const [meta] = await this.file(uri).getMetadata();
      return statOf(meta);
    } catch (err) {
      if (this.isNotFound(err)) return null;
      throw this.classified(err, 'stat', uri);
    }
  }
}

/** `ifGenerationMatch: 0` (create only) unless the caller replaces on purpose. */
function uploadPreconditions(opts: CommitOptions): { preconditionOpts?: { ifGenerationMatch: number } } {
  return opts.replace ? {} : { preconditionOpts: { ifGenerationMatch: 0 } };
}

function statOf(meta: File['metadata']): StorageStat {
  const updated = meta.updated ?? meta.timeCreated;
  const size = Number(meta.size ?? 0);
  // CRC32C is present on every object (MD5 is not, on composite uploads); the generation is the last resort.
  const checksum = meta.crc32c ? `crc32c=${meta.crc32c}` : meta.md5Hash ? `md5=${meta.md5Hash}` : `generation=${meta.generation}`;
  return { size, mtimeMs: updated ? Date.parse(updated) : 0, fingerprint: `${size}:${checksum}` };
}
