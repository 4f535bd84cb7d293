/**
 * Tiny random-weight CLIP in the Optimum/transformers.js split layout: vision_model.onnx (pixel_values ->
 * image_embeds, last_hidden_state) and text_model.onnx (input_ids -> text_embeds, last_hidden_state); and the
 * same weights in the joint layout (onnx/model.onnx, see jointModel).
 * The text tower is causal and pools at argmax(input_ids) (EOS has the highest id), exactly like HF CLIP, so
 * padding after EOS cannot change the embedding.
 */
import { attr, encodeModel, GraphBuilder } from '../../onnx/graph-builder';
import { Ctx, dimOf, encoderLayer, layerNorm, patchEmbedding, toScalar, WeightInit } from './layers';
import { buildClipTokenizer } from './bpe';
import { CAPTION_CORPUS } from './corpus';
import { json, rescaleAndNormalize, resizeTo } from './folder-files';

export const CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711];

/** CLIP's logit_scale_init_value (ln(1/0.07)); the tiny joint graph stores it as its logit_scale. */
export const LOGIT_SCALE_INIT = 2.6592;

export interface ClipDims {
  vision: { hidden: number; heads: number; layers: number; imageSize: number; patch: number };
  /** `vocab`: rows of the token embedding when larger than the tokenizer's (padding ids a real vocabulary would have) */
  text: { hidden: number; heads: number; layers: number; context: number; vocab?: number };
  projection: number;
  merges: number;
}
const TINY_DIMS: ClipDims = {
  vision: { hidden: 64, heads: 2, layers: 1, imageSize: 224, patch: 32 },
  text: { hidden: 64, heads: 2, layers: 1, context: 77 },
  projection: 32,
  merges: 400,
};
/** openai/clip-vit-base-patch32's sizes, for real-size benchmarks (bench/real-size-clip.ts). */
export const REAL_SIZE_CLIP_DIMS: ClipDims = {
  vision: { hidden: 768, heads: 12, layers: 12, imageSize: 224, patch: 32 },
  text: { hidden: 512, heads: 8, layers: 12, context: 77, vocab: 49408 },
  projection: 512,
  merges: 400,
};

interface Tower {
  /** projected, not normalised (like CLIP*ModelWithProjection) */
  embeds: string;
  lastHidden: string;
}

function visionTower(ctx: Ctx, pixels: string, D: ClipDims): Tower {
  const { g, init } = ctx;
  const V = D.vision;
  const d = { dim: V.hidden, heads: V.heads };
  let x = patchEmbedding(ctx, pixels, V.imageSize, V.patch, V.hidden, 'vision.embeddings');
  x = layerNorm(ctx, x, V.hidden, 'vision.pre_layrnorm');
  for (let i = 0; i < V.layers; i++) x = encoderLayer(ctx, x, d, `vision.layers.${i}`, false);
  const cls = g.node('Gather', [x, g.constI64([0], [])], { axis: attr.int(1) }); // [B, D]
  const pooled = layerNorm(ctx, cls, V.hidden, 'vision.post_layernorm');
  const proj = g.weight('visual_projection.weight', [V.hidden, D.projection], init.uniform(V.hidden * D.projection, 1 / Math.sqrt(V.hidden)));
  return { embeds: g.node('MatMul', [pooled, proj]), lastHidden: x };
}

/**
 * `attentionMask` (joint graph only) gates the pooling row selector: HF CLIP's mask only hides keys after EOS,
 * which the causal mask hides already, so the embedding is the split tower's, yet the text part of the joint
 * graph really depends on attention_mask, as in the real export.
 */
