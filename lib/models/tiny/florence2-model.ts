/**
 * Tiny random-weight Florence-2 in the transformers.js (onnx-community) layout, with that export's exact I/O
 * names and dimension semantics:
 *   vision_encoder.onnx        pixel_values [b, 3, h, w] -> image_features [b, image_tokens, d]
 *   embed_tokens.onnx          input_ids [b, s] -> inputs_embeds [b, s, d]
 *   encoder_model.onnx         inputs_embeds, attention_mask [b, s] -> last_hidden_state [b, s, d]
 *   decoder_model_merged.onnx  inputs_embeds, encoder_hidden_states, encoder_attention_mask,
 *                              past_key_values.{i}.decoder/encoder.key/value, use_cache_branch
 *                              -> logits, present.{i}.decoder/encoder.key/value
 * The merged decoder behaves like Optimum's If-merged graph: without cache it computes the cross-attention K/V
 * from encoder_hidden_states and returns them as present.{i}.encoder.*; with cache it reads them back from
 * past_key_values.{i}.encoder.* and returns empty placeholders [0, heads, 1, head_dim] instead (Optimum's
 * constant outputs), while the self-attention cache grows by Concat(past, new).
 */
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import { attr, encodeModel, GraphBuilder, tensorProto } from '../../onnx/graph-builder';
import { attend, causalMask, Ctx, dimOf, encoderLayer, ifBranches, layerNorm, linear, mergeHeads, mlp, splitHeads, toScalar, WeightInit, withPast } from './layers';
import { buildBartTokenizer } from './bpe';
import { CAPTION_CORPUS } from './corpus';
import { json, rescaleAndNormalize, resizeTo } from './folder-files';
import { addEmptyPast, greyPixels, runOnce } from './smoke';
import { embedTokensModel, lmHeadBias, tiedLmHead, type LmHeadBiases } from './token-side';

const DIMS = { hidden: 64, heads: 2, visionLayers: 1, encoderLayers: 1, decoderLayers: 2, imageSize: 64, patch: 16, positions: 128, merges: 400 };
const HEAD_DIM = DIMS.hidden / DIMS.heads;
/** BART's learned position embeddings start at row 2. */
const POSITION_OFFSET = 2;
const IMAGE_TOKENS = (DIMS.imageSize / DIMS.patch) ** 2 + 1;

/** processing_florence2.py's task prompts (the onnx-community preprocessor_config.json carries the same table). */
export const FLORENCE2_TASK_PROMPTS: Record<string, string> = {
  '<OCR>': 'What is the text in the image?',
  '<OCR_WITH_REGION>': 'What is the text in the image, with regions?',
  '<CAPTION>': 'What does the image describe?',
  '<DETAILED_CAPTION>': 'Describe in detail what is shown in the image.',
  '<MORE_DETAILED_CAPTION>': 'Describe with a paragraph what is shown in the image.',
  '<OD>': 'Locate the objects with category name in the image.',
  '<DENSE_REGION_CAPTION>': 'Locate the objects in the image, with their descriptions.',
  '<REGION_PROPOSAL>': 'Locate the region proposals in the image.',
};

/** BART's final_logits_bias of the random model (token-side.ts): the other special tokens pushed well down. */
const FINAL_LOGITS_BIAS: LmHeadBiases = { eos: 4, word: 2, strayByte: -4, special: -10 };

/**
 * Cross-attention gains: sharper attention (q, k) and a stronger read-out (v) than the random init gives, so the
 * image and the task prompt visibly steer the captions, as they do in a trained model.
 */
const CROSS_QK_GAIN = 3;
const CROSS_V_GAIN = 3;

/** Key-padding mask [b, 1, 1, s] (true = may attend) from an int64 attention mask [b, s]. */
function keyMask({ g }: Ctx, mask: string): string {
  return g.node('Cast', [g.node('Unsqueeze', [mask, g.constI64([1, 2])])], { to: attr.int(9 /* BOOL */) });
}

