/** The messages between the annotate stage and its preprocessing threads (prep-pool.ts, prep-worker.ts). */
import { InputError } from '../errors';
import type { RawBatch } from './batches';

/** An error as plain data: what crosses a thread boundary of it. */
export interface EncodedError {
  name: string;
  message: string;
  /** InputError's type */
  type?: string;
  /** a system error's code (ECONNRESET...) */
  code?: string;
  stack?: string;
}

/** A task's result or its error. */
export type Outcome<T> = { ok: T } | { error: EncodedError };

/** Reader thread -> stage. */
export type ReaderMessage = { batch: RawBatch } | { done: true } | { error: EncodedError };

/** Stage -> reader thread: read `credit` more batches ahead, or stop. */
export type ReaderControl = { credit: number } | { stop: true };

export function encodeError(err: unknown): EncodedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as NodeJS.ErrnoException).code;
  return {
    name: err.name,
    message: err.message,
    ...(err instanceof InputError ? { type: err.type } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(err.stack ? { stack: err.stack } : {}),
  };
}

/** The error again: an InputError stays one (never retried); any other keeps its name, message and code (retried). */
export function decodeError(e: EncodedError): Error {
  const err = e.name === 'InputError' && e.type !== undefined ? new InputError(e.type, e.message) : Object.assign(new Error(e.message), { name: e.name }, e.code ? { code: e.code } : {});
  if (e.stack) err.stack = `${err.stack}\n    --- in a preprocessing thread ---\n${e.stack}`;
  return err;
}

export function unwrap<T>(o: Outcome<T>): T {
  if ('error' in o) throw decodeError(o.error);
  return o.ok;
}
