import { PassThrough, type Readable } from 'node:stream';
import { InputError } from '../errors';
import type { Storage } from './types';

/**
 * The read half of `Storage` that every backend shares. An absent object is reported one way whatever the
 * backend, `InputError('MissingInput')` naming the uri, because callers branch on that type; a backend only says
 * how to fetch bytes and what its own "not found" error looks like.
 */
export abstract class StorageReads implements Pick<Storage, 'readBuffer' | 'readText' | 'createReadStream'> {
  /** True when a backend error means the object does not exist. */
  protected abstract isNotFound(err: unknown): boolean;
  /** The whole object; may fail with the backend's own not-found error. */
  protected abstract fetchBuffer(uri: string): Promise<Buffer>;
  /** The object as a stream; may emit the backend's own not-found error. */
  protected abstract openStream(uri: string): Readable;

  async readBuffer(uri: string): Promise<Buffer> {
    try {
      return await this.fetchBuffer(uri);
    } catch (err) {
      throw this.missingOr(uri, err);
    }
  }

  async readText(uri: string): Promise<string> {
    return (await this.readBuffer(uri)).toString('utf8');
  }

  createReadStream(uri: string): Readable {
    // A PassThrough lets us turn the backend's not-found error into the typed MissingInput.
    const out = new PassThrough();
    const src = this.openStream(uri);
    src.on('error', (err) => out.destroy(this.missingOr(uri, err) as Error));
    out.on('close', () => src.destroy());
    src.pipe(out);
    return out;
  }

  private missingOr(uri: string, err: unknown): unknown {
    return this.isNotFound(err) ? new InputError('MissingInput', `input not found: ${uri}`) : err;
  }
}