function textTower(ctx: Ctx, ids: string, vocabSize: number, D: ClipDims, attentionMask?: string): Tower {
  const { g, init } = ctx;
  const T = D.text;
  const d = { dim: T.hidden, heads: T.heads };
  const tokEmb = g.weight('text.token_embedding.weight', [vocabSize, T.hidden], init.uniform(vocabSize * T.hidden, 0.5));
  const posEmb = g.weight('text.position_embedding.weight', [T.context, T.hidden], init.uniform(T.context * T.hidden, 0.2));
  const seqLen = dimOf(ctx, ids, 1);
  const pos = g.node('Slice', [posEmb, g.constI64([0]), seqLen, g.constI64([0])]);
  let x = g.node('Add', [g.node('Gather', [tokEmb, ids], { axis: attr.int(0) }), pos]);
  for (let i = 0; i < T.layers; i++) x = encoderLayer(ctx, x, d, `text.layers.${i}`, true);
  x = layerNorm(ctx, x, T.hidden, 'text.final_layer_norm');
  // Pool at the first argmax of input_ids (= first EOS): one-hot row selector [B, 1, S] @ [B, S, D].
  const eosPos = g.node('ArgMax', [ids], { axis: attr.int(1), keepdims: attr.int(1) }); // [B, 1]
  const positions = g.node('Range', [g.constI64([0], []), toScalar(ctx, seqLen), g.constI64([1], [])]); // [S]
  let select = g.node('Cast', [g.node('Equal', [positions, eosPos])], { to: attr.int(1 /* FLOAT */) }); // [B, S]
  if (attentionMask) select = g.node('Mul', [select, g.node('Cast', [attentionMask], { to: attr.int(1 /* FLOAT */) })]);
  const pooled = g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [select, g.constI64([1])]), x]), g.constI64([1])]);
  const proj = g.weight('text_projection.weight', [T.hidden, D.projection], init.uniform(T.hidden * D.projection, 1 / Math.sqrt(T.hidden)));
  return { embeds: g.node('MatMul', [pooled, proj]), lastHidden: x };
}

function visionModel(init: WeightInit, D: ClipDims): Uint8Array {
  const g = new GraphBuilder('clip_vision_model');
  const V = D.vision;
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, V.imageSize, V.imageSize]);
  const tower = visionTower({ g, init }, pixels, D);
  g.output(tower.embeds, 'image_embeds', 'float32', ['batch_size', D.projection]);
  g.output(tower.lastHidden, 'last_hidden_state', 'float32', ['batch_size', 1 + (V.imageSize / V.patch) ** 2, V.hidden]);
  return encodeModel(g, 'tiny random-weight CLIP vision tower (recaption test model)');
}

function textModel(init: WeightInit, vocabSize: number, D: ClipDims): Uint8Array {
  const g = new GraphBuilder('clip_text_model');
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const tower = textTower({ g, init }, ids, vocabSize, D);
  g.output(tower.embeds, 'text_embeds', 'float32', ['batch_size', D.projection]);
  g.output(tower.lastHidden, 'last_hidden_state', 'float32', ['batch_size', 'sequence_length', D.text.hidden]);
  return encodeModel(g, 'tiny random-weight CLIP text tower (recaption test model)');
}

/** x / ||x||_2 over the last axis, as CLIPModel.forward normalises the embeddings it returns. */
function l2Normalize({ g }: Ctx, x: string): string {
  return g.node('Div', [x, g.node('ReduceL2', [x], { axes: attr.ints([-1]), keepdims: attr.int(1) })]);
}

/**
 * The joint export (Optimum `zero-shot-image-classification`, transformers.js `onnx/model.onnx`): inputs
 * input_ids, pixel_values, attention_mask; outputs logits_per_image, logits_per_text, text_embeds, image_embeds
 * (the embeddings L2-normalised, logits = exp(logit_scale) * cosine). Same weights as the split towers when
 * `init` is seeded the same way (vision drawn first, then text).
 */