/** Residual attention read-out x + out_proj(attend(q, k, v)), q/k/v as [b, h, len, hd] tensors. */
function attentionOut(ctx: Ctx, x: string, q: string, k: string, v: string, name: string, mask?: string): string {
  const a = mergeHeads(ctx, attend(ctx, q, k, v, HEAD_DIM, mask), DIMS.hidden);
  return ctx.g.node('Add', [x, linear(ctx, a, DIMS.hidden, DIMS.hidden, `${name}.out_proj`)]);
}

/** Projection of x split into heads [b, h, len, hd], scaled by `gain`. */
const heads = (ctx: Ctx, x: string, name: string, gain = 1): string => splitHeads(ctx, scaled(ctx, linear(ctx, x, DIMS.hidden, DIMS.hidden, name), gain), DIMS.heads, HEAD_DIM);

/** x * gain (1: x itself). */
function scaled({ g }: Ctx, x: string, gain: number): string {
  return gain === 1 ? x : g.node('Mul', [x, g.constF32([gain], [])]);
}

/** Learned positions past + offset .. past + offset + len - 1, as [len, d] embeddings. */
function positions(ctx: Ctx, past: string, len: string, name: string): string {
  const { g, init } = ctx;
  const table = g.weight(name, [DIMS.positions + POSITION_OFFSET, DIMS.hidden], init.uniform((DIMS.positions + POSITION_OFFSET) * DIMS.hidden, 0.2));
  const start = g.node('Add', [past, g.constI64([POSITION_OFFSET])]);
  const idx = g.node('Range', [toScalar(ctx, start), toScalar(ctx, g.node('Add', [start, len])), g.constI64([1], [])]);
  return g.node('Gather', [table, idx], { axis: attr.int(0) });
}

/** DaViT stand-in: patch conv + position embedding + transformer layer, then Florence-2's pooling and projection. */
function visionEncoderModel(init: WeightInit): Uint8Array {
  const g = new GraphBuilder('florence2_vision_encoder');
  const ctx: Ctx = { g, init };
  const { hidden: D, patch: P } = DIMS;
  const patches = (DIMS.imageSize / P) ** 2;
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, 'height', 'width']);
  const convW = g.weight('vision_tower.convs.0.proj.weight', [D, 3, P, P], init.uniform(D * 3 * P * P, 1 / Math.sqrt(3 * P * P)));
  const conv = g.node('Conv', [pixels, convW], { kernel_shape: attr.ints([P, P]), strides: attr.ints([P, P]) });
  let x = g.node('Transpose', [g.node('Reshape', [conv, g.constI64([0, D, -1])])], { perm: attr.ints([0, 2, 1]) });
  x = g.node('Add', [x, g.weight('image_pos_embed', [patches, D], init.uniform(patches * D, 0.5))]);
  for (let i = 0; i < DIMS.visionLayers; i++) x = encoderLayer(ctx, x, { dim: D, heads: DIMS.heads }, `vision_tower.blocks.${i}`, false);
  // image_feature_source ['spatial_avg_pool', 'temporal_avg_pool']: one pooled token, then every patch token.
  const pooled = g.node('ReduceMean', [x], { axes: attr.ints([1]), keepdims: attr.int(1) });
  x = g.node('Concat', [pooled, x], { axis: attr.int(1) });
  x = layerNorm(ctx, linear(ctx, x, D, D, 'image_projection', false), D, 'image_proj_norm');
  g.output(x, 'image_features', 'float32', ['batch_size', 'image_sequence_length', D]);
  return encodeModel(g, 'tiny random-weight Florence-2 vision encoder (recaption test model)');
}

function encoderModel(init: WeightInit): Uint8Array {
  const g = new GraphBuilder('florence2_encoder');
  const ctx: Ctx = { g, init };
  const D = DIMS.hidden;
  const embeds = g.input('inputs_embeds', 'float32', ['batch_size', 'encoder_sequence_length', D]);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
  let x = g.node('Add', [embeds, positions(ctx, g.constI64([0]), dimOf(ctx, embeds, 1), 'encoder.embed_positions.weight')]);
  x = layerNorm(ctx, x, D, 'encoder.layernorm_embedding');
  const padding = keyMask(ctx, mask);
  for (let i = 0; i < DIMS.encoderLayers; i++) {
    const name = `encoder.layers.${i}`;
    const h = layerNorm(ctx, x, D, `${name}.self_attn_layer_norm`);
    x = attentionOut(ctx, x, heads(ctx, h, `${name}.self_attn.q_proj`), heads(ctx, h, `${name}.self_attn.k_proj`), heads(ctx, h, `${name}.self_attn.v_proj`), `${name}.self_attn`, padding);
    x = g.node('Add', [x, mlp(ctx, layerNorm(ctx, x, D, `${name}.final_layer_norm`), D, 4 * D, name)]);
  }
  g.output(x, 'last_hidden_state', 'float32', ['batch_size', 'encoder_sequence_length', D]);
  return encodeModel(g, 'tiny random-weight Florence-2 (BART) encoder (recaption test model)');
}

