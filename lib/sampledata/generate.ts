/**
 * Generates a small dataset in exactly the layout img2dataset writes for DataComp (see
 * lib/formats/img2dataset.ts): real JPEGs rendered from synthetic scenes, raw captions of mixed quality,
 * failed downloads (parquet rows only) and corrupt images (still in the tar, as happens in the wild).
 * Output is a pure function of the options: same seed, same bytes.
 */
import sharp from 'sharp';
import { Img2DatasetShardWriter, DATACOMP_SAMPLES_PER_SHARD, sampleKey } from '../formats/img2dataset';
import { storageFor, type StorageOptions } from '../storage';
import { captionFor, CAPTION_KIND_WEIGHTS, type CaptionKind } from './captions';
import { deterministicUid, Rng } from './random';
import { describeScene, randomScene, sceneSvg, type Scene } from './scenes';

export interface SampleDataOptions {
  /** Output folder: local path or gs://bucket/prefix. */
  out: string;
  shards: number;
  /** Input rows per shard (img2dataset's number_sample_per_shard): tar samples + failed downloads. */
  perShard: number;
  seed?: number;
  /** Failed downloads per shard: parquet rows with status failed_to_download, absent from the tar. */
  failures?: number;
  /** Corrupt images per shard: in the tar with truncated or garbage .jpg bytes. */
  corrupt?: number;
  /** Storage options (e.g. a fake-gcs-server endpoint) when `out` is gs://. */
  storage?: StorageOptions;
}

export type CorruptKind = 'truncated' | 'garbage';

/** Ground truth for one row of the generated data. */
export interface SampleTruth {
  uid: string;
  key: string;
  shard: number;
  index: number;
  status: 'success' | 'failed_to_download';
  /** Set for corrupt images: how the bytes are broken. */
  corrupt: CorruptKind | null;
  captionKind: CaptionKind;
  caption: string;
  /** Exact description of the image (what an ideal caption says). */
  description: string;
  scene: Scene;
  /** Size of the stored image (after DataComp's "largest side <= 512" resize) and before it. */
  width: number;
  height: number;
  original_width: number;
  original_height: number;
}

export interface SampleDataShard {
  shard: number;
  tar: string;
  parquet: string;
  stats: string;
  /** Samples in the tar (corrupt ones included). */
  samples: number;
  failures: number;
  corrupt: number;
}

export interface SampleDataSummary {
  out: string;
  seed: number;
  shards: SampleDataShard[];
  perShard: number;
  /** Totals over all shards. */
  rows: number;
  samples: number;
  failures: number;
  corrupt: number;
  /** Ground truth per uid, every row (failures too). */
  truth: Record<string, SampleTruth>;
}

/** DataComp downloads with `--resize_mode keep_ratio_largest --image_size 512 --resize_only_if_bigger`. */
const MAX_SIDE = 512;
/** Images rendered concurrently (sharp runs them on its thread pool). */
const RENDER_CONCURRENCY = 8;

const DOWNLOAD_ERRORS = [
  'HTTP Error 404: Not Found',
  'HTTP Error 403: Forbidden',
  '<urlopen error [Errno -2] Name or service not known>',
  'The read operation timed out',
] as const;

interface PlannedRow extends SampleTruth {
  url: string;
}

function planRow(seed: number, shard: number, index: number, role: 'ok' | 'failed' | CorruptKind): PlannedRow {
  const rng = new Rng('sample', seed, shard, index);
  const uid = deterministicUid(seed, shard, index);
  const original_width = rng.int(160, 800);
  const original_height = rng.int(160, 800);
  const scale = Math.min(1, MAX_SIDE / Math.max(original_width, original_height));
  const width = Math.max(1, Math.round(original_width * scale));
  const height = Math.max(1, Math.round(original_height * scale));
  const scene = randomScene(rng, width, height);
  const captionKind = rng.weighted(CAPTION_KIND_WEIGHTS);
  const caption = captionFor(rng, scene, captionKind);
  return {
    uid,
    key: sampleKey(shard, index),
    shard,
    index,
    status: role === 'failed' ? 'failed_to_download' : 'success',
    corrupt: role === 'truncated' || role === 'garbage' ? role : null,
    captionKind,
    caption,
    description: describeScene(scene),
    scene,
    width,
    height,
    original_width,
    original_height,
    url: `https://img${uid.charCodeAt(0) % 4}.example.com/${uid.slice(0, 2)}/${uid}.jpg`,
  };
}

async function renderJpeg(scene: Scene): Promise<Buffer> {
  return sharp(Buffer.from(sceneSvg(scene))).jpeg({ quality: 90 }).toBuffer();
}

/**
 * Bytes that no decoder accepts, whatever its strictness: a JPEG cut inside its header segments (before
 * the frame header), or random bytes with no image signature.
 */
