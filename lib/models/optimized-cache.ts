/**
 * Optimised-model cache. ORT rewrites every graph at load (constant folding, fusions, layout changes), which for
 * a large export costs seconds to minutes on each worker start. With `optimizedModelCache` set, the first load
 * saves ORT's optimised graph (`optimizedModelFilePath`) and later loads take that file with optimisation
 * disabled. The file name carries a key over everything that decides the optimised graph: the source bytes
 * (external data files included), the ORT version, the execution provider, the level and the machine's CPU
 * (level `all` bakes in CPU-specific layouts). A changed model thus gets a new file; stale files are never
 * reused and may be deleted at any time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

export interface OptimizedCacheEntry {
  /** where the optimised graph is (hit) or goes once committed (miss) */
  file: string;
  hit: boolean;
}

export interface OptimizedKeyParts {
  /** execution provider, e.g. `cpu`, `cuda` */
  ep: string;
  level: 'basic' | 'extended' | 'all';
}

/** The cache entry for `source` (an ONNX file) under `cacheDir`. Hashes the source's bytes. */
export async function optimizedCacheEntry(cacheDir: string, source: string, parts: OptimizedKeyParts): Promise<OptimizedCacheEntry> {
  const hash = createHash('sha256');
  for (const f of await modelFiles(source)) {
    hash.update(`${path.basename(f)}\0`);
    await hashFile(hash, f);
  }
  hash.update(`\0ort=${ort.env.versions.common}\0ep=${parts.ep}\0level=${parts.level}`);
  hash.update(`\0machine=${process.platform}-${process.arch}-${os.cpus()[0]?.model ?? 'unknown-cpu'}`);
  const key = hash.digest('hex').slice(0, 24);
  const file = path.join(path.resolve(cacheDir), `${path.basename(source, '.onnx')}.${key}.onnx`);
  const hit = await fs.stat(file).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
  return { file, hit };
}

/** A unique temporary name next to `file`: ORT writes there, `commitOptimized` renames it into place. */
export async function optimizedTempFile(file: string): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Still ending in .onnx: ORT picks the format it saves in from the extension.
  return `${file.replace(/\.onnx$/, '')}.tmp-${process.pid}-${randomBytes(4).toString('hex')}.onnx`;
}

/** Atomic publish: concurrent writers of one key write identical graphs, so the last rename winning is fine. */
export async function commitOptimized(tmp: string, file: string): Promise<void> {
  await fs.rename(tmp, file);
}

export async function discard(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

/** The ONNX file plus its external-data siblings (`name.onnx_data`, `name.onnx.data`, `name.onnx_data_1`...). */
async function modelFiles(source: string): Promise<string[]> {
  const dir = path.dirname(source);
  const base = path.basename(source);
  const siblings = await fs.readdir(dir).catch(() => [] as string[]);
  const data = siblings.filter((n) => n !== base && (n.startsWith(`${base}_data`) || n.startsWith(`${base}.data`))).sort();
  return [source, ...data.map((n) => path.join(dir, n))];
}

function hashFile(hash: ReturnType<typeof createHash>, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
}
