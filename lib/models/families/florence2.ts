/**
 * Florence-2 in the transformers.js (onnx-community) layout. Per batch: onnx/vision_encoder.onnx turns pixels into
 * image_features, onnx/encoder_model.onnx encodes concat(image_features, task prompt embeddings) — the task prompt
 * ("<CAPTION>" -> "What does the image describe?") is embedded once at load by onnx/embed_tokens.onnx. Per step: embed_tokens embeds the
 * new decoder tokens and onnx/decoder_model_merged.onnx runs with two caches per layer:
 *   past_key_values.{i}.decoder.* grows by one position a step (self-attention);
 *   past_key_values.{i}.encoder.* (cross-attention K/V) is computed on the first step and handed back unchanged.
 * Optimum's merged export returns empty placeholders for present.{i}.encoder.* on cached steps, so the first
 * step's values are kept (transformers.js does the same); an export that returns them every step works too.
 * The task prompt is encoder-side; promptIds are the decoder's start ids (decoder_start_token_id, then the
 * forced BOS when the configs force one, as HF's ForcedBOSTokenLogitsProcessor would).
 */
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../../errors';
import type { CaptionModel, DecodeState, StepResult } from '../caption-model';
import { FLOAT_TYPES, staticDim, type LoadedSession, type ModelFolder, type SessionSignature } from '../model-folder';
import type { DecodeOptions } from '../preprocess';
import { asFloatType, boolTensor, floatInputType, floatTensor, readFloats, runSession, selectRows, type SessionInfo } from '../session';
import { CaptionFamily, DECODER, embedIds, eosIdsOf, loadImageInput, pixelValues, StepSessions, withSessions, type FamilyParts, type OpenSession } from './caption-family';
import { DecoderSource } from './decoder-source';
import { CachedDecodeState, cacheSpecs, checkedLayers, emptyPast, feedPast, onesMask, readCacheShape, stepLength, type CacheShape } from './decoder-cache';
import type { TextTokenizer } from '../tokenizer';
import { checkTokenizerFits } from '../tokenizer-check';
import type { PixelTensor, RuntimeOptions } from '../types';
import { prepareGeneration, promptEmbeddings, readModel, type GenerationOptions } from '../generation-graph/graph-generator';
import { knownVocab } from '../generation-graph/loop-graph';

/** processing_florence2.py's captioning tasks and prompts; a folder's preprocessor_config.json may restate them. */
export const FLORENCE2_CAPTION_TASKS: Readonly<Record<string, string>> = {
  '<CAPTION>': 'What does the image describe?',
  '<DETAILED_CAPTION>': 'Describe in detail what is shown in the image.',
  '<MORE_DETAILED_CAPTION>': 'Describe with a paragraph what is shown in the image.',
};
export const DEFAULT_FLORENCE2_TASK = '<CAPTION>';

export interface Florence2Options extends RuntimeOptions, DecodeOptions, GenerationOptions {
  /** Captioning task token (default `<CAPTION>`). */
  taskPrompt?: string;
}

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]);
const specialIds = {
  decoder_start_token_id: z.number().int().nullish(),
  forced_bos_token_id: z.number().int().nullish(),
  bos_token_id: z.number().int().nullish(),
  eos_token_id: tokenIds.nullish(),
  pad_token_id: z.number().int().nullish(),
};
const positive = z.number().int().positive().optional();
export const florence2ConfigSchema = z.object({
  model_type: z.literal('florence2'),
  ...specialIds,
  // Florence-2 keeps the language model's sizes (and usually its special ids) under text_config.
  text_config: z.object({ ...specialIds, d_model: positive, decoder_layers: positive, decoder_attention_heads: positive, vocab_size: positive }),
});
const generationConfigSchema = z.object(specialIds);
const taskPromptsSchema = z.looseObject({ task_prompts_without_inputs: z.record(z.string(), z.string()).optional() });

