import { PassThrough, type Readable } from 'node:stream';
import { InputError } from '../errors';
import type { StorageOp } from './errors';
import type { Storage } from './types';

/**
 * What every backend shares: the read half of `Storage`, and one way of reporting errors. An absent object is
 * reported one way whatever the backend, `InputError('MissingInput')` naming the uri, because callers branch on that
 * type; an error the input or the config caused (no permission, a bad path, no bucket) becomes the `InputError` the
 * backend classifies it as (lib/storage/errors.ts), so it is not retried; a backend only says how to fetch bytes,
 * what its own "not found" looks like, and how its errors classify.
 */
export abstract class StorageReads implements Pick<Storage, 'readBuffer' | 'readText' | 'createReadStream'> {
  /** True when a backend error means the object does not exist. */
  protected abstract isNotFound(err: unknown): boolean;
  /** The InputError a backend error stands for, or undefined when waiting may heal it. */
  protected abstract inputError(err: unknown, op: StorageOp, uri: string): InputError | undefined;
  /** The whole object; may fail with the backend's own not-found error. */
  protected abstract fetchBuffer(uri: string): Promise<Buffer>;
  /** The object as a stream; may emit the backend's own not-found error. */
  protected abstract openStream(uri: string): Readable;

  readBuffer(uri: string): Promise<Buffer> {
    return this.guarded('read', uri, () => this.fetchBuffer(uri));
  }

  async readText(uri: string): Promise<string> {
    return (await this.readBuffer(uri)).toString('utf8');
  }

  createReadStream(uri: string): Readable {
    // A PassThrough lets us turn the backend's errors into typed ones (MissingInput, PermissionDenied...).
    const out = new PassThrough();
    const src = this.openStream(uri);
    src.on('error', (err) => out.destroy(this.classified(err, 'read', uri) as Error));
    out.on('close', () => src.destroy());
    src.pipe(out);
    return out;
  }

  /** A backend error as callers see it: MissingInput for a read of nothing, else classified, else as it was. */
  protected classified(err: unknown, op: StorageOp, uri: string): unknown {
    if (op === 'read' && this.isNotFound(err)) return new InputError('MissingInput', `input not found: ${uri}`);
    return this.inputError(err, op, uri) ?? err;
  }

  /** Run one backend call, its errors classified. */
  protected async guarded<T>(op: StorageOp, uri: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.classified(err, op, uri);
    }
  }
}
