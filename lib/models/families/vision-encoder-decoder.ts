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
import type { DecodeOptions } from '../preprocess';
import { asFloatType, boolTensor, floatInputType, int64Tensor, runSession, selectRows, type SessionInfo } from '../session';
import { checkTokenizerFits } from '../tokenizer-check';
import { CaptionFamily, DECODER, eosIdsOf, loadImageInput, pixelValues, StepSessions, withSessions } from './caption-family';
import { DecoderSource } from './decoder-source';
import { CachedDecodeState, cacheSpecs, checkedLayers, onesMask, positionIds, readCacheShape, stepLength, type CacheShape } from './decoder-cache';
import type { TextTokenizer } from '../tokenizer';
import type { PixelTensor, RuntimeOptions } from '../types';
import { prepareGeneration, type GenerationOptions } from '../generation-graph/graph-generator';
import { knownVocab } from '../generation-graph/loop-graph';

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

export async function loadVisionEncoderDecoder(
  folder: ModelFolder,
  tokenizer: TextTokenizer,
  opts: RuntimeOptions & DecodeOptions & GenerationOptions,
): Promise<CaptionModel> {
  const configFile = folder.display('config.json');
  const config = await folder.readJson('config.json', vedConfigSchema);
  const gen = (await folder.readJson('generation_config.json', generationConfigSchema, { optional: true })) ?? {};
  const dec = config.decoder;

  // Special ids: generation_config.json wins, then config.json, then the decoder's own config (HF's order).
  const start = gen.decoder_start_token_id ?? config.decoder_start_token_id ?? dec.decoder_start_token_id ?? dec.bos_token_id ?? gen.bos_token_id;
  if (start === undefined || start === null) throw new InputError('BadModel', `${configFile}: no decoder_start_token_id (nor decoder bos_token_id)`);
  const eosIds = eosIdsOf(configFile, tokenizer, [gen.eos_token_id, config.eos_token_id, dec.eos_token_id]);

  const image = await loadImageInput(folder, opts);
  return withSessions(folder, opts, async (open) => {
    const encoder = await open('encoder_model', {
      inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: image.size[0], 3: image.size[1] } }],
      outputs: [{ name: 'last_hidden_state', types: FLOAT_TYPES, rank: 3 }],
    });
    const configLayers = dec.n_layer ?? dec.num_hidden_layers;
    const encoderHidden = staticDim(encoder.session, 'last_hidden_state', 'output', 2);
    const signature = (info: SessionInfo, file: string): SessionSignature => decoderSignature(info, file, configLayers, encoderHidden);
    const verify = (info: SessionInfo, file: string): void =>
      checkTokenizerFits(tokenizer, { vocab: [[staticDim(info, 'logits', 'output', 2), `${file} logits`], [dec.vocab_size, `${configFile} decoder.vocab_size`]], ids: { decoder_start_token_id: start, eos_token_id: eosIds } }, folder.display('tokenizer.json'));
    const decoder = await DecoderSource.open(folder, DECODER, opts, open, signature, verify);
    const cache = readCacheShape(decoder, '', { heads: dec.n_head ?? dec.num_attention_heads, hidden: dec.n_embd ?? dec.hidden_size, source: `${configFile} decoder n_head/n_embd` });
    const vocab = staticDim(decoder.info, 'logits', 'output', 2);
    const generation = await prepareGeneration(decoder, opts, async (model) => ({
      family: 'vision-encoder-decoder',
      decoder: model,
      context: 'encoder_hidden_states',
      promptIds: [start],
      eosIds,
      vocab: knownVocab(decoder.file, vocab, dec.vocab_size),
      cache: { ...cache, growing: '' },
    }));
    const steps = await StepSessions.forRoute(generation.route, folder, opts, open, async (o) => ({ decoder: await o(DECODER, signature, verify) }));
    const contextType = floatInputType(decoder.info, 'encoder_hidden_states');
    return new VisionEncoderDecoder({ modelDir: folder.dir, tokenizer, image, sessions: { encoder }, steps, contextType, cache, promptIds: [start], eosIds, generation });
  });
}


/** Optimum's merged-decoder signature, with the layer count read from the model's own inputs. */
function decoderSignature(session: SessionInfo, file: string, configLayers: number | undefined, encoderHidden: number | undefined): SessionSignature {
  const layers = checkedLayers(session, file, '', "Optimum's merged decoder with cache", { layers: configLayers, key: 'config.json' });
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

class VisionEncoderDecoder extends CaptionFamily<{ encoder: LoadedSession }, { decoder: LoadedSession }> {
  readonly family = 'vision-encoder-decoder';

  /** The encoder's last_hidden_state, in the element type the decoder takes. */
  async context(pixels: readonly PixelTensor[]): Promise<ort.Tensor> {
    const { session, file } = this.parts.sessions.encoder;
    const out = await runSession(session, file, { pixel_values: pixelValues(session, this.parts.image, pixels) });
    const hidden = out['last_hidden_state'];
    if (!hidden) throw new InputError('BadModel', `${file}: last_hidden_state missing from the run result`);
    return asFloatType(hidden, this.parts.contextType, file);
  }

  async begin(pixels: readonly PixelTensor[]): Promise<DecodeState> {
    const { decoder } = await this.parts.steps.get();
    return new VedDecodeState(decoder, await this.context(pixels), this.parts.cache);
  }
}

class VedDecodeState extends CachedDecodeState {
  constructor(
    decoder: LoadedSession,
    private encoderStates: ort.Tensor,
    cache: CacheShape,
  ) {
    super(decoder, encoderStates.dims[0]!, cache);
  }

  get rows(): number {
    return this.encoderStates.dims[0]!;
  }

  async step(tokens: readonly (readonly number[])[]): Promise<StepResult> {
    const rows = this.rows;
    const seq = stepLength(tokens, rows);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64Tensor(tokens.flat(), [rows, seq]),
      encoder_hidden_states: this.encoderStates,
      use_cache_branch: boolTensor([this.pastLen > 0], [1]),
    };
    // Fed only when the export has them.
    const names = this.decoder.session.inputNames;
    if (names.includes('attention_mask')) feeds['attention_mask'] = onesMask(rows, this.pastLen + seq);
    if (names.includes('encoder_attention_mask')) feeds['encoder_attention_mask'] = onesMask(rows, this.encoderStates.dims[1]!);
    if (names.includes('position_ids')) feeds['position_ids'] = positionIds(rows, seq, this.pastLen);
    return this.runDecoder(feeds, seq);
  }

  override keepRows(rows: readonly number[]): void {
    super.keepRows(rows);
    this.encoderStates = selectRows(this.encoderStates, rows);
  }
}