/**
 * Cross-attention K or V: with cache the past encoder entry as is, without cache a projection of
 * encoder_hidden_states computed inside the branch (so cached steps never touch encoder_hidden_states).
 */
function crossKv(ctx: Ctx, useCache: string, past: string, enc: string, name: string, gain: number): string {
  return ifBranches(
    ctx,
    useCache,
    name,
    (g) => g.node('Identity', [past]),
    (g) => heads({ g, init: ctx.init }, enc, name, gain),
  );
}

/** present.{i}.encoder.*: the computed K/V without cache, Optimum's empty placeholder with cache. */
function presentEncoder(ctx: Ctx, useCache: string, kv: string, name: string): string {
  const empty = tensorProto('const_tensor', 'float32', [0, DIMS.heads, 1, HEAD_DIM], new Float32Array(0));
  return ifBranches(
    ctx,
    useCache,
    name,
    (g) => g.node('Constant', [], { value: attr.tensor(empty) }),
    (g) => g.node('Identity', [kv]),
  );
}

function decoderModel(init: WeightInit, shared: Float32Array, bias: Float32Array): Uint8Array {
  const vocabSize = bias.length;
  const g = new GraphBuilder('florence2_decoder_merged');
  const ctx: Ctx = { g, init };
  const { hidden: D, heads: H } = DIMS;
  // Input order as in the onnx-community export.
  const encMask = g.input('encoder_attention_mask', 'int64', ['batch_size', 'encoder_sequence_length']);
  const enc = g.input('encoder_hidden_states', 'float32', ['batch_size', 'encoder_sequence_length', D]);
  const embeds = g.input('inputs_embeds', 'float32', ['batch_size', 'decoder_sequence_length', D]);
  const past: { dk: string; dv: string; ek: string; ev: string }[] = [];
  for (let i = 0; i < DIMS.decoderLayers; i++) {
    const dShape = ['batch_size', H, 'past_decoder_sequence_length', HEAD_DIM];
    const eShape = ['batch_size', H, 'encoder_sequence_length_out', HEAD_DIM];
    past.push({
      dk: g.input(`past_key_values.${i}.decoder.key`, 'float32', dShape),
      dv: g.input(`past_key_values.${i}.decoder.value`, 'float32', dShape),
      ek: g.input(`past_key_values.${i}.encoder.key`, 'float32', eShape),
      ev: g.input(`past_key_values.${i}.encoder.value`, 'float32', eShape),
    });
  }
  const useCache = g.input('use_cache_branch', 'bool', [1]);

  const seqLen = dimOf(ctx, embeds, 1);
  const pastLen = g.node('Where', [useCache, dimOf(ctx, past[0]!.dk, 2), g.constI64([0])]);
  let x = g.node('Add', [embeds, positions(ctx, pastLen, seqLen, 'decoder.embed_positions.weight')]);
  x = layerNorm(ctx, x, D, 'decoder.layernorm_embedding');
  const crossMask = keyMask(ctx, encMask);

  const presents: { name: string; value: string; shape: (string | number)[] }[] = [];
  for (let i = 0; i < DIMS.decoderLayers; i++) {
    const name = `decoder.layers.${i}`;
    const p = past[i]!;
    // Causal self-attention over cache + new tokens.
    const h = layerNorm(ctx, x, D, `${name}.self_attn_layer_norm`);
    const k = withPast(ctx, useCache, p.dk, heads(ctx, h, `${name}.self_attn.k_proj`), `l${i}_self_key`);
    const v = withPast(ctx, useCache, p.dv, heads(ctx, h, `${name}.self_attn.v_proj`), `l${i}_self_value`);
    x = attentionOut(ctx, x, heads(ctx, h, `${name}.self_attn.q_proj`), k, v, `${name}.self_attn`, causalMask(ctx, seqLen, dimOf(ctx, k, 2)));
    // Cross-attention to the encoder output (image tokens + task prompt).
    const hc = layerNorm(ctx, x, D, `${name}.encoder_attn_layer_norm`);
    const ck = crossKv(ctx, useCache, p.ek, enc, `${name}.encoder_attn.k_proj`, CROSS_QK_GAIN);
    const cv = crossKv(ctx, useCache, p.ev, enc, `${name}.encoder_attn.v_proj`, CROSS_V_GAIN);
    x = attentionOut(ctx, x, heads(ctx, hc, `${name}.encoder_attn.q_proj`, CROSS_QK_GAIN), ck, cv, `${name}.encoder_attn`, crossMask);
    x = g.node('Add', [x, mlp(ctx, layerNorm(ctx, x, D, `${name}.final_layer_norm`), D, 4 * D, name)]);

    const dShape = ['batch_size', H, 'past_decoder_sequence_length + 1', HEAD_DIM];
    const eShape = ['batch_size', H, 'encoder_sequence_length_out', HEAD_DIM];
    presents.push(
      { name: `present.${i}.decoder.key`, value: k, shape: dShape },
      { name: `present.${i}.decoder.value`, value: v, shape: dShape },
      { name: `present.${i}.encoder.key`, value: presentEncoder(ctx, useCache, ck, `l${i}_present_enc_key`), shape: eShape },
      { name: `present.${i}.encoder.value`, value: presentEncoder(ctx, useCache, cv, `l${i}_present_enc_value`), shape: eShape },
    );
  }
  x = layerNorm(ctx, x, D, 'decoder.layer_norm');
  // LM head tied to the shared embeddings, plus BART's final_logits_bias.
  const table = g.weight('language_model.model.shared.weight', [vocabSize, D], shared);
  const logits = tiedLmHead(ctx, x, table, 'final_logits_bias', bias);
  g.output(logits, 'logits', 'float32', ['batch_size', 'decoder_sequence_length', vocabSize]);
  for (const o of presents) g.output(o.value, o.name, 'float32', o.shape);
  return encodeModel(g, 'tiny random-weight Florence-2 (BART) decoder, merged with/without past (recaption test model)');
}

