/**
 * Tiny random-weight CLIP in the Optimum/transformers.js split layout: vision_model.onnx (pixel_values ->
 * image_embeds, last_hidden_state) and text_model.onnx (input_ids -> text_embeds, last_hidden_state).
 * The text tower is causal and pools at argmax(input_ids) (EOS has the highest id), exactly like HF CLIP, so
 * padding after EOS cannot change the embedding.
 */
import { attr, encodeModel, GraphBuilder } from './onnx-builder';
import { Ctx, dimOf, encoderLayer, layerNorm, patchEmbedding, toScalar, WeightInit } from './layers';
import { buildClipTokenizer } from './bpe';
import { CAPTION_CORPUS } from './corpus';

export const CLIP_IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_IMAGE_STD = [0.26862954, 0.26130258, 0.27577711];

const DIMS = { hidden: 64, heads: 2, layers: 1, projection: 32, imageSize: 224, patch: 32, context: 77, merges: 400 };

function visionModel(init: WeightInit): Uint8Array {
  const g = new GraphBuilder('clip_vision_model');
  const ctx: Ctx = { g, init };
  const d = { dim: DIMS.hidden, heads: DIMS.heads };
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, DIMS.imageSize, DIMS.imageSize]);
  let x = patchEmbedding(ctx, pixels, DIMS.imageSize, DIMS.patch, DIMS.hidden, 'vision.embeddings');
  x = layerNorm(ctx, x, DIMS.hidden, 'vision.pre_layrnorm');
  for (let i = 0; i < DIMS.layers; i++) x = encoderLayer(ctx, x, d, `vision.layers.${i}`, false);
  const cls = g.node('Gather', [x, g.constI64([0], [])], { axis: attr.int(1) }); // [B, D]
  const pooled = layerNorm(ctx, cls, DIMS.hidden, 'vision.post_layernorm');
  const proj = g.weight('visual_projection.weight', [DIMS.hidden, DIMS.projection], init.uniform(DIMS.hidden * DIMS.projection, 1 / Math.sqrt(DIMS.hidden)));
  g.output(g.node('MatMul', [pooled, proj]), 'image_embeds', 'float32', ['batch_size', DIMS.projection]);
  g.output(x, 'last_hidden_state', 'float32', ['batch_size', 1 + (DIMS.imageSize / DIMS.patch) ** 2, DIMS.hidden]);
  return encodeModel(g, 'tiny random-weight CLIP vision tower (recaption test model)');
}

function textModel(init: WeightInit, vocabSize: number): Uint8Array {
  const g = new GraphBuilder('clip_text_model');
  const ctx: Ctx = { g, init };
  const d = { dim: DIMS.hidden, heads: DIMS.heads };
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const tokEmb = g.weight('text.token_embedding.weight', [vocabSize, DIMS.hidden], init.uniform(vocabSize * DIMS.hidden, 0.5));
  const posEmb = g.weight('text.position_embedding.weight', [DIMS.context, DIMS.hidden], init.uniform(DIMS.context * DIMS.hidden, 0.2));
  const seqLen = dimOf(ctx, ids, 1);
  const pos = g.node('Slice', [posEmb, g.constI64([0]), seqLen, g.constI64([0])]);
  let x = g.node('Add', [g.node('Gather', [tokEmb, ids], { axis: attr.int(0) }), pos]);
  for (let i = 0; i < DIMS.layers; i++) x = encoderLayer(ctx, x, d, `text.layers.${i}`, true);
  x = layerNorm(ctx, x, DIMS.hidden, 'text.final_layer_norm');
  // Pool at the first argmax of input_ids (= first EOS): one-hot row selector [B, 1, S] @ [B, S, D].
  const eosPos = g.node('ArgMax', [ids], { axis: attr.int(1), keepdims: attr.int(1) }); // [B, 1]
  const positions = g.node('Range', [g.constI64([0], []), toScalar(ctx, seqLen), g.constI64([1], [])]); // [S]
  const select = g.node('Cast', [g.node('Equal', [positions, eosPos])], { to: attr.int(1 /* FLOAT */) }); // [B, S]
  const pooled = g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [select, g.constI64([1])]), x]), g.constI64([1])]);
  const proj = g.weight('text_projection.weight', [DIMS.hidden, DIMS.projection], init.uniform(DIMS.hidden * DIMS.projection, 1 / Math.sqrt(DIMS.hidden)));
  g.output(g.node('MatMul', [pooled, proj]), 'text_embeds', 'float32', ['batch_size', DIMS.projection]);
  g.output(x, 'last_hidden_state', 'float32', ['batch_size', 'sequence_length', DIMS.hidden]);
  return encodeModel(g, 'tiny random-weight CLIP text tower (recaption test model)');
}

/** All files of the tiny CLIP folder, by relative path. */
export function tinyClipFiles(init: WeightInit): Record<string, string | Uint8Array> {
  const tok = buildClipTokenizer(CAPTION_CORPUS, DIMS.merges);
  const bos = tok.special['<|startoftext|>']!;
  const eos = tok.special['<|endoftext|>']!;
  const config = {
    model_type: 'clip',
    architectures: ['CLIPModel'],
    projection_dim: DIMS.projection,
    logit_scale_init_value: 2.6592,
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: tok.vocabSize,
      hidden_size: DIMS.hidden,
      intermediate_size: 4 * DIMS.hidden,
      num_hidden_layers: DIMS.layers,
      num_attention_heads: DIMS.heads,
      max_position_embeddings: DIMS.context,
      hidden_act: 'quick_gelu',
      projection_dim: DIMS.projection,
      bos_token_id: bos,
      eos_token_id: eos,
      pad_token_id: eos,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: DIMS.hidden,
      intermediate_size: 4 * DIMS.hidden,
      num_hidden_layers: DIMS.layers,
      num_attention_heads: DIMS.heads,
      num_channels: 3,
      image_size: DIMS.imageSize,
      patch_size: DIMS.patch,
      hidden_act: 'quick_gelu',
      projection_dim: DIMS.projection,
    },
  };
  const preprocessor = {
    image_processor_type: 'CLIPImageProcessor',
    processor_class: 'CLIPProcessor',
    do_resize: true,
    size: { shortest_edge: DIMS.imageSize },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: DIMS.imageSize, width: DIMS.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: CLIP_IMAGE_MEAN,
    image_std: CLIP_IMAGE_STD,
    do_convert_rgb: true,
  };
  const tokenizerConfig = {
    tokenizer_class: 'CLIPTokenizer',
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    model_max_length: DIMS.context,
    do_lower_case: true,
    clean_up_tokenization_spaces: false,
  };
  // Vision weights are drawn first, then text: the order is part of the deterministic layout.
  const vision = visionModel(init);
  const text = textModel(init, tok.vocabSize);
  return {
    'config.json': json(config),
    'preprocessor_config.json': json(preprocessor),
    'tokenizer.json': json(tok.json),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json({ bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' }),
    'onnx/vision_model.onnx': vision,
    'onnx/text_model.onnx': text,
  };
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
