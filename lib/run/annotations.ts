/**
 * Annotations: what the GPU stage computes about a shard's samples, kept apart from any run and addressed by what
 * determines them, so that every run over the same pool and models finds them and a new preset, fraction or sweep
 * costs CPU time only.
 *
 *   <annotations>/samples/<key>/<shard>.<content>.parquet            key, uid, raw caption, size, decode failure
 *   <annotations>/captions/<key>/<shard>.<content>.parquet           synthetic caption (candidate 0)
 *   <annotations>/captions/<key>/<shard>.<content>.candidates.parquet  every candidate (caption.candidates > 1)
 *   <annotations>/raw-scores/<key>/<shard>.<content>.parquet         s_raw
 *   <annotations>/synthetic-scores/<key>/<shard>.<content>.parquet   s_syn (of the kept candidate)
 *   <annotations>/clusters/<key>/<shard>.<content>.parquet           nearest image-cluster centroid
 *   <annotations>/<group>/<key>/key.json                             what the key stands for
 *   <annotations>/<group>/<key>/<shard>.<content>.chunks/<start>-<end>.parquet   chunks of a shard not finished
 *
 * `<content>` is the input shard's content identity (its storage fingerprint: size + CRC32C on GCS, size + mtime
 * locally). `<key>` hashes everything else that determines the group (see `annotationKeys`): the decode options,
 * the model's file hashes, prompts, sampling options, seed and candidates, the preprocessing, the captions a score
 * is of, the centroid file. A shard's file exists only once it is complete (atomic write); every file holds one row
 * per sample of the tar, in tar order.
 */
import { createHash } from 'node:crypto';
import type { RunConfig } from '../config/schema';
import { joinUri } from '../storage';
import { SAMPLER_VERSION } from '../models/sampling';

/** Annotation groups: `samples` needs no model (image decoding only); the others are the GPU's work. */
export const ANNOTATION_GROUPS = ['samples', 'captions', 'rawScores', 'syntheticScores', 'clusters'] as const;
export type AnnotationGroup = (typeof ANNOTATION_GROUPS)[number];
export type ModelGroup = Exclude<AnnotationGroup, 'samples'>;
export const MODEL_GROUPS = ANNOTATION_GROUPS.filter((g): g is ModelGroup => g !== 'samples');

const FOLDER: Record<AnnotationGroup, string> = {
  samples: 'samples',
  captions: 'captions',
  rawScores: 'raw-scores',
  syntheticScores: 'synthetic-scores',
  clusters: 'clusters',
};

/**
 * Bumped when what a group holds, or how it is computed, changes in a way its key does not show.
 * 3: a decode error's message keeps only its first line (libvips' shared error buffer made the rest vary).
 */
export const ANNOTATIONS_VERSION = 3;

/** The key of each group a run uses (groups it does not use are absent). */
export type AnnotationKeys = { samples: string } & Partial<Record<ModelGroup, string>>;

/** Content identities of what the keys depend on beyond the config: the model folders and the centroid file. */
export interface ModelIdentities {
  captioner?: string;
  clip?: string;
  centroids?: string;
}

/** What each key stands for (written next to the files as key.json), by group. */
export type KeyDeterminants = { samples: object } & Partial<Record<ModelGroup, object>>;

