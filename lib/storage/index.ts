import { Storage as GcsClient } from '@google-cloud/storage';
import { GcsStorage } from './gcs';
import { LocalStorage } from './local';
import type { Storage, StorageOptions } from './types';
import { isGcsUri } from './uri';

export type { AtomicWriter, Storage, StorageOptions, StorageStat } from './types';
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
      new GcsClient({
        ...(apiEndpoint ? { apiEndpoint: withScheme(apiEndpoint) } : {}),
        ...(projectId ? { projectId } : {}),
      }),
    );
    gcsClients.set(cacheKey, storage);
  }
  return storage;
}

/** STORAGE_EMULATOR_HOST is often given as `host:port`; the client needs a scheme. */
function withScheme(endpoint: string): string {
  return /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
}
