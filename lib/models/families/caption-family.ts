/**
 * What the caption families share besides their decoder cache (decoder-cache.ts): EOS ids from the configs, a
 * load that opens several sessions and leaks none when it fails, the sessions only the JS loop uses (opened only
 * on its route), the fixed-size image input, and the CaptionModel plumbing (ids, preprocessing, release) around a
 * family's own context() and begin().
 */
import * as ort from 'onnxruntime-node';
import { InputError } from '../../errors';
import type { CaptionModel, DecodeState } from '../caption-model';
import type { GenerationRoute, PreparedGeneration } from '../generation-graph/graph-generator';
import type { LoadedSession, ModelFolder } from '../model-folder';
import { batchPixels } from '../pixel-batch';
import { loadImageProcessor, outputSize, preprocessDecoded, preprocessImage, type DecodedImage, type DecodeOptions, type ImageProcessorSpec } from '../preprocess';
import { floatInputType, int64Tensor, runSession, type Session } from '../session';
import type { TextTokenizer } from '../tokenizer';
import type { CaptionOptions, ImageRecipe, PixelTensor, RuntimeOptions } from '../types';
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

/**
 * Runs `build` with an `open` that remembers each session it opens (a file opened again in the same load gives the
 * session already open) and a `close` that releases one early: if the load fails, all still open are released.
 */
export async function withSessions<T>(folder: ModelFolder, opts: RuntimeOptions, build: (open: OpenSession, close: (s: LoadedSession) => Promise<void>) => Promise<T>): Promise<T> {
  const opened = new Map<string, Promise<LoadedSession>>();
  const open: OpenSession = (name, signature, verify) => {
    let s = opened.get(name);
    if (!s) {
      s = folder.session(name, signature, opts, verify);
      opened.set(name, s);
      s.catch(() => opened.delete(name));
    }
    return s;
  };
  const close = async (session: LoadedSession): Promise<void> => {
    for (const [name, s] of opened) if ((await s.catch(() => undefined)) === session) opened.delete(name);
    await session.session.release();
  };
  try {
    return await build(open, close);
  } catch (err) {
    await Promise.all([...opened.values()].map((s) => s.then((l) => l.session.release(), () => undefined)));
    throw err;
  }
}

/**
 * The sessions only the JS loop steps with: the merged decoder, and embed_tokens where the decoder takes
 * embeddings. On the JS route they are open from load. On the graph route generateTokens never needs them and
 * they are not opened — the graph holds the decoder's weights — unless the JS loop is run on that model anyway
 * (a decode-state test): then on first use, at the cost of those weights a second time. Comparisons of the two
 * routes load a second model with `generation: 'js'` instead.
 */
export class StepSessions<J extends Record<keyof J, LoadedSession>> {
  private pending: Promise<J> | undefined;
  /** the sessions once open */
  private sessions: J | undefined;

  private constructor(
    private readonly openLater: () => Promise<J>,
    opened: J | undefined,
  ) {
    if (opened) {
      this.sessions = opened;
      this.pending = Promise.resolve(opened);
    }
  }

  /**
   * The step sessions for `route`: opened now through the load's `open` on the JS route (so a broken decoder fails
   * the load), else left to first use. `openSteps` opens them; it must not capture what the graph build used.
   */
  static async forRoute<J extends Record<keyof J, LoadedSession>>(route: GenerationRoute, folder: ModelFolder, opts: RuntimeOptions, open: OpenSession, openSteps: (open: OpenSession) => Promise<J>): Promise<StepSessions<J>> {
    const later = (): Promise<J> => withSessions(folder, opts, (o) => openSteps(o));
    return new StepSessions(later, route.kind === 'js' ? await openSteps(open) : undefined);
  }

  /** The files of the sessions open now (none while they are not, or still opening). */
  get files(): string[] {
    return this.sessions ? (Object.values(this.sessions) as LoadedSession[]).map((s) => s.file) : [];
  }

  get(): Promise<J> {
    if (!this.pending) {
      const p = this.openLater();
      this.pending = p;
      p.then(
        (sessions) => {
          if (this.pending === p) this.sessions = sessions;
        },
        () => {
          if (this.pending === p) this.pending = undefined; // a failed open may be retried
        },
      );
    }
    return this.pending;
  }