function keyOf(determinants: object): string {
  return createHash('sha256').update(JSON.stringify(canonical(determinants))).digest('hex').slice(0, 16);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** The determinants of every group in `groups` (plus `samples`, which every run uses), each chained to its inputs. */
export function keyDeterminants(config: RunConfig, groups: ReadonlySet<ModelGroup>, ids: ModelIdentities): KeyDeterminants {
  const need = (what: string, id: string | undefined): string => {
    if (!id) throw new Error(`annotation keys need the ${what} identity`);
    return id;
  };
  const samples = { version: ANNOTATIONS_VERSION, decode: { maxPixels: config.image.maxPixels }, requireUid: config.input.requireUid };
  const out: KeyDeterminants = { samples };
  const image = { samples: keyOf(samples), resampler: config.image.resampler };
  const c = config.caption;
  const captioner = config.models.captioner;
  if (groups.has('captions') || groups.has('syntheticScores')) {
    out.captions = {
      ...image,
      captioner: { files: need('captioner', ids.captioner), dtype: captioner.dtype, taskPrompt: captioner.taskPrompt ?? null, textPrompt: captioner.textPrompt ?? null },
      sampling: { topK: c.topK, temperature: c.temperature, minLength: c.minLength, maxLength: c.maxLength, repetitionPenalty: c.repetitionPenalty },
      sampler: SAMPLER_VERSION,
      seed: config.run.seed,
      candidates: c.candidates,
    };
  }
  const clip = () => ({ files: need('CLIP model', ids.clip), dtype: config.models.clip.dtype });
  if (groups.has('rawScores')) out.rawScores = { ...image, clip: clip() };
  if (groups.has('syntheticScores')) out.syntheticScores = { ...image, clip: clip(), captions: keyOf(out.captions!), pick: c.candidates > 1 ? c.pick : 'first' };
  if (groups.has('clusters')) {
    const f = config.filters.imageCluster!;
    out.clusters = { ...image, clip: clip(), centroids: need('centroid file', ids.centroids), centroidNorm: f.centroidNorm };
  }
  return out;
}

export function annotationKeys(determinants: KeyDeterminants): AnnotationKeys {
  return Object.fromEntries(Object.entries(determinants).map(([g, d]) => [g, keyOf(d as object)])) as AnnotationKeys;
}

/** Where a run's annotations are: the root, and the key of each group it uses. */
export class AnnotationStore {
  constructor(
    readonly root: string,
    readonly keys: AnnotationKeys,
  ) {}

  /** The default root: shared by every run that writes to the same output. */
  static rootFor(config: RunConfig): string {
    return config.annotations.uri ?? joinUri(config.output.uri, '_annotations');
  }

  /** The groups this store has keys for. */
  get groups(): AnnotationGroup[] {
    return ANNOTATION_GROUPS.filter((g) => this.keys[g] !== undefined);
  }

  folder(group: AnnotationGroup): string {
    const key = this.keys[group];
    if (!key) throw new Error(`the run does not use ${group} annotations`);
    return joinUri(this.root, FOLDER[group], key);
  }

  /** The committed file of a group for a shard. */
  file(group: AnnotationGroup, shard: ShardIdentity): string {
    return joinUri(this.folder(group), `${stem(shard)}.parquet`);
  }

  /** Every caption candidate of a shard (caption.candidates > 1), written before the captions file. */
  candidates(shard: ShardIdentity): string {
    return joinUri(this.folder('captions'), `${stem(shard)}.candidates.parquet`);
  }

  /** A chunk of a shard's group not finished yet: the rows of tar positions [start, end). */
  chunk(group: AnnotationGroup, shard: ShardIdentity, start: number, end: number, part: 'rows' | 'candidates' = 'rows'): string {
    const name = `${String(start).padStart(8, '0')}-${String(end).padStart(8, '0')}`;
    return joinUri(this.chunks(group, shard), part === 'rows' ? `${name}.parquet` : `${name}.candidates.parquet`);
  }

  chunks(group: AnnotationGroup, shard: ShardIdentity): string {
    return joinUri(this.folder(group), `${stem(shard)}.chunks`);
  }

  /** What a key stands for, for people browsing the folder. */
  describe(group: AnnotationGroup): string {
    return joinUri(this.folder(group), 'key.json');
  }
}

/** What names a shard's annotations: its name and its content identity. */
export interface ShardIdentity {
  name: string;
  content: string;
}

function stem(shard: ShardIdentity): string {
  return `${shard.name}.${shard.content}`;
}

/** The content identity of an input shard from its storage fingerprint. */
export function contentId(fingerprint: string): string {
  return createHash('sha256').update(fingerprint).digest('hex').slice(0, 16);
}
