/**
 * What the caption families share besides their decoder cache (decoder-cache.ts): EOS ids from the configs, a
 * load that opens several sessions and leaks none when it fails, the fixed-size image input, and the
 * CaptionModel plumbing (ids, preprocessing, release) around a family's own begin().
 */
import type * as ort from 'onnxruntime-node';
import { InputError } from '../../errors';
import type { CaptionModel, DecodeState } from '../caption-model';
import type { LoadedSession, ModelFolder } from '../model-folder';
import { loadImageProcessor, outputSize, preprocessDecoded, preprocessImage, stackPixels, type DecodedImage, type DecodeOptions, type ImageProcessorSpec } from '../preprocess';
import { floatInputType, floatTensor, type Session } from '../session';
import type { TextTokenizer } from '../tokenizer';
import type { PixelTensor, RuntimeOptions } from '../types';
import type { CacheShape } from './decoder-cache';

/** An `eos_token_id` as configs state it: one id, several, or nothing. */
type StatedIds = number | number[] | null | undefined;

/**
 * The EOS ids: those of the first config in `stated` that states any (the family passes them in HF's order of
 * precedence), else the tokenizer's EOS. None at all is a BadModel naming `configFile`.
 */
export function eosIdsOf(configFile: string, tokenizer: TextTokenizer, stated: readonly StatedIds[]): number[] {
  const first = stated.find((v) => v !== null && v !== undefined);
  const ids = first === null || first === undefined ? (tokenizer.eosId !== undefined ? [tokenizer.eosId] : []) : Array.isArray(first) ? first : [first];
  if (ids.length === 0) throw new InputError('BadModel', `${configFile}: no eos_token_id`);
  return ids;
}

export type OpenSession = (name: string, signature: Parameters<ModelFolder['session']>[1], verify?: Parameters<ModelFolder['session']>[3]) => Promise<LoadedSession>;

/** Runs `build` with an `open` that remembers each session it opens: if the load fails, all of them are released. */
export async function withSessions<T>(folder: ModelFolder, opts: RuntimeOptions, build: (open: OpenSession) => Promise<T>): Promise<T> {
  const opened: LoadedSession[] = [];
  try {
    return await build(async (name, signature, verify) => {
      const s = await folder.session(name, signature, opts, verify);
      opened.push(s);
      return s;
    });
  } catch (err) {
    await Promise.all(opened.map((s) => s.session.release()));
    throw err;
  }
}

/** A family's image input: its image processor, which must give one fixed size, and the decode limits. */
export interface ImageInput {
  spec: ImageProcessorSpec;
  size: [number, number];
  decode: DecodeOptions;
}

export async function loadImageInput(folder: ModelFolder, opts: DecodeOptions): Promise<ImageInput> {
  const spec = await loadImageProcessor(folder);
  const size = outputSize(spec);
  if (!size) throw new InputError('BadModel', `${folder.display('preprocessor_config.json')}: must produce a fixed image size`);
  return { spec, size, decode: { maxPixels: opts.maxPixels, failOn: opts.failOn, resampler: opts.resampler } };
}

/** The `pixel_values` feed of `session` for a batch: stacked, in the element type the session takes. */
export function pixelValues(session: Session, input: ImageInput, pixels: readonly PixelTensor[]): ort.Tensor {
  const batch = stackPixels(pixels, input.size);
  return floatTensor(floatInputType(session, 'pixel_values'), batch.data, batch.dims);
}

/** What every family's model is made of; a family adds its own parts (task ids, query count...). */
export interface FamilyParts<S extends Record<keyof S, LoadedSession>> {
  modelDir: string;
  tokenizer: TextTokenizer;
  image: ImageInput;
  sessions: S;
  cache: CacheShape;
  promptIds: readonly number[];
  eosIds: readonly number[];
}

/** The CaptionModel plumbing every family has; a family implements begin() over `parts.sessions`. */
export abstract class CaptionFamily<S extends Record<keyof S, LoadedSession>> implements CaptionModel {
  abstract readonly family: string;
  readonly modelDir: string;
  readonly tokenizer: TextTokenizer;
  readonly promptIds: readonly number[];
  readonly eosIds: readonly number[];

  constructor(protected readonly parts: FamilyParts<S>) {
    this.modelDir = parts.modelDir;
    this.tokenizer = parts.tokenizer;
    this.promptIds = parts.promptIds;
    this.eosIds = parts.eosIds;
  }

  preprocess(image: Buffer): Promise<PixelTensor> {
    return preprocessImage(image, this.parts.image.spec, this.parts.image.decode);
  }

  preprocessDecoded(image: DecodedImage): Promise<PixelTensor> {
    return preprocessDecoded(image, this.parts.image.spec, this.parts.image.decode);
  }

  abstract begin(pixels: readonly PixelTensor[]): Promise<DecodeState>;

  async release(): Promise<void> {
    await Promise.all((Object.values(this.parts.sessions) as LoadedSession[]).map((s) => s.session.release()));
  }
}
