import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors';

/** URIs of objects in Google Cloud Storage look like `gs://bucket/some/key`. */
export function isGcsUri(uri: string): boolean {
  return uri.startsWith('gs://');
}

export interface GcsLocation {
  bucket: string;
  /** Object name inside the bucket, without a leading slash ('' for the bucket root). */
  key: string;
}

export function parseGcsUri(uri: string): GcsLocation {
  const m = /^gs:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new InputError('InvalidUri', `not a gs:// uri: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

export function gcsUri(bucket: string, key: string): string {
  return `gs://${bucket}/${key}`;
}

/** Local filesystem path for a plain path or a `file://` URI. */
export function localPath(uri: string): string {
  return uri.startsWith('file://') ? fileURLToPath(uri) : uri;
}

/**
 * Join path segments onto a base uri. gs:// uris are joined with exactly one '/' between segments (object
 * names are not normalised: `..` has no meaning in GCS); local paths use `path.join`.
 */
export function joinUri(base: string, ...parts: string[]): string {
  if (isGcsUri(base)) {
    const segs = parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter((p) => p.length > 0);
    const head = base.replace(/\/+$/, '');
    return segs.length ? `${head}/${segs.join('/')}` : head;
  }
  if (base.startsWith('file://')) return `file://${path.posix.join(localPath(base), ...parts)}`;
  return path.join(base, ...parts);
}

/** Last path segment of a uri (`gs://b/x/00000001.tar` -> `00000001.tar`). */
export function baseName(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
