/**
 * VisionEncoderDecoder (ViT-GPT2 and friends) in Optimum's layout: onnx/encoder_model.onnx runs once per batch,
 * onnx/decoder_model_merged.onnx runs once per step with past_key_values.{i}.key/value in and present.{i}.* out.
 * The first step passes empty past tensors with use_cache_branch = false, as transformers.js does.
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../../errors';
import type { CaptionModel, DecodeState, StepResult } from '../caption-model';
import { FLOAT_TYPES, staticDim, type LoadedSession, type ModelFolder, type SessionSignature } from '../model-folder';
import { loadImageProcessor, outputSize, preprocessImage, stackPixels, type DecodeOptions, type ImageProcessorSpec } from '../preprocess';
import { boolTensor, floatInputType, floatTensor, int64Tensor, readFloats, runSession, selectRows, lastPositionLogits } from '../session';
import { checkTokenizerFits } from '../tokenizer-check';
import { cacheSpecs, stepLength, type CacheShape } from './decoder-cache';
import type { TextTokenizer } from '../tokenizer';
import type { PixelTensor, RuntimeOptions } from '../types';

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]);
const specialIds = {
  decoder_start_token_id: z.number().int().nullish(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: tokenIds.nullish(),
  pad_token_id: z.number().int().nullish(),
};
export const vedConfigSchema = z.object({
  model_type: z.literal('vision-encoder-decoder'),
  ...specialIds,
  decoder: z.object({
    ...specialIds,
    n_layer: z.number().int().positive().optional(),
    num_hidden_layers: z.number().int().positive().optional(),
    n_head: z.number().int().positive().optional(),
    num_attention_heads: z.number().int().positive().optional(),
    n_embd: z.number().int().positive().optional(),
    hidden_size: z.number().int().positive().optional(),
    vocab_size: z.number().int().positive().optional(),
  }),
});
const generationConfigSchema = z.object(specialIds);

const asList = (v: number | number[] | null | undefined): number[] | undefined => (v === null || v === undefined ? undefined : Array.isArray(v) ? v : [v]);

export async function loadVisionEncoderDecoder(
  folder: ModelFolder,
  tokenizer: TextTokenizer,
  opts: RuntimeOptions & DecodeOptions,
): Promise<CaptionModel> {
  const configFile = folder.display('config.json');
  const config = await folder.readJson('config.json', vedConfigSchema);
  const gen = (await folder.readJson('generation_config.json', generationConfigSchema, { optional: true })) ?? {};
  const dec = config.decoder;

  // Special ids: generation_config.json wins, then config.json, then the decoder's own config (HF's order).
  const start = gen.decoder_start_token_id ?? config.decoder_start_token_id ?? dec.decoder_start_token_id ?? dec.bos_token_id ?? gen.bos_token_id;
  const eosIds = asList(gen.eos_token_id) ?? asList(config.eos_token_id) ?? asList(dec.eos_token_id) ?? (tokenizer.eosId !== undefined ? [tokenizer.eosId] : undefined);
  if (start === undefined || start === null) throw new InputError('BadModel', `${configFile}: no decoder_start_token_id (nor decoder bos_token_id)`);
  if (!eosIds || eosIds.length === 0) throw new InputError('BadModel', `${configFile}: no eos_token_id`);

  const spec = await loadImageProcessor(folder);
  const size = outputSize(spec);
  if (!size) throw new InputError('BadModel', `${folder.display('preprocessor_config.json')}: must produce a fixed image size`);

  const encoder = await folder.session(
    'encoder_model',
    {
      inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: size[0], 3: size[1] } }],
      outputs: [{ name: 'last_hidden_state', types: FLOAT_TYPES, rank: 3 }],
    },
    opts,
  );
  let decoder: LoadedSession;
  try {
    const configLayers = dec.n_layer ?? dec.num_hidden_layers;
    const encoderHidden = staticDim(encoder.session, 'last_hidden_state', 'output', 2);
    decoder = await folder.session('decoder_model_merged', (session, file) => decoderSignature(session, file, configLayers, encoderHidden), opts, (session, file) =>
      checkTokenizerFits(tokenizer, { vocab: [[staticDim(session, 'logits', 'output', 2), `${file} logits`], [dec.vocab_size, `${configFile} decoder.vocab_size`]], ids: { decoder_start_token_id: start, eos_token_id: eosIds } }, folder.display('tokenizer.json')));
  } catch (err) {
    await encoder.session.release();
    throw err;
  }
  const layers = decoder.session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  const heads = staticDim(decoder.session, 'past_key_values.0.key', 'input', 1) ?? dec.n_head ?? dec.num_attention_heads;
  const hidden = dec.n_embd ?? dec.hidden_size;
  const headDim = staticDim(decoder.session, 'past_key_values.0.key', 'input', 3) ?? (hidden && heads ? hidden / heads : undefined);
  if (!heads || !headDim || !Number.isInteger(headDim)) {
    await Promise.all([encoder.session.release(), decoder.session.release()]);
    throw new InputError('BadModel', `${decoder.file}: cannot tell the number of heads / head size (not static in the model nor in ${configFile} decoder n_head/n_embd)`);
  }
  return new VisionEncoderDecoder(folder.dir, tokenizer, spec, size, encoder, decoder, { layers, heads, headDim }, [start], eosIds, { maxPixels: opts.maxPixels, failOn: opts.failOn, resampler: opts.resampler });
}

/** Optimum's merged-decoder signature, with the layer count read from the model's own inputs. */
function decoderSignature(session: ort.InferenceSession, file: string, configLayers: number | undefined, encoderHidden: number | undefined): SessionSignature {
  const layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  if (layers === 0) {
    throw new InputError('BadModel', `${file}: no past_key_values.{i}.key inputs; expected Optimum's merged decoder with cache (inputs: ${session.inputNames.join(', ')})`);
  }
  if (configLayers !== undefined && configLayers !== layers) {
    throw new InputError('BadModel', `${file}: has ${layers} cached layers but config.json says ${configLayers}`);
  }
  const { past: kv, present } = cacheSpecs(layers);
  return {
    inputs: [
      { name: 'input_ids', types: ['int64'], rank: 2 },
      { name: 'encoder_hidden_states', types: FLOAT_TYPES, rank: 3, ...(encoderHidden ? { dims: { 2: encoderHidden } } : {}) },
      { name: 'use_cache_branch', types: ['bool'], rank: 1 },
      ...kv,
      // Fed only when an export has them.
      { name: 'attention_mask', types: ['int64'], rank: 2, optional: true },
      { name: 'encoder_attention_mask', types: ['int64'], rank: 2, optional: true },
      { name: 'position_ids', types: ['int64'], rank: 2, optional: true },
    ],
    outputs: [{ name: 'logits', types: FLOAT_TYPES, rank: 3 }, ...present],
  };
}

