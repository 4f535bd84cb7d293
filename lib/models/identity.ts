/**
 * The content identity of a model folder: what addresses the annotations a model produced (lib/run/annotations.ts)
 * and what the manifest records. A sha256 per file (config, tokenizer, onnx/*, external data), cached per process
 * by path, size and modification time, so a multi-GB model is hashed once per worker however many runs use it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';

export interface ModelIdentity {
  /** sha256 (hex, 16 chars) over every file's relative path and content hash. */
  id: string;
  /** sha256 of every file, by relative path (sorted). */
  files: Record<string, string>;
}

const fileHashes = new Map<string, Promise<string>>();

function sha256File(file: string, size: number, mtimeMs: number): Promise<string> {
  const key = `${file}\0${size}\0${mtimeMs}`;
  let p = fileHashes.get(key);
  if (!p) {
    p = (async () => {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
      return h.digest('hex');
    })();
    p.catch(() => fileHashes.delete(key));
    fileHashes.set(key, p);
  }
  return p;
}

/** Identity of a local model folder (hidden files are left out); an absent folder has no files. */
export async function modelIdentity(dir: string): Promise<ModelIdentity> {
  const files: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      // stat follows symbolic links: a Hugging Face cache snapshot is a folder of links to blobs.
      const s = e.isSymbolicLink() ? await stat(p).catch(() => null) : null;
      if (e.isDirectory() || s?.isDirectory()) await walk(p);
      else if (e.isFile() || s?.isFile()) {
        const st = s ?? (await stat(p));
        files[path.relative(dir, p)] = await sha256File(p, st.size, st.mtimeMs);
      }
    }
  };
  await walk(dir);
  const h = createHash('sha256');
  for (const [rel, digest] of Object.entries(files)) h.update(`${rel}\0${digest}\n`);
  return { id: h.digest('hex').slice(0, 16), files };
}
