/**
 * Prefix-LM captioners (BLIP-2 with a decoder-only LM such as OPT), in the layout docs/models/blip2.md defines
 * (transformers.js' image-text-to-text names):
 *   onnx/vision_encoder.onnx        pixel_values [B,3,H,W] -> image_features [B, Q, D]  (vision + Q-Former + projection)
 *   onnx/embed_tokens.onnx          input_ids [B,S] -> inputs_embeds [B, S, D]
 *   onnx/decoder_model_merged.onnx  inputs_embeds [B,S,D], attention_mask [B, past+S], past_key_values.{i}.key/value
 *                                   (+ position_ids, use_cache_branch when the export has them)
 *                                   -> logits [B,S,V], present.{i}.key/value
 * Like HF's Blip2ForConditionalGeneration.generate, the first step feeds [image_features, embed(BOS + prompt)]
 * with an all-ones mask; later steps feed one embedded token per row against the cache.
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../../errors';
import type { CaptionModel, DecodeState, StepResult } from '../caption-model';
import { FLOAT_TYPES, staticDim, type LoadedSession, type ModelFolder, type SessionSignature } from '../model-folder';
import type { DecodeOptions } from '../preprocess';
import { asFloatType, boolTensor, floatInputType, floatTensor, readFloats, runSession, type SessionInfo } from '../session';
import { CaptionFamily, DECODER, embedIds, eosIdsOf, loadImageInput, pixelValues, StepSessions, withSessions, type FamilyParts, type OpenSession } from './caption-family';
import { DecoderSource } from './decoder-source';
import { CachedDecodeState, cacheSpecs, checkedLayers, onesMask, positionIds, readCacheShape, stepLength, type CacheShape } from './decoder-cache';
import type { TextTokenizer } from '../tokenizer';
import { checkTokenizerFits } from '../tokenizer-check';
import type { PixelTensor, RuntimeOptions } from '../types';
import { prepareGeneration, promptEmbeddings, readModel, type GenerationOptions } from '../generation-graph/graph-generator';
import { knownVocab } from '../generation-graph/loop-graph';

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]);
const specialIds = {
  bos_token_id: z.number().int().nullish(),
  eos_token_id: tokenIds.nullish(),
  pad_token_id: z.number().int().nullish(),
};
const positive = z.number().int().positive();
export const blip2ConfigSchema = z.object({
  model_type: z.literal('blip-2'),
  ...specialIds,
  num_query_tokens: positive.optional(),
  use_decoder_only_language_model: z.boolean().optional(),
  text_config: z.object({
    ...specialIds,
    model_type: z.string().optional(),
    num_hidden_layers: positive.optional(),
    num_attention_heads: positive.optional(),
    hidden_size: positive.optional(),
    /** OPT's input-embedding width when it differs from hidden_size (project_in) */
    word_embed_proj_dim: positive.optional(),
    vocab_size: positive.optional(),
  }),
});
const generationConfigSchema = z.object(specialIds);

export interface PrefixLmOptions {
  /** Text the LM continues after the image, e.g. "a photo of" (BLIP-2's prompt); captions exclude it. */
  textPrompt?: string;
}