/** The prompt text of a captioning task, from the folder's preprocessor_config.json when it restates it. */
async function taskPromptText(folder: ModelFolder, task: unknown): Promise<string> {
  const valid = Object.keys(FLORENCE2_CAPTION_TASKS);
  if (typeof task !== 'string' || !valid.includes(task)) {
    throw new InputError('InvalidConfig', `taskPrompt ${JSON.stringify(task)} is not a Florence-2 captioning task (valid: ${valid.join(', ')})`);
  }
  const pre = await folder.readJson('preprocessor_config.json', taskPromptsSchema);
  return pre.task_prompts_without_inputs?.[task] ?? FLORENCE2_CAPTION_TASKS[task]!;
}

export async function loadFlorence2(folder: ModelFolder, tokenizer: TextTokenizer, opts: Florence2Options): Promise<CaptionModel> {
  const configFile = folder.display('config.json');
  const task = opts.taskPrompt ?? DEFAULT_FLORENCE2_TASK;
  const promptText = await taskPromptText(folder, task);
  const config = await folder.readJson('config.json', florence2ConfigSchema);
  const gen = (await folder.readJson('generation_config.json', generationConfigSchema, { optional: true })) ?? {};
  const text = config.text_config;

  // Special ids: generation_config.json wins, then config.json, then text_config (HF's order).
  const start = gen.decoder_start_token_id ?? config.decoder_start_token_id ?? text.decoder_start_token_id;
  const forcedBos = gen.forced_bos_token_id ?? config.forced_bos_token_id ?? text.forced_bos_token_id;
  if (start === undefined || start === null) throw new InputError('BadModel', `${configFile}: no decoder_start_token_id (generation_config.json, config.json or text_config)`);
  const eosIds = eosIdsOf(configFile, tokenizer, [gen.eos_token_id, config.eos_token_id, text.eos_token_id]);
  const taskIds = tokenizer.encodeOne(promptText);

  const image = await loadImageInput(folder, opts);
  return withSessions(folder, opts, async (open, close) => {
    const hidden = text.d_model;
    const hiddenDims: Record<number, number> = hidden ? { 2: hidden } : {};
    const vision = await open('vision_encoder', {
      inputs: [{ name: 'pixel_values', types: FLOAT_TYPES, rank: 4, dims: { 1: 3, 2: image.size[0], 3: image.size[1] } }],
      outputs: [{ name: 'image_features', types: FLOAT_TYPES, rank: 3, dims: hiddenDims }],
    });
    const openEmbed = (o: OpenSession): Promise<LoadedSession> =>
      o('embed_tokens', {
        inputs: [{ name: 'input_ids', types: ['int64'], rank: 2 }],
        outputs: [{ name: 'inputs_embeds', types: FLOAT_TYPES, rank: 3, dims: hiddenDims }],
      });
    // Opened on either route: it embeds the task prompt (and the graph's decoder prompt) once; only the JS loop keeps it.
    const embed = await openEmbed(open);
    const encoder = await open('encoder_model', {
      inputs: [
        { name: 'inputs_embeds', types: FLOAT_TYPES, rank: 3, dims: hiddenDims },
        { name: 'attention_mask', types: ['int64'], rank: 2 },
      ],
      outputs: [{ name: 'last_hidden_state', types: FLOAT_TYPES, rank: 3, dims: hiddenDims }],
    });
    // A tokenizer that does not fit the decoder's vocabulary is refused here, not discovered per sample.
    const signature = (info: SessionInfo, file: string): SessionSignature => decoderSignature(info, file, text.decoder_layers, hidden);
    const decoder = await DecoderSource.open(folder, DECODER, opts, open, signature, (info, file) =>
      checkTokenizerFits(
        tokenizer,
        { vocab: [[staticDim(info, 'logits', 'output', 2), `${file} logits`], [text.vocab_size, `${configFile} text_config.vocab_size`]], ids: { decoder_start_token_id: start, eos_token_id: eosIds } },
        folder.display('tokenizer.json'),
      ),
    );

    const cache = readCacheShape(decoder, 'decoder', { heads: text.decoder_attention_heads, hidden, source: `${configFile} text_config decoder_attention_heads/d_model` });
    const promptIds = forcedBos === undefined || forcedBos === null ? [start] : [start, forcedBos];
    // The task prompt is the same for every row: embedded once here (the graph route keeps no embed_tokens session).
    const taskPrompt = { length: taskIds.length, embeds: readFloats(await embedIds(embed, [taskIds]), embed.file), file: embed.file };
    const vocab = staticDim(decoder.info, 'logits', 'output', 2);
    const generation = await prepareGeneration(decoder, opts, async (model) => ({
      family: 'florence2',
      decoder: model,
      embed: await readModel(embed.file),
      context: 'encoder_hidden_states',
      promptIds,
      promptEmbeds: await promptEmbeddings(embed, promptIds, floatInputType(decoder.info, 'inputs_embeds')),
      eosIds,
      vocab: knownVocab(decoder.file, vocab, text.vocab_size),
      cache: { ...cache, growing: 'decoder', fixed: 'encoder' },
    }));
    if (generation.route.kind === 'graph') await close(embed);
    const steps = await StepSessions.forRoute(generation.route, folder, opts, open, async (o) => ({ decoder: await o(DECODER, signature), embed: await openEmbed(o) }));
    const contextType = floatInputType(decoder.info, 'encoder_hidden_states');
    const parts = { modelDir: folder.dir, tokenizer, image, sessions: { vision, encoder }, steps, contextType, cache, promptIds, eosIds, generation };
    return new Florence2(parts, task, taskPrompt);
  });
}


