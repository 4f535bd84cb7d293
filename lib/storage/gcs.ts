import { Storage as GcsClient, type File } from '@google-cloud/storage';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InputError } from '../errors';
import { endWritable } from './end-writable';
import { gcsInputError, isMissingBucket, type StorageOp } from './errors';
import { StorageReads } from './reads';
import type { AtomicWriter, Storage, StorageStat } from './types';
import { gcsUri, parseGcsUri } from './uri';

/**
 * Storage over Google Cloud Storage (or anything speaking its JSON API, e.g. fake-gcs-server).
 * Atomicity comes from GCS itself: an object becomes visible only when its upload completes, so a
 * failed or aborted upload never leaves a partial object (no temp name + rename needed).
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

  async writeAtomic(uri: string, data: Buffer | string): Promise<void> {
    // Single-request (multipart) upload: the object exists only once the request succeeds.
    const file = this.file(uri);
    await this.guarded('write', uri, () => file.save(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { resumable: false }));
  }

  async openAtomicWriter(uri: string): Promise<AtomicWriter> {
    // Resumable upload: survives transient network errors on large shards, and the object is only
    // finalised when the last chunk is accepted, so nothing is visible before commit().
    const upload = this.file(uri).createWriteStream({ resumable: true });
    // Callers write into `stream`, piped to the upload, so the upload's errors reach them classified (a missing
    // bucket, no permission: not retried) wherever they surface — on a write, on close, or at commit().
    const stream = new PassThrough();
    let state: 'open' | 'committed' | 'aborted' = 'open';
    let failure: Error | undefined;
    upload.on('error', (err: Error) => {
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
          await finished(stream); // every byte handed to the upload, which the pipe then ends
          await endWritable(upload);
          if (failure) throw failure;
          state = 'committed';
        } catch (err) {
          state = 'aborted';
          stream.destroy();
          upload.destroy();
          throw failure ?? this.classified(err, 'write', uri);
        }
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

function statOf(meta: File['metadata']): StorageStat {
  const updated = meta.updated ?? meta.timeCreated;
  const size = Number(meta.size ?? 0);
  // CRC32C is present on every object (MD5 is not, on composite uploads); the generation is the last resort.
  const checksum = meta.crc32c ? `crc32c=${meta.crc32c}` : meta.md5Hash ? `md5=${meta.md5Hash}` : `generation=${meta.generation}`;
  return { size, mtimeMs: updated ? Date.parse(updated) : 0, fingerprint: `${size}:${checksum}` };
}
