/** Versions and model-file hashes for the run manifest: what produced these outputs, exactly. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';

function pkgVersion(name: string): string | null {
  // `name/package.json` is hidden by some packages' exports maps: find it from the package's entry instead.
  try {
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? null;
      }
      const up = path.dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  } catch {
    return null;
  }
}

export function softwareVersions(): Record<string, string | null> {
  return {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    recaption: (require('../../package.json') as { version: string }).version,
    node: process.version,
    'onnxruntime-node': pkgVersion('onnxruntime-node'),
    sharp: pkgVersion('sharp'),
    '@temporalio/worker': pkgVersion('@temporalio/worker'),
    '@huggingface/tokenizers': pkgVersion('@huggingface/tokenizers'),
  };
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** sha256 of every file of a local model folder (config, tokenizer, onnx/*), keyed by relative path. */
export async function modelFileHashes(dir: string): Promise<Record<string, string>> {
  if (dir.startsWith('gs://')) return {};
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && !e.name.startsWith('.')) out[path.relative(dir, p)] = await sha256File(p);
    }
  };
  await walk(dir);
  return out;
}
