import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { endWritable } from './end-writable';
import { localInputError, type StorageOp } from './errors';
import { StorageReads } from './reads';
import type { AtomicWriter, Commit, CommitOptions, Storage, StorageStat } from './types';
import { localPath } from './uri';

/** Temp files are `.{name}.tmp-{16 hex}` next to the target: same directory so rename(2) is atomic. */
const TEMP_RE = /^\..+\.tmp-[0-9a-f]{16}$/;

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(8).toString('hex')}`);
}

function waitClosed(stream: fs.WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory so a rename inside it survives a power loss (best effort: not all filesystems allow it). */
async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems (and platforms) refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** link(2) errors that mean the filesystem has no hard links (vfat, some FUSE and network mounts), not a refusal. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** What is at `target` after a lost race is a committed file; a folder there is a bad path, not a commit. */
async function checkCommitted(target: string): Promise<void> {
  const st = await fsp.stat(target);
  if (!st.isFile()) throw Object.assign(new Error(`${target} exists and is not a file`), { code: st.isDirectory() ? 'EISDIR' : 'EEXIST' });
}

/**
 * THE local commit: every write ends here, turning its finished (fsynced) temp file into the object at `target`.
 * No-clobber by default — link(2) creates the name only if nothing holds it (EEXIST otherwise), atomically, so of
 * two racing attempts exactly one wins, which an exists-check before a rename cannot promise; the temp name is
 * dropped after. The loser's temp file is removed and `committed: false` returned once the winner's file is
 * seen. `replace` renames over whatever is there. Where the filesystem has no hard links, an exists-check then
 * rename is the best it offers (a narrow race, never a half-written file).
 */
async function publish(tmp: string, target: string, opts: CommitOptions): Promise<Commit> {
  const dir = path.dirname(target);
  const lost = async (): Promise<Commit> => {
    await fsp.rm(tmp, { force: true });
    await checkCommitted(target);
    return { committed: false };
  };
  if (opts.replace) {
    await fsp.rename(tmp, target);
  } else {
    try {
      await fsp.link(tmp, target);
    } catch (err) {
      if (errCode(err) === 'EEXIST') return lost();
      if (!NO_HARD_LINKS.has(errCode(err) ?? '')) throw err;
      const present = await fsp.stat(target).then(
        () => true,
        (e: unknown) => {
          if (errCode(e) === 'ENOENT') return false;
          throw e;
        },
      );
      if (present) return lost();
      await fsp.rename(tmp, target);
    }
  }
  await fsyncDir(dir);
  // Linked: the temp name is now a second name of the committed file; drop it (a crash here leaves a hidden temp).
  if (!opts.replace) await fsp.rm(tmp, { force: true }).catch(() => undefined);
  return { committed: true };
}

/** Storage over the local filesystem. Uris are plain paths or `file://` URIs. */
export class LocalStorage extends StorageReads implements Storage {
  protected isNotFound(err: unknown): boolean {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }

  protected inputError(err: unknown, op: StorageOp, uri: string) {
    return localInputError(err, op, uri);
  }

  async exists(uri: string): Promise<boolean> {
    try {
      await fsp.access(localPath(uri));
      return true;
    } catch (err) {
      if (this.isNotFound(err)) return false;
      throw this.classified(err, 'stat', uri);
    }
  }

  protected fetchBuffer(uri: string): Promise<Buffer> {
    return fsp.readFile(localPath(uri));
  }

  protected openStream(uri: string): Readable {
    return fs.createReadStream(localPath(uri));
  }

  writeAtomic(uri: string, data: Buffer | string, opts: CommitOptions = {}): Promise<Commit> {
    return this.guarded('write', uri, async () => {
      const target = localPath(uri);
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const tmp = tempPathFor(target);
      try {
        const fh = await fsp.open(tmp, 'wx');
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return await publish(tmp, target, opts);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
    });
  }

  async openAtomicWriter(uri: string, opts: CommitOptions = {}): Promise<AtomicWriter> {
    const target = localPath(uri);
    const tmp = tempPathFor(target);
    // Open the file now so a bad path, permission or disk error surfaces here, not on the first write.
    const stream = await this.guarded('write', uri, async () => {
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const opened = fs.createWriteStream(tmp, { flags: 'wx' });
      await new Promise<void>((resolve, reject) => {
        opened.once('ready', () => {
          opened.off('error', reject);
          resolve();
        });
        opened.once('error', reject);
      });
      return opened;
    });
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const cleanup = async (): Promise<void> => {
      // Writes still queued fail with ERR_STREAM_DESTROYED; we are discarding them on purpose.
      stream.on('error', () => undefined);
      stream.destroy();
      await waitClosed(stream);
      await fsp.rm(tmp, { force: true });
    };
    return {
      stream,
      commit: async () => {
        if (state !== 'open') throw new Error(`atomic writer for ${uri} already ${state}`);
        try {
          if (stream.errored) throw stream.errored;
          await endWritable(stream);
          await waitClosed(stream);
          // fsync through a fresh descriptor: it flushes the file's data whichever fd wrote it.
          await fsyncFile(tmp);
          const result = await publish(tmp, target, opts);
          state = 'committed';
          return result;
        } catch (err) {
          state = 'aborted';
          await cleanup();
          throw this.classified(err, 'write', uri);
        }
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await cleanup();
      },
    };
  }

  async list(prefixUri: string): Promise<string[]> {
    const root = localPath(prefixUri);
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(root, { recursive: true, withFileTypes: true });
    } catch (err) {
      if (this.isNotFound(err)) return [];
      throw this.classified(err, 'list', prefixUri);
    }
    const out: string[] = [];
    for (const e of entries) {
      if (!e.isFile() || TEMP_RE.test(e.name)) continue;
      // Dirent.parentPath is Node >= 20.12; `path` is its older (deprecated) name.
      const dir = (e as fs.Dirent & { parentPath?: string }).parentPath ?? (e as fs.Dirent & { path: string }).path;
      const rel = path.relative(root, path.join(dir, e.name));
      out.push(prefixUri.startsWith('file://') ? `${prefixUri.replace(/\/+$/, '')}/${rel}` : path.join(prefixUri, rel));
    }
    return out.sort();
  }

  async listStats(prefixUri: string): Promise<Array<StorageStat & { uri: string }>> {
    const out: Array<StorageStat & { uri: string }> = [];
    for (const uri of await this.list(prefixUri)) {
      const s = await this.stat(uri);
      if (s) out.push({ uri, ...s }); // removed since the listing: not there
    }
    return out;
  }

  remove(uri: string): Promise<void> {
    return this.guarded('remove', uri, () => fsp.rm(localPath(uri), { force: true }));
  }

  async stat(uri: string): Promise<StorageStat | null> {
    try {
      const s = await fsp.stat(localPath(uri));
      return { size: s.size, mtimeMs: s.mtimeMs, fingerprint: `${s.size}:mtime=${s.mtimeMs}` };
    } catch (err) {
      if (this.isNotFound(err)) return null;
      throw this.classified(err, 'stat', uri);
    }
  }
}