export async function loadPrefixLm(folder: ModelFolder, tokenizer: TextTokenizer, opts: RuntimeOptions & DecodeOptions & PrefixLmOptions & GenerationOptions): Promise<CaptionModel> {
  const configFile = folder.display('config.json');
  const config = await folder.readJson('config.json', blip2ConfigSchema);
  const gen = (await folder.readJson('generation_config.json', generationConfigSchema, { optional: true })) ?? {};
  const text = config.text_config;
  if (config.use_decoder_only_language_model === false) {
    throw new InputError('BadModel', `${configFile}: BLIP-2 with an encoder-decoder language model (${text.model_type ?? 'unknown'}) is not a prefix-LM; only decoder-only LMs (OPT...) are supported`);
  }

  // generation_config.json wins, then the LM's own config (what HF's language_model.generate uses), then the top level.
  const bos = gen.bos_token_id ?? text.bos_token_id ?? config.bos_token_id;
  if (bos === undefined || bos === null) throw new InputError('BadModel', `${configFile}: no bos_token_id (text_config nor generation_config.json)`);
  const eosIds = eosIdsOf(configFile, tokenizer, [gen.eos_token_id, text.eos_token_id, config.eos_token_id]);
  const promptIds = promptTokens(tokenizer, bos, opts.textPrompt);

  const image = await loadImageInput(folder, opts);
  // The decoder defines the LM; the embedding width every other graph must produce is checked against it.
  const configWidth = text.word_embed_proj_dim ?? text.hidden_size;
  const widthSource = `${configFile} text_config.${text.word_embed_proj_dim ? 'word_embed_proj_dim' : 'hidden_size'}`;
  return withSessions(folder, opts, async (open, close) => {
    const signature = (info: SessionInfo, file: string): SessionSignature => decoderSignature(info, file, text.num_hidden_layers, text.vocab_size);
    const decoder = await DecoderSource.open(folder, DECODER, opts, open, signature, (info, file) => {
      expectWidth(info, file, 'inputs_embeds', 'input', configWidth, widthSource);
      const vocab: [number | undefined, string][] = [
        [staticDim(info, 'logits', 'output', 2), `${file} logits`],
        [text.vocab_size, `${configFile} text_config.vocab_size`],
      ];
      checkTokenizerFits(tokenizer, { vocab, ids: { bos_token_id: bos, eos_token_id: eosIds } }, folder.display('tokenizer.json'));
    });
    const width = configWidth ?? staticDim(decoder.info, 'inputs_embeds', 'input', 2);
    const source = configWidth !== undefined ? widthSource : `inputs_embeds of ${decoder.file}`;
    const openEmbed = (o: OpenSession): Promise<LoadedSession> =>
      o(
        'embed_tokens',
        { inputs: [{ name: 'input_ids', types: ['int64'], rank: 2 }], outputs: [{ name: 'inputs_embeds', types: FLOAT_TYPES, rank: 3 }] },
        (s, file) => expectWidth(s, file, 'inputs_embeds', 'output', width, source),
      );
    // Opened on either route: it embeds the prompt once for the graph; only the JS loop keeps it.
    const embed = await openEmbed(open);
    const vision = await open(
      'vision_encoder',
      {
        inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: image.size[0], 3: image.size[1] } }],
        outputs: [{ name: 'image_features', types: FLOAT_TYPES, rank: 3 }],
      },
      (s, file) => {
        expectWidth(s, file, 'image_features', 'output', width, source);
        const queries = staticDim(s, 'image_features', 'output', 1);
        if (config.num_query_tokens !== undefined && queries !== undefined && queries !== config.num_query_tokens) {
          throw new InputError('BadModel', `${file}: image_features has ${queries} query tokens but ${configFile} says num_query_tokens = ${config.num_query_tokens}`);
        }
      },
    );

    const cache = readCacheShape(decoder, '', { heads: text.num_attention_heads, hidden: text.hidden_size, source: `${configFile} text_config num_attention_heads/hidden_size` });
    const embedsType = floatInputType(decoder.info, 'inputs_embeds');
    const vocab = staticDim(decoder.info, 'logits', 'output', 2);
    const generation = await prepareGeneration(decoder, opts, async (model) => ({
      family: 'prefix-lm',
      decoder: model,
      embed: await readModel(embed.file),
      context: 'prefix',
      promptIds,
      promptEmbeds: await promptEmbeddings(embed, promptIds, embedsType),
      eosIds,
      vocab: knownVocab(decoder.file, vocab, text.vocab_size),
      cache: { ...cache, growing: '' },
    }));
    if (generation.route.kind === 'graph') await close(embed);
    const steps = await StepSessions.forRoute(generation.route, folder, opts, open, async (o) => ({ decoder: await o(DECODER, signature), embed: await openEmbed(o) }));
    return new PrefixLm({ modelDir: folder.dir, tokenizer, image, sessions: { vision }, steps, contextType: embedsType, cache, promptIds, eosIds, generation }, config.num_query_tokens);
  });
}


/**
 * BOS then the prompt's tokens, as Blip2Processor feeds them: OPT's tokenizer.json already prepends BOS (`</s>`),
 * other tokenizers may not, so BOS is added only when missing.
 */
function promptTokens(tokenizer: TextTokenizer, bos: number, textPrompt: string | undefined): number[] {
  if (textPrompt === undefined || textPrompt === '') return [bos];
  if (typeof textPrompt !== 'string') throw new InputError('InvalidConfig', `textPrompt must be a string, got ${typeof textPrompt}`);
  const ids = tokenizer.encodeOne(textPrompt);
  return ids[0] === bos ? ids : [bos, ...ids];
}

/** A static last-axis size that differs from the LM's input width is refused at load, naming both sides. */
function expectWidth(session: SessionInfo, file: string, name: string, kind: 'input' | 'output', width: number | undefined, source: string): void {
  const actual = staticDim(session, name, kind, 2);
  if (width !== undefined && actual !== undefined && actual !== width) {
    throw new InputError('BadModel', `${file}: ${kind} '${name}' is ${actual} wide but the language model takes ${width}-wide input embeddings (${source})`);
  }
}

/** Decoder-only LM with cache, taking inputs_embeds (Optimum's text-generation-with-past names otherwise). */
function decoderSignature(session: SessionInfo, file: string, configLayers: number | undefined, vocab: number | undefined): SessionSignature {
  const layers = checkedLayers(session, file, '', 'a decoder-only LM with cache', { layers: configLayers, key: 'config.json text_config.num_hidden_layers' });
  const { past: kv, present } = cacheSpecs(layers);
  return {
    inputs: [
      { name: 'inputs_embeds', types: FLOAT_TYPES, rank: 3 },
      { name: 'attention_mask', types: ['int64'], rank: 2 },
      ...kv,
      // Fed only when an export has them.
      { name: 'position_ids', types: ['int64'], rank: 2, optional: true },
      { name: 'use_cache_branch', types: ['bool'], rank: 1, optional: true },
    ],
    outputs: [{ name: 'logits', types: FLOAT_TYPES, rank: 3, ...(vocab ? { dims: { 2: vocab } } : {}) }, ...present],
  };
}

