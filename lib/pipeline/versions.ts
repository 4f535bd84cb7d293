/** Versions and model-file hashes for the run manifest: what produced these outputs, exactly. */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { modelIdentity } from '../models/identity';

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

/** sha256 of every file of a local model folder (config, tokenizer, onnx/*), keyed by relative path. */
export async function modelFileHashes(dir: string): Promise<Record<string, string>> {
  if (dir.startsWith('gs://')) return {};
  return (await modelIdentity(dir)).files;
}
