/**
 * The layout img2dataset writes for DataComp (`--output_format webdataset --save_additional_columns
 * '["uid"]' --caption_col text --number_sample_per_shard 10000 --oom_shard_count 8 --compute_hash sha256`):
 *
 *   {shard:08d}.tar          members {key}.jpg, {key}.txt (caption), {key}.json (metadata), successes only
 *   {shard:08d}.parquet      one row per input sample, failures too (status failed_to_download / _resize)
 *   {shard:08d}_stats.json   per-shard counts and timings
 *
 * Key formula (img2dataset `compute_key`):
 *   oom_sample_per_shard = ceil(log10(number_sample_per_shard))           // 10000 -> 4
 *   key = f"{shard * 10**oom_sample_per_shard + index:0{oom_shard_count + oom_sample_per_shard}d}"
 * so DataComp keys are 12 digits: 8 of shard then 4 of index (shard 3, index 17 -> "000000030017").
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InputError } from '../errors';
import { baseName, joinUri, type AtomicWriter, type Storage } from '../storage';
import { decodeParquetRows, parquetTable, type TableRow } from './parquet';
import { readWebDataset, WebDatasetWriter, type WdsSample } from './webdataset';

export const DATACOMP_SAMPLES_PER_SHARD = 10_000;
export const DATACOMP_SHARD_DIGITS = 8;

export interface KeyFormat {
  /** img2dataset `number_sample_per_shard` (DataComp: 10000). */
  samplesPerShard?: number;
  /** img2dataset `oom_shard_count` (DataComp: 8; img2dataset's own default is 5). */
  shardDigits?: number;
}

function keyFormat(f: KeyFormat = {}): { sampleDigits: number; shardDigits: number; samplesPerShard: number } {
  const samplesPerShard = f.samplesPerShard ?? DATACOMP_SAMPLES_PER_SHARD;
  const shardDigits = f.shardDigits ?? DATACOMP_SHARD_DIGITS;
  if (!Number.isInteger(samplesPerShard) || samplesPerShard < 1) throw new RangeError(`bad samplesPerShard ${samplesPerShard}`);
  return { sampleDigits: Math.ceil(Math.log10(samplesPerShard)), shardDigits, samplesPerShard };
}

/** `{shard:0{shardDigits}d}`, e.g. shardName(3) === '00000003'. */
export function shardName(shard: number, shardDigits = DATACOMP_SHARD_DIGITS): string {
  if (!Number.isSafeInteger(shard) || shard < 0) throw new RangeError(`bad shard id ${shard}`);
  return String(shard).padStart(shardDigits, '0');
}

export function shardTarName(shard: number, shardDigits?: number): string {
  return `${shardName(shard, shardDigits)}.tar`;
}
export function shardParquetName(shard: number, shardDigits?: number): string {
  return `${shardName(shard, shardDigits)}.parquet`;
}
export function shardStatsName(shard: number, shardDigits?: number): string {
  return `${shardName(shard, shardDigits)}_stats.json`;
}

/** img2dataset's key of sample `index` (position in the shard's input list) of shard `shard`. */
export function sampleKey(shard: number, index: number, format?: KeyFormat): string {
  const { sampleDigits, shardDigits, samplesPerShard } = keyFormat(format);
  if (!Number.isInteger(index) || index < 0 || index >= samplesPerShard) {
    throw new RangeError(`sample index ${index} outside [0, ${samplesPerShard})`);
  }
  return String(10 ** sampleDigits * shard + index).padStart(shardDigits + sampleDigits, '0');
}

/** Inverse of `sampleKey`. */
export function parseSampleKey(key: string, format?: KeyFormat): { shard: number; index: number } {
  const { sampleDigits } = keyFormat(format);
  if (!/^\d+$/.test(key)) throw new InputError('CorruptShard', `not an img2dataset key: ${JSON.stringify(key)}`);
  const n = Number(key);
  return { shard: Math.floor(n / 10 ** sampleDigits), index: n % 10 ** sampleDigits };
}

/** DataComp uid: 32 lower-case hex chars. */
export function isDataCompUid(uid: unknown): uid is string {
  return typeof uid === 'string' && /^[0-9a-f]{32}$/.test(uid);
}

/** img2dataset's per-sample statuses (failures are in the parquet only). */
const IMG2DATASET_STATUSES = ['success', 'failed_to_download', 'failed_to_resize'] as const;

/**
 * Per-sample metadata: a row of the sibling parquet (img2dataset's column order and arrow types: int32 sizes, all
 * columns nullable) and, for successes, the `{key}.json` member.
 */