/** The sessions the JS loop steps with. */
interface Steps {
  embed: LoadedSession;
  decoder: LoadedSession;
}

class PrefixLm extends CaptionFamily<{ vision: LoadedSession }, Steps> {
  readonly family = 'prefix-lm';

  constructor(
    parts: FamilyParts<{ vision: LoadedSession }, Steps>,
    private readonly queryTokens: number | undefined,
  ) {
    super(parts);
  }

  /** The image prefix [rows, queries, width], in the element type the decoder's inputs_embeds take. */
  async context(pixels: readonly PixelTensor[]): Promise<ort.Tensor> {
    const features = await this.imageFeatures(pixels);
    return asFloatType(features, this.parts.contextType, this.parts.sessions.vision.file);
  }

  async begin(pixels: readonly PixelTensor[]): Promise<DecodeState> {
    const steps = await this.parts.steps.get();
    const features = await this.context(pixels);
    const dims = features.dims;
    return new PrefixLmDecodeState(steps, readFloats(features, this.parts.sessions.vision.file), dims[1]!, dims[2]!, pixels.length, this.parts.cache);
  }

  /** vision_encoder's image_features for a batch, shape-checked. */
  private async imageFeatures(pixels: readonly PixelTensor[]): Promise<ort.Tensor> {
    const { session, file } = this.parts.sessions.vision;
    const out = await runSession(session, file, { pixel_values: pixelValues(session, this.parts.image, pixels) });
    const features = out['image_features'];
    const dims = features?.dims ?? [];
    if (!features || dims.length !== 3 || dims[0] !== pixels.length || (this.queryTokens !== undefined && dims[1] !== this.queryTokens)) {
      throw new InputError('BadModel', `${file}: image_features have shape [${dims.join(', ') || 'missing'}], expected [${pixels.length}, ${this.queryTokens ?? 'query tokens'}, width]`);
    }
    return features;
  }
}

class PrefixLmDecodeState extends CachedDecodeState {
  private count: number;
  private readonly embedsType: 'float32' | 'float16';

  constructor(
    private readonly sessions: Steps,
    /** [rows, queries, width] float32; consumed by the first step, then dropped */
    private imageFeatures: Float32Array | undefined,
    private readonly queries: number,
    private readonly width: number,
    rows: number,
    cache: CacheShape,
  ) {
    super(sessions.decoder, rows, cache);
    this.count = rows;
    this.embedsType = floatInputType(sessions.decoder.session, 'inputs_embeds');
  }

  get rows(): number {
    return this.count;
  }

  /** Token embeddings of `tokens` as float32 [rows, seq, width]. */
  private async embed(tokens: readonly (readonly number[])[], seq: number): Promise<Float32Array> {
    if (tokens.length !== this.count || tokens.some((t) => t.length !== seq)) throw new Error(`embed: ${tokens.length} rows of ids for ${this.count} rows of ${seq}`);
    return readFloats(await embedIds(this.sessions.embed, tokens, this.width), this.sessions.embed.file);
  }

  async step(tokens: readonly (readonly number[])[]): Promise<StepResult> {
    const rows = this.count;
    const seq = stepLength(tokens, rows);
    const tokenEmbeds = await this.embed(tokens, seq);
    let inputs = tokenEmbeds;
    let len = seq;
    if (this.pastLen === 0) {
      // Prefill: each row is [its image features, its token embeddings].
      const image = this.imageFeatures;
      if (!image) throw new Error('decoder step: the image prefix is gone (state already used)');
      const Q = this.queries;
      const D = this.width;
      len = Q + seq;
      inputs = new Float32Array(rows * len * D);
      for (let r = 0; r < rows; r++) {
        inputs.set(image.subarray(r * Q * D, (r + 1) * Q * D), r * len * D);
        inputs.set(tokenEmbeds.subarray(r * seq * D, (r + 1) * seq * D), (r * len + Q) * D);
      }
      this.imageFeatures = undefined;
    }

    // Rows are never padded (same prompt, finished rows leave the batch), so the mask is all ones and the
    // positions are past + arange(len), which is what OPT derives from the mask's cumsum.
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: floatTensor(this.embedsType, inputs, [rows, len, this.width]),
      attention_mask: onesMask(rows, this.pastLen + len),
    };
    const names = this.decoder.session.inputNames;
    if (names.includes('position_ids')) feeds['position_ids'] = positionIds(rows, len, this.pastLen);
    if (names.includes('use_cache_branch')) feeds['use_cache_branch'] = boolTensor([this.pastLen > 0], [1]);
    return this.runDecoder(feeds, len);
  }

  override keepRows(rows: readonly number[]): void {
    super.keepRows(rows);
    const image = this.imageFeatures;
    if (image) {
      const size = this.queries * this.width;
      const kept = new Float32Array(rows.length * size);
      rows.forEach((r, i) => kept.set(image.subarray(r * size, (r + 1) * size), i * size));
      this.imageFeatures = kept;
    }
    this.count = rows.length;
  }
}
