import { Storage as GcsClient } from '@google-cloud/storage';
import { GcsStorage } from './gcs';
import { LocalStorage } from './local';
import type { Storage, StorageOptions } from './types';
import { isGcsUri } from './uri';

export type { AtomicWriter, Commit, CommitOptions, Storage, StorageOptions, StorageStat } from './types';
export { baseName, isGcsUri, joinUri, localPath, parseGcsUri } from './uri';
export { LocalStorage } from './local';
export { GcsStorage } from './gcs';

const local = new LocalStorage();
/** One GCS client per endpoint+project: clients hold auth and HTTP agents worth reusing. */
const gcsClients = new Map<string, GcsStorage>();

/** The Storage for a uri's scheme: `gs://` goes to GCS, everything else to the local filesystem. */
export function storageFor(uri: string, opts: StorageOptions = {}): Storage {
  if (!isGcsUri(uri)) return local;
  const apiEndpoint = opts.gcsApiEndpoint ?? process.env.STORAGE_EMULATOR_HOST;
  const projectId = opts.gcsProjectId;
  const cacheKey = `${apiEndpoint ?? ''}|${projectId ?? ''}`;
  let storage = gcsClients.get(cacheKey);
  if (!storage) {
    storage = new GcsStorage(
      withoutEmulatorEnv(
        () =>
          new GcsClient({
            ...(apiEndpoint ? { apiEndpoint: withScheme(apiEndpoint) } : {}),
            ...(projectId ? { projectId } : {}),
          }),
      ),
    );
    gcsClients.set(cacheKey, storage);
  }
  return storage;
}

/**
 * The options storageFor takes from this thread's environment (STORAGE_EMULATOR_HOST), for another thread to pass
 * to its storageFor: a worker thread has an environment of its own (and under jest, the test's is not the process's).
 */
export function storageOptionsHere(): StorageOptions {
  const endpoint = process.env.STORAGE_EMULATOR_HOST;
  return endpoint ? { gcsApiEndpoint: endpoint } : {};
}

/**
 * STORAGE_EMULATOR_HOST is often given as `host:port` (fake-gcs-server's docs) or with `/storage/v1`; the
 * client wants a bare origin as apiEndpoint. Any path is dropped.
 */
function withScheme(endpoint: string): string {
  const url = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  return new URL(url).origin;
}

/**
 * @google-cloud/storage 7 uses STORAGE_EMULATOR_HOST verbatim as its JSON API base URL (no `/storage/v1`), so
 * listing breaks against fake-gcs-server while uploads work. We pass the endpoint as apiEndpoint instead and
 * hide the variable while the client is built (it reads it only in its constructor and for signed policies).
 */
function withoutEmulatorEnv<T>(build: () => T): T {
  const saved = process.env.STORAGE_EMULATOR_HOST;
  delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return build();
  } finally {
    if (saved !== undefined) process.env.STORAGE_EMULATOR_HOST = saved;
  }
}