  async release(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    this.sessions = undefined;
    const sessions = await p?.catch(() => undefined);
    if (sessions) await Promise.all((Object.values(sessions) as LoadedSession[]).map((s) => s.session.release()));
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

/**
 * The `pixel_values` feed of `session` for a batch, in the element type the session takes: stacked (and converted)
 * here, or fed as is when prep threads handed over views of a batch made ahead (pixel-batch.ts).
 */
export function pixelValues(session: Session, input: ImageInput, pixels: readonly PixelTensor[]): ort.Tensor {
  const type = floatInputType(session, 'pixel_values');
  const { data, dims } = batchPixels(type, pixels, input.size);
  return new ort.Tensor(type, data, dims);
}

/** What every family's model is made of; a family adds its own parts (task ids, query count...). */
export interface FamilyParts<S extends Record<keyof S, LoadedSession>, J extends Record<keyof J, LoadedSession>> {
  modelDir: string;
  tokenizer: TextTokenizer;
  image: ImageInput;
  /** the image side's sessions, open on either route */
  sessions: S;
  /** the sessions only the JS loop steps with */
  steps: StepSessions<J>;
  /** the element type the decoder takes the image side's output (`context`) in */
  contextType: 'float32' | 'float16';
  cache: CacheShape;
  promptIds: readonly number[];
  eosIds: readonly number[];
  /** the generation route prepared at load (generation-graph/graph-generator.ts prepareGeneration) */
  generation: PreparedGeneration;
}

/** The CaptionModel plumbing every family has; a family implements context() and begin() over its parts. */
export abstract class CaptionFamily<S extends Record<keyof S, LoadedSession>, J extends Record<keyof J, LoadedSession>> implements CaptionModel {
  abstract readonly family: string;
  readonly modelDir: string;
  readonly tokenizer: TextTokenizer;
  readonly promptIds: readonly number[];
  readonly eosIds: readonly number[];
  readonly generation: GenerationRoute;
  readonly generateInGraph?: (pixels: readonly PixelTensor[], seeds: readonly string[], o: CaptionOptions) => Promise<number[][]>;

  constructor(protected readonly parts: FamilyParts<S, J>) {
    this.modelDir = parts.modelDir;
    this.tokenizer = parts.tokenizer;
    this.promptIds = parts.promptIds;
    this.eosIds = parts.eosIds;
    this.generation = parts.generation.route;
    const generator = parts.generation.generator;
    if (generator) this.generateInGraph = async (pixels, seeds, o) => generator.generate(await this.context(pixels), seeds, o);
  }

  preprocess(image: Buffer): Promise<PixelTensor> {
    return preprocessImage(image, this.parts.image.spec, this.parts.image.decode);
  }

  preprocessDecoded(image: DecodedImage): Promise<PixelTensor> {
    return preprocessDecoded(image, this.parts.image.spec, this.parts.image.decode);
  }

  get imageRecipe(): ImageRecipe {
    const { spec, decode, size } = this.parts.image;
    // The session that takes the pixels (the vision encoder, whatever the family calls it) says their element type.
    const vision = (Object.values(this.parts.sessions) as LoadedSession[]).find((s) => s.session.inputNames.includes('pixel_values'));
    return { spec, decode, size, type: vision ? floatInputType(vision.session, 'pixel_values') : 'float32' };
  }

  abstract begin(pixels: readonly PixelTensor[]): Promise<DecodeState>;

  get openSessions(): string[] {
    const generator = this.parts.generation.generator;
    return [...(Object.values(this.parts.sessions) as LoadedSession[]).map((s) => s.file), ...this.parts.steps.files, ...(generator ? [generator.display] : [])];
  }

  /** The image side of a batch as the generation graph's `context` input (encoder states or the image prefix). */
  abstract context(pixels: readonly PixelTensor[]): Promise<ort.Tensor>;

  async release(): Promise<void> {
    await Promise.all([...(Object.values(this.parts.sessions) as LoadedSession[]).map((s) => s.session.release()), this.parts.steps.release(), this.parts.generation.generator?.release()]);
  }
}

/**
 * Runs embed_tokens on equal-length rows of ids and checks the [rows, seq, width] result (`width`, when given, is
 * the width the decoder's other inputs have). The embedding families' one way to embed ids.
 */
export async function embedIds({ session, file }: LoadedSession, tokens: readonly (readonly number[])[], width?: number): Promise<ort.Tensor> {
  const rows = tokens.length;
  const seq = tokens[0]?.length ?? 0;
  const out = (await runSession(session, file, { input_ids: int64Tensor(tokens.flat(), [rows, seq]) }))['inputs_embeds'];
  if (!out || out.dims.length !== 3 || out.dims[0] !== rows || out.dims[1] !== seq || (width !== undefined && out.dims[2] !== width)) {
    throw new InputError('BadModel', `${file}: inputs_embeds has shape [${out?.dims.join(', ') ?? 'missing'}], expected [${rows}, ${seq}, ${width ?? 'width'}]`);
  }
  return out;
}

/** Optimum's merged decoder (one graph for the first step and the cached ones), the file every family steps with. */
export const DECODER = 'decoder_model_merged';