function corruptBytes(kind: CorruptKind, jpeg: Buffer, rng: Rng): Buffer {
  if (kind === 'truncated') return Buffer.from(jpeg.subarray(0, Math.min(jpeg.length - 1, 60 + rng.int(0, 40))));
  const junk = rng.bytes(200 + rng.int(0, 800));
  junk[0] = 0x3c; // '<': never a JPEG/PNG/WebP/GIF signature
  return junk;
}

async function renderAll(rows: PlannedRow[]): Promise<Array<Buffer | null>> {
  const out: Array<Buffer | null> = new Array(rows.length).fill(null);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows.length) {
      const i = next++;
      if (rows[i].status === 'success') out[i] = await renderJpeg(rows[i].scene);
    }
  };
  await Promise.all(Array.from({ length: Math.min(RENDER_CONCURRENCY, rows.length) }, worker));
  return out;
}

export async function generateSampleData(opts: SampleDataOptions): Promise<SampleDataSummary> {
  const seed = opts.seed ?? 0;
  const failures = opts.failures ?? 0;
  const corrupt = opts.corrupt ?? 0;
  const { shards, perShard } = opts;
  if (!Number.isInteger(shards) || shards < 0) throw new RangeError(`shards must be a non-negative integer, got ${shards}`);
  if (!Number.isInteger(perShard) || perShard < 1 || perShard > DATACOMP_SAMPLES_PER_SHARD) {
    throw new RangeError(`perShard must be an integer in [1, ${DATACOMP_SAMPLES_PER_SHARD}], got ${perShard}`);
  }
  if (!Number.isInteger(failures) || !Number.isInteger(corrupt) || failures < 0 || corrupt < 0 || failures + corrupt > perShard) {
    throw new RangeError(`need 0 <= failures + corrupt <= perShard (got ${failures} + ${corrupt} > ${perShard})`);
  }
  const storage = storageFor(opts.out, opts.storage);
  const summary: SampleDataSummary = {
    out: opts.out,
    seed,
    shards: [],
    perShard,
    rows: 0,
    samples: 0,
    failures: 0,
    corrupt: 0,
    truth: {},
  };

  for (let shard = 0; shard < shards; shard++) {
    // Which indices fail or are corrupt: a seeded shuffle, so they are spread through the shard.
    const shardRng = new Rng('shard', seed, shard);
    const order = shardRng.shuffle(Array.from({ length: perShard }, (_, i) => i));
    const roles = new Map<number, 'failed' | CorruptKind>();
    order.slice(0, failures).forEach((i) => roles.set(i, 'failed'));
    order.slice(failures, failures + corrupt).forEach((i, n) => roles.set(i, n % 2 === 0 ? 'truncated' : 'garbage'));

    const rows = Array.from({ length: perShard }, (_, i) => planRow(seed, shard, i, roles.get(i) ?? 'ok'));
    const images = await renderAll(rows);

    // Fixed times (not the wall clock) so the stats file is reproducible too.
    const startTime = 1_700_000_000 + shard * 3600;
    const writer = await Img2DatasetShardWriter.open(storage, opts.out, shard, { startTime });
    try {
      for (const [i, row] of rows.entries()) {
        summary.truth[row.uid] = stripUrl(row);
        if (row.status === 'failed_to_download') {
          const err = new Rng('error', seed, shard, i).pick(DOWNLOAD_ERRORS);
          writer.writeFailure({ index: i, uid: row.uid, url: row.url, caption: row.caption, error_message: err });
          continue;
        }
        const jpeg = images[i] as Buffer;
        const bytes = row.corrupt ? corruptBytes(row.corrupt, jpeg, new Rng('corrupt', seed, shard, i)) : jpeg;
        await writer.writeSuccess({
          index: i,
          uid: row.uid,
          url: row.url,
          caption: row.caption,
          image: bytes,
          width: row.width,
          height: row.height,
          original_width: row.original_width,
          original_height: row.original_height,
        });
      }
      await writer.close({ endTime: startTime + 0.5 + perShard * 0.01 });
    } catch (err) {
      await writer.abort();
      throw err;
    }

    const shardFailures = rows.filter((r) => r.status === 'failed_to_download').length;
    const shardCorrupt = rows.filter((r) => r.corrupt).length;
    summary.shards.push({
      shard,
      ...writer.uris,
      samples: perShard - shardFailures,
      failures: shardFailures,
      corrupt: shardCorrupt,
    });
    summary.rows += perShard;
    summary.samples += perShard - shardFailures;
    summary.failures += shardFailures;
    summary.corrupt += shardCorrupt;
  }
  return summary;
}

function stripUrl(row: PlannedRow): SampleTruth {
  const { url: _url, ...truth } = row;
  return truth;
}