/** The onnx-community merged decoder: inputs_embeds in, two caches per layer, layer count from its own inputs. */
function decoderSignature(session: SessionInfo, file: string, configLayers: number | undefined, hidden: number | undefined): SessionSignature {
  const layers = checkedLayers(session, file, 'decoder', "Florence-2's merged decoder with cache", { layers: configLayers, key: 'config.json text_config.decoder_layers' });
  const { past, present } = cacheSpecs(layers, ['decoder', 'encoder']);
  const hiddenDims: Record<number, number> = hidden ? { 2: hidden } : {};
  return {
    inputs: [
      { name: 'inputs_embeds', types: FLOAT_TYPES, rank: 3, dims: hiddenDims },
      { name: 'encoder_hidden_states', types: FLOAT_TYPES, rank: 3, dims: hiddenDims },
      { name: 'use_cache_branch', types: ['bool'], rank: 1 },
      ...past,
      // Fed only when the export has it.
      { name: 'encoder_attention_mask', types: ['int64'], rank: 2, optional: true },
    ],
    outputs: [{ name: 'logits', types: FLOAT_TYPES, rank: 3 }, ...present],
  };
}

/** The image side's sessions. */
interface Sessions {
  vision: LoadedSession;
  encoder: LoadedSession;
}

/** The sessions the JS loop steps with. */
interface Steps {
  embed: LoadedSession;
  decoder: LoadedSession;
}

class Florence2 extends CaptionFamily<Sessions, Steps> {
  readonly family = 'florence2';

  constructor(
    parts: FamilyParts<Sessions, Steps>,
    /** the task token (e.g. `<CAPTION>`), fed to the encoder after the image features */
    readonly task: string,
    /** the task prompt's token count and embeddings [length, hidden] as float32, from embed_tokens (`file`) at load */
    private readonly taskPrompt: { length: number; embeds: Float32Array; file: string },
  ) {
    super(parts);
  }

  /** The encoder's states over [image features, task prompt], in the element type the decoder takes. */
  async context(pixels: readonly PixelTensor[]): Promise<ort.Tensor> {
    const { vision, encoder } = this.parts.sessions;
    const rows = pixels.length;
    const image = (await runSession(vision.session, vision.file, { pixel_values: pixelValues(vision.session, this.parts.image, pixels) }))['image_features'];
    if (!image || image.dims.length !== 3 || image.dims[0] !== rows) {
      throw new InputError('BadModel', `${vision.file}: image_features has shape [${image?.dims.join(', ') ?? 'missing'}], expected [${rows}, tokens, hidden]`);
    }
    const hidden = image.dims[2]!;
    const { length: promptLen, embeds: txt, file } = this.taskPrompt;
    if (txt.length !== promptLen * hidden) throw new InputError('BadModel', `${file}: embeddings are ${txt.length / promptLen} wide but ${vision.file} gives ${hidden}`);

    // Encoder input per row: the image tokens, then the task prompt's tokens (transformers.js's merge order).
    const imageLen = image.dims[1]!;
    const len = imageLen + promptLen;
    const img = readFloats(image, vision.file);
    const joined = new Float32Array(rows * len * hidden);
    for (let r = 0; r < rows; r++) {
      joined.set(img.subarray(r * imageLen * hidden, (r + 1) * imageLen * hidden), r * len * hidden);
      joined.set(txt, (r * len + imageLen) * hidden);
    }
    const mask = onesMask(rows, len);
    const inputsEmbeds = floatTensor(floatInputType(encoder.session, 'inputs_embeds'), joined, [rows, len, hidden]);
    const states = (await runSession(encoder.session, encoder.file, { inputs_embeds: inputsEmbeds, attention_mask: mask }))['last_hidden_state'];
    if (!states || states.dims.length !== 3 || states.dims[0] !== rows || states.dims[1] !== len) {
      throw new InputError('BadModel', `${encoder.file}: last_hidden_state has shape [${states?.dims.join(', ') ?? 'missing'}], expected [${rows}, ${len}, hidden]`);
    }
    return asFloatType(states, this.parts.contextType, encoder.file);
  }