class VisionEncoderDecoder implements CaptionModel {
  readonly family = 'vision-encoder-decoder';

  constructor(
    readonly modelDir: string,
    readonly tokenizer: TextTokenizer,
    private readonly spec: ImageProcessorSpec,
    private readonly size: [number, number],
    private readonly encoder: LoadedSession,
    private readonly decoder: LoadedSession,
    private readonly cache: CacheShape,
    readonly promptIds: readonly number[],
    readonly eosIds: readonly number[],
    private readonly decode: DecodeOptions,
  ) {}

  preprocess(image: Buffer): Promise<PixelTensor> {
    return preprocessImage(image, this.spec, this.decode);
  }

  async begin(pixels: readonly PixelTensor[]): Promise<DecodeState> {
    const batch = stackPixels(pixels, this.size);
    const { session, file } = this.encoder;
    const out = await runSession(session, file, { pixel_values: floatTensor(floatInputType(session, 'pixel_values'), batch.data, batch.dims) });
    let hidden = out['last_hidden_state'];
    if (!hidden) throw new InputError('BadModel', `${file}: last_hidden_state missing from the run result`);
    const wanted = floatInputType(this.decoder.session, 'encoder_hidden_states');
    if (hidden.type !== wanted) hidden = floatTensor(wanted, readFloats(hidden, file), hidden.dims);
    return new VedDecodeState(this.decoder, hidden, this.cache, floatInputType(this.decoder.session, 'past_key_values.0.key'));
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.session.release(), this.decoder.session.release()]);
  }
}

class VedDecodeState implements DecodeState {
  /** past_key_values.{i}.key, .value for each layer, in input order */
  private past: ort.Tensor[];
  private pastLen = 0;

  constructor(
    private readonly decoder: LoadedSession,
    private encoderStates: ort.Tensor,
    private readonly cache: CacheShape,
    kvType: 'float32' | 'float16',
  ) {
    const rows = encoderStates.dims[0]!;
    const empty = floatTensor(kvType, new Float32Array(0), [rows, cache.heads, 0, cache.headDim]);
    this.past = Array.from({ length: 2 * cache.layers }, () => empty);
  }

  get rows(): number {
    return this.encoderStates.dims[0]!;
  }

  async step(tokens: readonly (readonly number[])[]): Promise<StepResult> {
    const rows = this.rows;
    const seq = stepLength(tokens, rows);
    const { session, file } = this.decoder;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64Tensor(tokens.flat(), [rows, seq]),
      encoder_hidden_states: this.encoderStates,
      use_cache_branch: boolTensor([this.pastLen > 0], [1]),
    };
    for (let i = 0; i < this.cache.layers; i++) {
      feeds[`past_key_values.${i}.key`] = this.past[2 * i]!;
      feeds[`past_key_values.${i}.value`] = this.past[2 * i + 1]!;
    }
    const names = session.inputNames;
    const total = this.pastLen + seq;
    if (names.includes('attention_mask')) feeds['attention_mask'] = int64Tensor(new Array<number>(rows * total).fill(1), [rows, total]);
    if (names.includes('encoder_attention_mask')) {
      const encLen = this.encoderStates.dims[1]!;
      feeds['encoder_attention_mask'] = int64Tensor(new Array<number>(rows * encLen).fill(1), [rows, encLen]);
    }
    if (names.includes('position_ids')) {
      feeds['position_ids'] = int64Tensor(Array.from({ length: rows * seq }, (_, k) => this.pastLen + (k % seq)), [rows, seq]);
    }

    const out = await runSession(session, file, feeds);
    const logits = out['logits'];
    if (!logits || logits.dims.length !== 3 || logits.dims[0] !== rows || logits.dims[1] !== seq) {
      throw new InputError('BadModel', `${file}: logits have shape [${logits?.dims.join(', ') ?? 'missing'}], expected [${rows}, ${seq}, vocab]`);
    }
    for (let i = 0; i < this.cache.layers; i++) {
      for (const [j, part] of ['key', 'value'].entries()) {
        const t = out[`present.${i}.${part}`];
        if (!t || t.dims[2] !== total) throw new InputError('BadModel', `${file}: present.${i}.${part} has shape [${t?.dims.join(', ') ?? 'missing'}], expected past+new = ${total} positions`);
        this.past[2 * i + j] = t;
      }
    }
    this.pastLen = total;

    return lastPositionLogits(logits, file);
  }

  keepRows(rows: readonly number[]): void {
    this.encoderStates = selectRows(this.encoderStates, rows);
    this.past = this.past.map((t) => selectRows(t, rows));
  }
}
