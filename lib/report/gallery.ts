/**
 * The gallery of report.html, as the paper's Figure 1 shows samples: a thumbnail of each example the report
 * picked (kept with its raw caption, kept with the synthetic one, dropped). Decisions hold text only, so images
 * come from the run's INPUT shards: plan.json names each shard's img2dataset tar, and each tar holding an example
 * is streamed until its examples are found and no further; only the thumbnails are kept. Anything missing (no
 * plan, a missing or unreadable tar, an undecodable image) gives a placeholder with the reason, never a failed
 * report.
 */
import { readImg2DatasetShard } from '../formats/img2dataset';
import { RunLayout } from '../run/layout';
import type { PlannedShard } from '../run/plan';
import { storageFor } from '../storage';
import type { ThumbnailImage, ThumbnailOptions } from './thumbnail';
import type { ExampleRow, RunReport } from './types';

export type Thumbnail = ({ kind: 'image' } & ThumbnailImage) | { kind: 'placeholder'; reason: string };

/** The example groups the gallery shows, in order (failed samples have no image worth showing). */
export const GALLERY_GROUPS = ['keptRaw', 'keptSynthetic', 'dropped'] as const;
export type GalleryGroup = (typeof GALLERY_GROUPS)[number];

/** Thumbnails by example, keyed by `exampleId`. */
export type Gallery = ReadonlyMap<string, Thumbnail>;

/** Keys are unique within a shard only. */
export const exampleId = (e: Pick<ExampleRow, 'shard' | 'key'>): string => `${e.shard}/${e.key}`;

/** Thumbnails are JPEGs of 128 px on the long side at quality 70: ~3–6 KB each, so ~20 stay well under 1 MB of HTML. */
export const THUMBNAIL_LONG_SIDE = 128;
export const THUMBNAIL_QUALITY = 70;

export interface GalleryOptions extends Partial<ThumbnailOptions> {
  /** Input tars read at once (default 4). */
  concurrency?: number;
  /** The samples of an input tar in file order (default: readImg2DatasetShard on the tar's storage). */
  readShard?: (tarUri: string) => AsyncIterable<{ key: string; image: Buffer | null }>;
  /** Image bytes → thumbnail (default: ./thumbnail.ts, sharp). */
  thumbnail?: (image: Buffer, opts: ThumbnailOptions) => Promise<ThumbnailImage>;
}

const placeholder = (reason: string): Thumbnail => ({ kind: 'placeholder', reason });
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** sharp is required here, not imported at the top: importing the report must not load it (CPU workers). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sharpThumbnail = (image: Buffer, opts: ThumbnailOptions) => (require('./thumbnail') as typeof import('./thumbnail')).makeThumbnail(image, opts);

/** Shard name → input tar, from plan.json; a sentence instead when the plan cannot say. */
async function plannedTars(runUri: string): Promise<Map<string, string> | string> {
  const uri = new RunLayout(runUri).plan;
  const storage = storageFor(uri);
  try {
    if (!(await storage.exists(uri))) return `no plan.json in ${runUri}, so the input shards are unknown`;
    const plan = JSON.parse(await storage.readText(uri)) as { shards?: Array<Partial<PlannedShard>> };
    const tars = new Map<string, string>();
    for (const s of Array.isArray(plan.shards) ? plan.shards : []) {
      if (typeof s?.name === 'string' && typeof s.tar === 'string') tars.set(s.name, s.tar);
    }
    return tars;
  } catch (err) {
    return `plan.json could not be read: ${message(err)}`;
  }
}

/** Thumbnails of `keys` from one input tar, read only as far as the last of them. */
async function thumbnailsFromTar(tar: string, keys: ReadonlySet<string>, opts: GalleryOptions): Promise<Map<string, Thumbnail>> {
  const out = new Map<string, Thumbnail>();
  const readShard = opts.readShard ?? ((uri: string) => readImg2DatasetShard(storageFor(uri), uri));
  const thumbnail = opts.thumbnail ?? sharpThumbnail;
  const thumbSize = { longSide: opts.longSide ?? THUMBNAIL_LONG_SIDE, quality: opts.quality ?? THUMBNAIL_QUALITY };
  let failure: string | null = null;
  try {
    if (!(await storageFor(tar).exists(tar))) failure = `input shard ${tar} is missing`;
    else {
      for await (const s of readShard(tar)) {
        if (!keys.has(s.key) || out.has(s.key)) continue;
        if (!s.image) out.set(s.key, placeholder(`the sample has no image in ${tar}`));
        else {
          try {
            out.set(s.key, { kind: 'image', ...(await thumbnail(s.image, thumbSize)) });
          } catch (err) {
            out.set(s.key, placeholder(`the image could not be decoded: ${message(err)}`));
          }
        }
        if (out.size === keys.size) break; // leaving the loop stops reading the tar
      }
    }
  } catch (err) {
    failure = `input shard ${tar} could not be read: ${message(err)}`;
  }
  for (const k of keys) if (!out.has(k)) out.set(k, placeholder(failure ?? `the sample is not in its input shard ${tar}`));
  return out;
}

/** Thumbnails of the report's kept and dropped examples (see the module comment). */
export async function buildGallery(runUri: string, examples: RunReport['examples'], opts: GalleryOptions = {}): Promise<Gallery> {
  const byShard = new Map<string, Set<string>>();
  for (const g of GALLERY_GROUPS) {
    for (const e of examples[g]) byShard.set(e.shard, (byShard.get(e.shard) ?? new Set()).add(e.key));
  }
  const gallery = new Map<string, Thumbnail>();
  if (byShard.size === 0) return gallery;
  const tars = await plannedTars(runUri);

  const shards = [...byShard.keys()];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < shards.length) {
      const shard = shards[next++]!;
      const keys = byShard.get(shard)!;
      const tar = typeof tars === 'string' ? null : tars.get(shard);
      const thumbs = tar
        ? await thumbnailsFromTar(tar, keys, opts)
        : new Map([...keys].map((k) => [k, placeholder(typeof tars === 'string' ? tars : `shard ${shard} is not in plan.json`)]));
      for (const [key, t] of thumbs) gallery.set(exampleId({ shard, key }), t);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, shards.length) }, worker));
  return gallery;
}