  async begin(pixels: readonly PixelTensor[]): Promise<DecodeState> {
    const { embed, decoder } = await this.parts.steps.get();
    const states = await this.context(pixels);
    // The encoder input is never padded: its mask is all ones.
    return new Florence2DecodeState(embed, decoder, states, onesMask(states.dims[0]!, states.dims[1]!), this.parts.cache);
  }
}

class Florence2DecodeState extends CachedDecodeState {
  /**
   * past_key_values.{i}.encoder.key, .value for each layer (cross-attention, fixed after the first step); the
   * base class keeps the decoder.* (self-attention) cache, which grows every step.
   */
  private crossPast: ort.Tensor[];
  private readonly embedsType: 'float32' | 'float16';

  constructor(
    private readonly embed: LoadedSession,
    decoder: LoadedSession,
    private encoderStates: ort.Tensor,
    private encoderMask: ort.Tensor,
    private readonly cache: CacheShape,
  ) {
    super(decoder, encoderStates.dims[0]!, cache, 'decoder');
    this.crossPast = emptyPast(floatInputType(decoder.session, 'past_key_values.0.encoder.key'), encoderStates.dims[0]!, cache);
    this.embedsType = floatInputType(decoder.session, 'inputs_embeds');
  }

  get rows(): number {
    return this.encoderStates.dims[0]!;
  }

  async step(tokens: readonly (readonly number[])[]): Promise<StepResult> {
    const seq = stepLength(tokens, this.rows);
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: asFloatType(await embedIds(this.embed, tokens), this.embedsType, this.embed.file),
      encoder_hidden_states: this.encoderStates,
      use_cache_branch: boolTensor([this.pastLen > 0], [1]),
    };
    if (this.decoder.session.inputNames.includes('encoder_attention_mask')) feeds['encoder_attention_mask'] = this.encoderMask;
    feedPast(feeds, this.crossPast, 'encoder');
    return this.runDecoder(feeds, seq);
  }

  /** The cross-attention K/V: computed on the first step; later steps may return Optimum's empty placeholder. */
  protected override takeOtherOutputs(out: Record<string, ort.Tensor>, rows: number): void {
    const { file } = this.decoder;
    const encLen = this.encoderStates.dims[1]!;
    for (let i = 0; i < this.cache.layers; i++) {
      for (const [j, part] of ['key', 'value'].entries()) {
        const cross = out[`present.${i}.encoder.${part}`];
        if (cross && cross.dims[0] === rows && cross.dims[2] === encLen) this.crossPast[2 * i + j] = cross;
        else if (this.pastLen === 0) {
          // Only cached steps may return Optimum's empty placeholder; the first step must compute the K/V.
          throw new InputError('BadModel', `${file}: present.${i}.encoder.${part} has shape [${cross?.dims.join(', ') ?? 'missing'}] on the first step, expected [${rows}, heads, ${encLen}, head_dim]`);
        }
      }
    }
  }

  override keepRows(rows: readonly number[]): void {
    super.keepRows(rows);
    this.encoderStates = selectRows(this.encoderStates, rows);
    this.encoderMask = selectRows(this.encoderMask, rows);
    this.crossPast = this.crossPast.map((t) => selectRows(t, rows));
  }
}
