/**
 * Which storage errors are the input's or the configuration's fault. Those become an `InputError` naming the uri, so
 * the run fails at once (non-retryable) with a message the user can act on; everything else — 5xx, 429, network
 * resets, a full disk — stays the backend's own error, which Temporal retries because waiting may heal it.
 * (An absent object is not classified here: reads report it as `MissingInput`, lib/storage/reads.ts.)
 */
import { InputError } from '../errors';
import { parseGcsUri } from './uri';

/** What a Storage call was doing: the same error means different things for a read and a write. */
export type StorageOp = 'read' | 'write' | 'list' | 'remove' | 'stat';

const VERB: Record<StorageOp, string> = { read: 'read', write: 'write', list: 'list', remove: 'remove', stat: 'look up' };

/** Local error codes that no retry heals, with the type and the reason shown. */
const LOCAL: Record<string, [type: 'PermissionDenied' | 'BadPath', reason: string]> = {
  EACCES: ['PermissionDenied', 'permission denied'],
  EPERM: ['PermissionDenied', 'operation not permitted'],
  EROFS: ['PermissionDenied', 'read-only file system'],
  ENOTDIR: ['BadPath', 'a part of the path is a file, not a folder'],
  EISDIR: ['BadPath', 'it is a folder, not a file'],
  ERR_FS_EISDIR: ['BadPath', 'it is a folder, not a file'], // fs.rm's own code for a folder
  ENAMETOOLONG: ['BadPath', 'a name in the path is too long'],
  EINVAL: ['BadPath', 'invalid path'],
};

export function localInputError(err: unknown, op: StorageOp, uri: string): InputError | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const known = code === undefined ? undefined : LOCAL[code];
  if (!known) return undefined;
  return new InputError(known[0], `cannot ${VERB[op]} ${uri}: ${known[1]} (${(err as Error).message})`);
}

/** The HTTP status of a GCS error: `code` on the client's ApiError, `status` on a gaxios error (resumable uploads). */
function httpStatus(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  for (const v of [e?.code, e?.status, e?.response?.status]) if (typeof v === 'number') return v;
  return undefined;
}

/** GCS refused a conditional request: for a no-clobber upload, the object already exists (a lost race). */
export function isPreconditionFailed(err: unknown): boolean {
  return httpStatus(err) === 412;
}

/** GCS says so in a 404's message; fake-gcs-server answers a bare "Not Found". */
export function isMissingBucket(err: unknown): boolean {
  return httpStatus(err) === 404 && /bucket does not exist/i.test((err as Error).message ?? '');
}

export function gcsInputError(err: unknown, op: StorageOp, uri: string): InputError | undefined {
  const status = httpStatus(err);
  const said = (err as Error).message;
  if (status === 401 || status === 403) return new InputError('PermissionDenied', `cannot ${VERB[op]} ${uri}: permission denied (${status}: ${said})`);
  // An upload or a listing 404s only when the bucket is missing; a read's 404 is usually the object.
  if (isMissingBucket(err) || (status === 404 && (op === 'write' || op === 'list'))) {
    return new InputError('MissingBucket', `bucket gs://${parseGcsUri(uri).bucket} does not exist (cannot ${VERB[op]} ${uri})`);
  }
  if (status === 400) return new InputError('BadPath', `cannot ${VERB[op]} ${uri}: GCS refused the request as invalid (${said})`);
  return undefined;
}
