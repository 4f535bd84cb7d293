import type { Readable, Writable } from 'node:stream';

/**
 * How a commit treats an object already at its uri. Every write is a commit (temp name or single upload, then
 * publish), and by default the FIRST commit wins: a retried or duplicated attempt (a Temporal retry while the
 * first attempt still runs, two workers, two processes) can never overwrite what another attempt committed —
 * on GCS by the precondition `ifGenerationMatch: 0`, locally by link(2), which fails if the name exists.
 */
export interface CommitOptions {
  /**
   * Replace whatever is at the uri (last commit wins). Only for outputs a later execution legitimately rewrites —
   * run-level views such as finalize's manifest and report, and files a user asked a command to (re)write.
   */
  replace?: boolean;
}

/** What a commit did. */
export interface Commit {
  /**
   * true: these bytes are now the object at the uri. false (never with `replace`): another attempt had committed
   * the uri first — checked to exist — and its object was left as it was; these bytes were dropped.
   */
  committed: boolean;
}

/**
 * A streaming write whose result appears at its uri only on `commit()`; `abort()` leaves nothing behind.
 * Stage outputs are written this way so a crashed or retried activity never leaves a half-written file
 * that a resumed run would mistake for committed work.
 */
export interface AtomicWriter {
  /** Write the bytes here; respect its backpressure (`write()` returning false / 'drain'). */
  readonly stream: Writable;
  /** Finish the stream and publish the object under its final name, by the writer's CommitOptions. */
  commit(): Promise<Commit>;
  /** Drop everything written so far. Safe to call after a failed commit, and more than once. */
  abort(): Promise<void>;
}

export interface StorageStat {
  size: number;
  mtimeMs: number;
  /**
   * Changes whenever the content does: on GCS the size and the object's CRC32C (a content checksum); locally the
   * size and the modification time (hashing every byte of a pool at plan time would cost as much as reading it).
   */
  fingerprint: string;
}

/** One interface over local paths (`/data/x`, `./x`, `file:///data/x`) and `gs://bucket/prefix` URIs. */
export interface Storage {
  exists(uri: string): Promise<boolean>;
  /** Whole object in memory. Throws `InputError('MissingInput')` naming the uri when it does not exist. */
  readBuffer(uri: string): Promise<Buffer>;
  /** UTF-8 text. Throws `InputError('MissingInput')` naming the uri when it does not exist. */
  readText(uri: string): Promise<string>;
  /** Streaming read; a missing object is reported as an `InputError('MissingInput')` 'error' event. */
  createReadStream(uri: string): Readable;
  /**
   * Whole-object write that is never visible half-written (temp name + commit), creating parent folders. Without
   * `replace`, an object already at `uri` is kept and `{ committed: false }` returned (see CommitOptions).
   */
  writeAtomic(uri: string, data: Buffer | string, opts?: CommitOptions): Promise<Commit>;
  /** Streaming variant of `writeAtomic`: nothing is visible at `uri` until `commit()`, which follows `opts` alike. */
  openAtomicWriter(uri: string, opts?: CommitOptions): Promise<AtomicWriter>;
  /**
   * Full uris of every object under the folder `prefixUri`, RECURSIVELY, sorted by plain string order.
   * `prefixUri` is treated as a folder: `gs://b/run` lists `gs://b/run/...` but not `gs://b/run2/...`.
   * A missing folder lists as []. Local temp files of uncommitted atomic writes are left out.
   */
  list(prefixUri: string): Promise<string[]>;
  /** Delete one object/file; deleting something absent is not an error (idempotent, retry-safe). */
  remove(uri: string): Promise<void>;
  /** Size, modification time and fingerprint, or null when absent. */
  stat(uri: string): Promise<StorageStat | null>;
  /** `list` with each object's stat, in one listing where the backend allows (GCS returns metadata with names). */
  listStats(prefixUri: string): Promise<Array<StorageStat & { uri: string }>>;
}

export interface StorageOptions {
  /** GCS JSON API endpoint, e.g. a fake-gcs-server `http://127.0.0.1:4443`. Default: env STORAGE_EMULATOR_HOST, else Google. */
  gcsApiEndpoint?: string;
  /** GCS project id (only needed for project-level calls such as bucket creation). */
  gcsProjectId?: string;
}
