/**
 * Per-process model cache: workers call `getCachedModel(key, loader)` on every activity and load each model once.
 * The promise is cached, so concurrent first calls share one load; a failed load is forgotten so a later call
 * can retry.
 */
import path from 'node:path';

const cache = new Map<string, Promise<unknown>>();
/** Keys whose load finished (a worker's "models loaded" metric reads them). */
const loaded = new Set<string>();

export function getCachedModel<T>(key: string, loader: () => Promise<T>): Promise<T> {
  const hit = cache.get(key);
  if (hit) return hit as Promise<T>;
  const loading = loader();
  cache.set(key, loading);
  loading.then(
    () => {
      if (cache.get(key) === loading) loaded.add(key);
    },
    () => {
      if (cache.get(key) === loading) cache.delete(key);
    },
  );
  return loading;
}

/** The cache keys of the models loaded in this process (`<kind>:<folder>:<options>`, see modelCacheKey). */
export function loadedModelKeys(): string[] {
  return [...loaded];
}

/** Releases every cached model that has a `release()` (worker shutdown, tests) and empties the cache. */
export async function releaseCachedModels(): Promise<void> {
  const entries = [...cache.values()];
  cache.clear();
  loaded.clear();
  await Promise.all(
    entries.map(async (p) => {
      const model = await p.catch(() => undefined);
      if (model && typeof (model as { release?: unknown }).release === 'function') await (model as { release(): Promise<void> }).release();
    }),
  );
}

/** A cache key for a model folder loaded with given options (absolute path + options, stable key order). */
export function modelCacheKey(kind: string, dir: string, opts: object = {}): string {
  const sorted = Object.fromEntries(Object.entries(opts).sort(([a], [b]) => a.localeCompare(b)));
  return `${kind}:${path.resolve(dir)}:${JSON.stringify(sorted)}`;
}