/** All files of the tiny Florence-2 folder, by relative path. */
export function tinyFlorence2Files(init: WeightInit): Record<string, string | Uint8Array> {
  const tok = buildBartTokenizer(CAPTION_CORPUS, DIMS.merges);
  const { '<s>': bos, '<pad>': pad, '</s>': eos } = tok.special as Record<'<s>' | '<pad>' | '</s>', number>;
  const V = tok.vocabSize;
  const D = DIMS.hidden;
  const specialIds = { bos_token_id: bos, eos_token_id: eos, pad_token_id: pad, decoder_start_token_id: eos, forced_bos_token_id: bos, forced_eos_token_id: eos };
  const config = {
    model_type: 'florence2',
    architectures: ['Florence2ForConditionalGeneration'],
    is_encoder_decoder: true,
    bos_token_id: bos,
    eos_token_id: eos,
    pad_token_id: pad,
    projection_dim: D,
    vocab_size: V,
    text_config: {
      model_type: 'florence2_language',
      vocab_size: V,
      d_model: D,
      encoder_layers: DIMS.encoderLayers,
      decoder_layers: DIMS.decoderLayers,
      encoder_attention_heads: DIMS.heads,
      decoder_attention_heads: DIMS.heads,
      encoder_ffn_dim: 4 * D,
      decoder_ffn_dim: 4 * D,
      max_position_embeddings: DIMS.positions,
      scale_embedding: false,
      activation_function: 'quick_gelu',
      is_encoder_decoder: true,
      ...specialIds,
    },
    vision_config: {
      model_type: 'davit',
      patch_size: [DIMS.patch],
      patch_stride: [DIMS.patch],
      dim_embed: [D],
      num_heads: [DIMS.heads],
      depths: [DIMS.visionLayers],
      projection_dim: D,
      image_pos_embed: { type: 'learned_abs_2d', max_pos_embeddings: DIMS.imageSize / DIMS.patch },
      image_feature_source: ['spatial_avg_pool', 'temporal_avg_pool'],
    },
  };
  const preprocessor = {
    processor_class: 'Florence2Processor',
    image_processor_type: 'CLIPImageProcessor',
    ...resizeTo({ height: DIMS.imageSize, width: DIMS.imageSize }, 3),
    do_center_crop: false,
    crop_size: { height: DIMS.imageSize, width: DIMS.imageSize },
    ...rescaleAndNormalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    image_seq_length: IMAGE_TOKENS,
    tasks_answer_post_processing_type: { '<CAPTION>': 'pure_text', '<DETAILED_CAPTION>': 'pure_text', '<MORE_DETAILED_CAPTION>': 'pure_text' },
    task_prompts_without_inputs: FLORENCE2_TASK_PROMPTS,
    task_prompts_with_input: { '<REGION_TO_DESCRIPTION>': 'What does the region {input} describe?' },
  };
  const tokenizerConfig = {
    tokenizer_class: 'BartTokenizer',
    bos_token: '<s>',
    eos_token: '</s>',
    sep_token: '</s>',
    cls_token: '<s>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    mask_token: '<mask>',
    add_prefix_space: false,
    model_max_length: DIMS.positions,
    clean_up_tokenization_spaces: true,
  };
  // One embedding table: embed_tokens.onnx and the decoder's tied LM head share it, as in the real model.
  const shared = init.uniform(V * D, 0.125);
  const vision = visionEncoderModel(init);
  const encoder = encoderModel(init);
  const decoder = decoderModel(init, shared, lmHeadBias(tok, eos, FINAL_LOGITS_BIAS));
  return {
    'config.json': json(config),
    'generation_config.json': json({ ...specialIds, no_repeat_ngram_size: 3, num_beams: 3, _from_model_config: true }),
    'preprocessor_config.json': json(preprocessor),
    'tokenizer.json': json(tok.json),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', sep_token: '</s>', pad_token: '<pad>', cls_token: '<s>', mask_token: '<mask>' }),
    'onnx/vision_encoder.onnx': vision,
    'onnx/embed_tokens.onnx': embedTokensModel({
      graph: 'florence2_embed_tokens',
      tableName: 'language_model.model.shared.weight',
      table: shared,
      width: D,
      doc: 'tiny random-weight Florence-2 token embeddings (recaption test model)',
    }),
    'onnx/encoder_model.onnx': encoder,
    'onnx/decoder_model_merged.onnx': decoder,
  };
}

