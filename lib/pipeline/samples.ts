/** Input samples as the stages see them: one streamed pass over an img2dataset shard. */
import { readWebDataset } from '../formats/webdataset';
import { storageFor } from '../storage';

const IMAGE_EXTS = ['jpg', 'jpeg', 'png', 'webp'];

export interface InputSample {
  key: string;
  /** DataComp uid (32 hex) from the sample's json; null when absent. */
  uid: string | null;
  rawCaption: string;
  image: Buffer | null;
  imageExt: string | null;
  /** The sample's original json metadata (img2dataset fields), or null. */
  meta: Record<string, unknown> | null;
}

function parseMeta(buf: Buffer | undefined): Record<string, unknown> | null {
  if (!buf) return null;
  try {
    const v = JSON.parse(buf.toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function* readInputSamples(tarUri: string): AsyncGenerator<InputSample> {
  const stream = storageFor(tarUri).createReadStream(tarUri);
  for await (const s of readWebDataset(stream, { name: tarUri })) {
    const meta = parseMeta(s.files.json);
    const imageExt = IMAGE_EXTS.find((e) => s.files[e] !== undefined) ?? null;
    const uid = typeof meta?.uid === 'string' && /^[0-9a-f]{32}$/i.test(meta.uid) ? meta.uid.toLowerCase() : null;
    const rawCaption = s.files.txt ? s.files.txt.toString('utf8') : typeof meta?.caption === 'string' ? meta.caption : '';
    yield { key: s.key, uid, rawCaption, image: imageExt ? s.files[imageExt] : null, imageExt, meta };
  }
}

/** The per-sample RNG seed: the same sample gets the same caption in any batch, retry or resume. */
export function sampleSeed(runSeed: number, sample: { uid: string | null; key: string }): string {
  return `${runSeed}:${sample.uid ?? sample.key}`;
}