function jointModel(init: WeightInit, vocabSize: number, D: ClipDims): Uint8Array {
  const g = new GraphBuilder('clip_model');
  const ctx: Ctx = { g, init };
  const ids = g.input('input_ids', 'int64', ['text_batch_size', 'sequence_length']);
  const pixels = g.input('pixel_values', 'float32', ['image_batch_size', 3, D.vision.imageSize, D.vision.imageSize]);
  const mask = g.input('attention_mask', 'int64', ['text_batch_size', 'sequence_length']);
  const image = l2Normalize(ctx, visionTower(ctx, pixels, D).embeds);
  const text = l2Normalize(ctx, textTower(ctx, ids, vocabSize, D, mask).embeds);
  const scale = g.node('Exp', [g.weight('logit_scale', [], Float32Array.of(LOGIT_SCALE_INIT))]);
  const perText = g.node('Mul', [g.node('MatMul', [text, g.node('Transpose', [image], { perm: attr.ints([1, 0]) })]), scale]);
  g.output(g.node('Transpose', [perText], { perm: attr.ints([1, 0]) }), 'logits_per_image', 'float32', ['image_batch_size', 'text_batch_size']);
  g.output(perText, 'logits_per_text', 'float32', ['text_batch_size', 'image_batch_size']);
  g.output(text, 'text_embeds', 'float32', ['text_batch_size', D.projection]);
  g.output(image, 'image_embeds', 'float32', ['image_batch_size', D.projection]);
  return encodeModel(g, 'tiny random-weight CLIP, joint graph (recaption test model)');
}

/** All files of the tiny CLIP folder (split layout; or one of other `dims`), by relative path. */
export function tinyClipFiles(init: WeightInit, dims: ClipDims = TINY_DIMS): Record<string, string | Uint8Array> {
  return clipFolderFiles(init, 'split', dims);
}

/** The same model in the joint layout (onnx/model.onnx); seed `init` like tinyClipFiles' to get its weights. */
export function tinyClipJointFiles(init: WeightInit): Record<string, string | Uint8Array> {
  return clipFolderFiles(init, 'joint', TINY_DIMS);
}

function clipFolderFiles(init: WeightInit, layout: 'split' | 'joint', D: ClipDims): Record<string, string | Uint8Array> {
  const tok = buildClipTokenizer(CAPTION_CORPUS, D.merges);
  const vocabSize = Math.max(tok.vocabSize, D.text.vocab ?? 0);
  const bos = tok.special['<|startoftext|>']!;
  const eos = tok.special['<|endoftext|>']!;
  const config = {
    model_type: 'clip',
    architectures: ['CLIPModel'],
    projection_dim: D.projection,
    logit_scale_init_value: LOGIT_SCALE_INIT,
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: vocabSize,
      hidden_size: D.text.hidden,
      intermediate_size: 4 * D.text.hidden,
      num_hidden_layers: D.text.layers,
      num_attention_heads: D.text.heads,
      max_position_embeddings: D.text.context,
      hidden_act: 'quick_gelu',
      projection_dim: D.projection,
      bos_token_id: bos,
      eos_token_id: eos,
      pad_token_id: eos,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: D.vision.hidden,
      intermediate_size: 4 * D.vision.hidden,
      num_hidden_layers: D.vision.layers,
      num_attention_heads: D.vision.heads,
      num_channels: 3,
      image_size: D.vision.imageSize,
      patch_size: D.vision.patch,
      hidden_act: 'quick_gelu',
      projection_dim: D.projection,
    },
  };
  const preprocessor = {
    image_processor_type: 'CLIPImageProcessor',
    processor_class: 'CLIPProcessor',
    ...resizeTo({ shortest_edge: D.vision.imageSize }, 3),
    do_center_crop: true,
    crop_size: { height: D.vision.imageSize, width: D.vision.imageSize },
    ...rescaleAndNormalize(CLIP_IMAGE_MEAN, CLIP_IMAGE_STD),
    do_convert_rgb: true,
  };
  const tokenizerConfig = {
    tokenizer_class: 'CLIPTokenizer',
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    model_max_length: D.text.context,
    do_lower_case: true,
    clean_up_tokenization_spaces: false,
  };
  // Vision weights are drawn first, then text: the order is part of the deterministic layout.
  const graphs: Record<string, Uint8Array> = {};
  if (layout === 'split') {
    graphs['onnx/vision_model.onnx'] = visionModel(init, D);
    graphs['onnx/text_model.onnx'] = textModel(init, vocabSize, D);
  } else {
    graphs['onnx/model.onnx'] = jointModel(init, vocabSize, D);
  }
  return {
    'config.json': json(config),
    'preprocessor_config.json': json(preprocessor),
    'tokenizer.json': json(tok.json),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' }),
    ...graphs,
  };
}
