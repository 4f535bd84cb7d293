/** Optional cross-checks against the Python ecosystem (pyarrow, numpy, webdataset) when it is installed. */
import { spawnSync } from 'node:child_process';

const cache = new Map<string, boolean>();

/** True when `python3 -c "import m1, m2"` works. */
export function hasPython(...modules: string[]): boolean {
  const key = modules.join(',');
  let ok = cache.get(key);
  if (ok === undefined) {
    const r = spawnSync('python3', ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
    ok = r.status === 0;
    cache.set(key, ok);
  }
  return ok;
}

/** Run a Python snippet; returns stdout parsed as JSON (the snippet must print one JSON document). */
export function runPython<T = unknown>(code: string, args: string[] = []): T {
  const r = spawnSync('python3', ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