export const IMG2DATASET_TABLE = parquetTable({
  uid: { type: 'STRING' },
  caption: { type: 'STRING' },
  url: { type: 'STRING' },
  key: { type: 'STRING' },
  status: { type: 'STRING', values: IMG2DATASET_STATUSES },
  error_message: { type: 'STRING' },
  width: { type: 'INT32' },
  height: { type: 'INT32' },
  original_width: { type: 'INT32' },
  original_height: { type: 'INT32' },
  /** JSON text of the EXIF tags (exifread), `"{}"` when none; null for failures. */
  exif: { type: 'STRING' },
  /** sha256 hex of the downloaded bytes; null for failures. */
  sha256: { type: 'STRING' },
});
export type Img2DatasetSampleMeta = TableRow<typeof IMG2DATASET_TABLE>;

/** Parse a sample's `.json` (other fields are kept). Throws InputError('CorruptInput') when it is not img2dataset metadata. */
export function parseSampleMeta(json: Buffer | string, name = 'sample json'): Img2DatasetSampleMeta & Record<string, unknown> {
  return IMG2DATASET_TABLE.check(parseJsonObject(json, name), name);
}

/** A JSON object, or InputError('CorruptInput') naming the file. */
function parseJsonObject(json: Buffer | string, name: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof json === 'string' ? json : json.toString('utf8'));
  } catch (err) {
    throw new InputError('CorruptInput', `${name}: invalid JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InputError('CorruptInput', `${name}: not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * `json.dumps(obj, indent=4)` as Python writes it (img2dataset's `.json` members): same layout as
 * JSON.stringify with 4 spaces, plus ensure_ascii escaping of non-ASCII characters.
 */
export function pythonJsonDumps(obj: unknown, indent = 4): string {
  return JSON.stringify(obj, null, indent).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `{shard}_stats.json` as img2dataset's `write_stats` writes it (times are Unix seconds). */
export interface Img2DatasetShardStats {
  count: number;
  successes: number;
  failed_to_download: number;
  failed_to_resize: number;
  duration: number;
  start_time: number;
  end_time: number;
  /** "success" and each error message -> how many samples. */
  status_dict: Record<string, number>;
  [extra: string]: unknown;
}

const statsSchema = z.looseObject({
  count: z.number().int().nonnegative(),
  successes: z.number().int().nonnegative(),
  failed_to_download: z.number().int().nonnegative(),
  failed_to_resize: z.number().int().nonnegative(),
  duration: z.number(),
  // Older img2dataset versions did not write start/end times.
  start_time: z.number().optional(),
  end_time: z.number().optional(),
  status_dict: z.record(z.string(), z.number()),
});

export function parseShardStats(json: Buffer | string, name = 'stats json'): Img2DatasetShardStats {
  const parsed = statsSchema.safeParse(parseJsonObject(json, name));
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InputError('CorruptInput', `${name}: not img2dataset stats: ${why}`);
  }
  const s = parsed.data;
  return { ...s, start_time: s.start_time ?? 0, end_time: s.end_time ?? s.duration };
}

/** One shard of an img2dataset output folder. Sibling uris are null when the file is absent. */
export interface ShardRef {
  shard: number;
  /** File stem, e.g. '00000003'. */
  name: string;
  tar: string;
  /** The tar's content fingerprint (lib/storage StorageStat.fingerprint). */
  fingerprint: string;
  parquet: string | null;
  stats: string | null;
}

/**
 * Shards directly inside `folder` (`{digits}.tar`, any digit count), sorted by shard id, with their
 * sibling parquet / stats files when present. Sub-folders are ignored.
 */
export async function listShards(storage: Storage, folder: string): Promise<ShardRef[]> {
  const listed = (await storage.listStats(folder)).filter((f) => joinUri(folder, baseName(f.uri)) === f.uri);
  const direct = new Map(listed.map((f) => [baseName(f.uri), f]));
  const shards: ShardRef[] = [];
  for (const [file, tar] of direct) {
    const m = /^(\d+)\.tar$/.exec(file);
    if (!m) continue;
    const name = m[1];
    shards.push({
      shard: Number(name),
      name,
      tar: joinUri(folder, file),
      fingerprint: tar.fingerprint,
      parquet: direct.has(`${name}.parquet`) ? joinUri(folder, `${name}.parquet`) : null,
      stats: direct.has(`${name}_stats.json`) ? joinUri(folder, `${name}_stats.json`) : null,
    });
  }
  return shards.sort((a, b) => a.shard - b.shard || a.name.localeCompare(b.name));
}

/** All rows of a shard's sibling parquet (failures included), typed. */
export async function readShardParquet(storage: Storage, uri: string): Promise<Array<Img2DatasetSampleMeta & Record<string, unknown>>> {
  const rows = await decodeParquetRows(await storage.readBuffer(uri), { name: uri });
  return rows.map((row, i) => IMG2DATASET_TABLE.check(row, `${uri}: row ${i}`));
}

export async function readShardStats(storage: Storage, uri: string): Promise<Img2DatasetShardStats> {
  return parseShardStats(await storage.readBuffer(uri), uri);
}

/** Strict UTF-8: a caption that is not text is reported, not read as replacement characters. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Image member extensions img2dataset can write (`--encode_format`), in lookup order. */
const IMAGE_EXTS = ['jpg', 'jpeg', 'png', 'webp'] as const;

/** One sample of an img2dataset tar, as every reader in the project sees it. */
export interface Img2DatasetSample {
  key: string;
  /** Image bytes as stored (possibly corrupt; decoding is the caller's job), or null if none. */
  image: Buffer | null;
  imageExt: string | null;
  /** `.txt` member (the raw caption), or null if absent. */
  caption: string | null;
  /** The `.json` member as stored when it is a JSON object (passed through to outputs), else null (see metaError). */
  meta: Record<string, unknown> | null;
  metaError?: string;
  /** Why the `.txt` member cannot be read as text (not UTF-8), when it cannot. */
  textError?: string;
  /** DataComp uid from the json (32 hex digits, either case; lower-cased), or null (see uidError). */
  uid: string | null;
  /** Why there is no uid: the json has none, or not 32 hex digits. */
  uidError?: string;
  /** Every member, for pass-through writing. */
  files: Record<string, Buffer>;
}

/** Interpret one webdataset sample as an img2dataset sample. One bad `.json` does not fail the shard. */
export function toImg2DatasetSample(s: WdsSample, shardName = 'shard'): Img2DatasetSample {
  const imageExt = IMAGE_EXTS.find((e) => e in s.files) ?? null;
  let meta: Record<string, unknown> | null = null;
  let metaError: string | undefined;
  if (s.files.json) {
    try {
      const v = JSON.parse(s.files.json.toString('utf8')) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) meta = v as Record<string, unknown>;
      else metaError = `${shardName}/${s.key}.json: not a JSON object`;
    } catch (err) {
      metaError = `${shardName}/${s.key}.json: invalid JSON: ${(err as Error).message}`;
    }
  }
  const rawUid = meta?.uid;
  const uid = typeof rawUid === 'string' && isDataCompUid(rawUid.toLowerCase()) ? rawUid.toLowerCase() : null;
  const uidError = uid ? undefined : rawUid === undefined || rawUid === null ? `${shardName}/${s.key}.json has no uid` : `${shardName}/${s.key}.json: uid ${JSON.stringify(rawUid)} is not 32 hex digits`;
  let caption: string | null = null;
  let textError: string | undefined;
  if (s.files.txt) {
    try {
      caption = UTF8.decode(s.files.txt);
    } catch {
      textError = `${shardName}/${s.key}.txt is not UTF-8 text`;
    }
  }
  return {
    key: s.key,
    image: imageExt ? s.files[imageExt] : null,
    imageExt,
    caption,
    meta,
    ...(metaError ? { metaError } : {}),
    ...(textError ? { textError } : {}),
    uid,
    ...(uidError ? { uidError } : {}),
    files: s.files,
  };
}

/** The sample's raw caption: the `.txt` member, else the json's `caption`, else "". */
export function rawCaptionOf(s: Img2DatasetSample): string {
  return s.caption ?? (typeof s.meta?.caption === 'string' ? s.meta.caption : '');
}

/** Stream the samples of an img2dataset tar shard from storage. */
export async function* readImg2DatasetShard(storage: Storage, tarUri: string): AsyncGenerator<Img2DatasetSample> {
  for await (const s of readWebDataset(storage.createReadStream(tarUri), { name: tarUri })) {
    yield toImg2DatasetSample(s, tarUri);
  }
}

export interface SuccessSample {
  index: number;
  uid: string | null;
  url: string;
  caption: string | null;
  image: Buffer;
  /** Default 'jpg'. */
  imageExt?: string;
  width: number | null;
  height: number | null;
  original_width: number | null;
  original_height: number | null;
  /** Default '{}' (exifread found no tags). */
  exif?: string | null;
  /** Default: sha256 of `image`. */
  sha256?: string | null;
}

export interface FailedSample {
  index: number;
  uid: string | null;
  url: string;
  caption: string | null;
  status?: 'failed_to_download' | 'failed_to_resize';
  error_message: string;
}

export interface ShardWriterOptions extends KeyFormat {
  /** Unix seconds recorded in the stats (default: wall clock at open/close). Fix them for reproducible output. */
  startTime?: number;
}

/**
 * Writes one shard exactly as img2dataset does: successes into the tar (`.jpg`, `.txt`, `.json` with
 * Python's `json.dumps(meta, indent=4)`), every row into the parquet, then the stats. Each file is
 * committed atomically; the stats file is written last, so its presence means the shard is complete.
 */
export class Img2DatasetShardWriter {
  private readonly rows: Img2DatasetSampleMeta[] = [];
  private readonly statusDict: Record<string, number> = {};
  private readonly keys = new Set<string>();
  private counts = { successes: 0, failed_to_download: 0, failed_to_resize: 0 };

  private constructor(
    private readonly storage: Storage,
    readonly folder: string,
    readonly shard: number,
    private readonly format: KeyFormat,
    private readonly startTime: number,
    private readonly tarOut: AtomicWriter,
    private readonly tar: WebDatasetWriter,
  ) {}

  static async open(storage: Storage, folder: string, shard: number, opts: ShardWriterOptions = {}): Promise<Img2DatasetShardWriter> {
    // Authoring a dataset, as img2dataset does: writing a shard again replaces it (tar, parquet and stats alike).
    const tarOut = await storage.openAtomicWriter(joinUri(folder, shardTarName(shard, opts.shardDigits)), { replace: true });
    const tar = new WebDatasetWriter(tarOut.stream);
    return new Img2DatasetShardWriter(storage, folder, shard, opts, opts.startTime ?? Date.now() / 1000, tarOut, tar);
  }

  get uris(): { tar: string; parquet: string; stats: string } {
    const d = this.format.shardDigits;
    return {
      tar: joinUri(this.folder, shardTarName(this.shard, d)),
      parquet: joinUri(this.folder, shardParquetName(this.shard, d)),
      stats: joinUri(this.folder, shardStatsName(this.shard, d)),
    };
  }

  private claimKey(index: number): string {
    const key = sampleKey(this.shard, index, this.format);
    if (this.keys.has(key)) throw new Error(`sample index ${index} written twice in shard ${this.shard}`);
    this.keys.add(key);
    return key;
  }

  async writeSuccess(s: SuccessSample): Promise<Img2DatasetSampleMeta> {
    const key = this.claimKey(s.index);
    const meta: Img2DatasetSampleMeta = {
      uid: s.uid,
      caption: s.caption,
      url: s.url,
      key,
      status: 'success',
      error_message: null,
      width: s.width,
      height: s.height,
      original_width: s.original_width,
      original_height: s.original_height,
      exif: s.exif === undefined ? '{}' : s.exif,
      sha256: s.sha256 === undefined ? createHash('sha256').update(s.image).digest('hex') : s.sha256,
    };
    await this.tar.write({
      key,
      files: {
        [s.imageExt ?? 'jpg']: s.image,
        // img2dataset writes str(caption), or "" when there is none.
        txt: Buffer.from(s.caption ?? '', 'utf8'),
        json: Buffer.from(pythonJsonDumps(meta), 'utf8'),
      },
    });
    this.rows.push(meta);
    this.counts.successes++;
    this.statusDict.success = (this.statusDict.success ?? 0) + 1;
    return meta;
  }

  writeFailure(s: FailedSample): Img2DatasetSampleMeta {
    const status = s.status ?? 'failed_to_download';
    const meta: Img2DatasetSampleMeta = {
      uid: s.uid,
      caption: s.caption,
      url: s.url,
      key: this.claimKey(s.index),
      status,
      error_message: s.error_message,
      width: null,
      height: null,
      original_width: null,
      original_height: null,
      exif: null,
      sha256: null,
    };
    this.rows.push(meta);
    this.counts[status]++;
    this.statusDict[s.error_message] = (this.statusDict[s.error_message] ?? 0) + 1;
    return meta;
  }

  /** Commit tar, parquet, stats (in that order). Returns the stats written. */
  async close(opts: { endTime?: number } = {}): Promise<Img2DatasetShardStats> {
    try {
      await this.tar.close();
      await this.tarOut.commit();
    } catch (err) {
      await this.tarOut.abort();
      throw err;
    }
    const endTime = opts.endTime ?? Date.now() / 1000;
    const { parquet, stats: statsUri } = this.uris;
    await this.storage.writeAtomic(parquet, IMG2DATASET_TABLE.encode(this.rows), { replace: true });
    const stats: Img2DatasetShardStats = {
      count: this.rows.length,
      successes: this.counts.successes,
      failed_to_download: this.counts.failed_to_download,
      failed_to_resize: this.counts.failed_to_resize,
      // Rounded to microseconds: the subtraction of two epoch floats leaves noise digits.
      duration: Math.round((endTime - this.startTime) * 1e6) / 1e6,
      start_time: this.startTime,
      end_time: endTime,
      status_dict: this.statusDict,
    };
    await this.storage.writeAtomic(statsUri, pythonJsonDumps(stats), { replace: true });
    return stats;
  }

  async abort(): Promise<void> {
    this.tar.destroy();
    await this.tarOut.abort();
  }
}