/** Runs the four graphs once the way the captioner does (first decoder step without cache). */
export async function smokeTinyFlorence2(dir: string): Promise<void> {
  const run = (name: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> => runOnce(path.join(dir, `onnx/${name}.onnx`), feeds);
  const image = (await run('vision_encoder', { pixel_values: greyPixels(1, DIMS.imageSize) }))['image_features']!;
  const ids = (values: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
  const prompt = (await run('embed_tokens', { input_ids: ids([0, 5, 6, 2]) }))['inputs_embeds']!;
  const tokens = image.dims[1]! + prompt.dims[1]!;
  const joined = new Float32Array(tokens * DIMS.hidden);
  joined.set(image.data as Float32Array);
  joined.set(prompt.data as Float32Array, image.data.length);
  const mask = new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [1, tokens]);
  const enc = (await run('encoder_model', { inputs_embeds: new ort.Tensor('float32', joined, [1, tokens, DIMS.hidden]), attention_mask: mask }))['last_hidden_state']!;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: (await run('embed_tokens', { input_ids: ids([2, 0]) }))['inputs_embeds']!,
    encoder_hidden_states: enc,
    encoder_attention_mask: mask,
    use_cache_branch: new ort.Tensor('bool', Uint8Array.from([0]), [1]),
  };
  addEmptyPast(feeds, { layers: DIMS.decoderLayers, heads: DIMS.heads, headDim: HEAD_DIM }, 1, ['decoder', 'encoder']);
  await run('decoder_model_merged', feeds);
}
