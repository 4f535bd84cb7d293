/**
 * Tiny random-weight BLIP-2 (OPT) in recaption's prefix-LM layout (docs/models/blip2.md):
 *   onnx/vision_encoder.onnx        pixel_values -> image_features [B, Q, D]  (ViT -> Q-Former -> language_projection)
 *   onnx/embed_tokens.onnx          input_ids -> inputs_embeds [B, S, D]       (the LM's token embedding)
 *   onnx/decoder_model_merged.onnx  inputs_embeds, attention_mask, past_key_values.{i}.* -> logits, present.{i}.*
 * The decoder is OPT-like (pre-LN, ReLU FFN, learned positions offset by 2 and taken from the attention-mask
 * cumsum, LM head tied to the token embedding) and really uses its cache: keys/values are Concat(past, new) and
 * the causal mask is offset by the past length, so an empty past (first step) and a filled one share one graph.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { attr, encodeModel, GraphBuilder } from '../../onnx/graph-builder';
import { attend, causalMask, Ctx, dimOf, encoderLayer, layerNorm, linear, mergeHeads, patchEmbedding, selfAttentionBlock, splitHeads, WeightInit } from './layers';
import { buildOptTokenizer } from './bpe';
import { CAPTION_CORPUS } from './corpus';
import { CLIP_IMAGE_MEAN, CLIP_IMAGE_STD } from './clip-model';
import { json, rescaleAndNormalize, resizeTo } from './folder-files';
import { addEmptyPast, greyPixels, runOnce } from './smoke';
import { embedTokensModel, lmHeadBias, tiedLmHead, type LmHeadBiases } from './token-side';

export const BLIP2_DIMS = {
  imageSize: 224,
  patch: 32,
  visionHidden: 48,
  visionHeads: 2,
  queryTokens: 8,
  qformerHidden: 32,
  qformerHeads: 2,
  /** the LM's hidden size = its input-embedding width */
  lmHidden: 64,
  lmHeads: 2,
  lmLayers: 2,
  /** OPT's learned positions: max_position_embeddings, plus OPT's fixed offset of 2 rows */
  positions: 128,
  positionOffset: 2,
  merges: 400,
};

/** The newline byte token: BLIP-2 OPT's caption end (id 50118 `Ċ` in OPT's vocabulary). */
const NEWLINE = '\u010a';
/** LM-head bias (token-side.ts): varied caption lengths, whole words, no stray bytes or specials. */
const LM_HEAD_BIAS: LmHeadBiases = { eos: 4, word: 2, strayByte: -4, special: -8 };
/** Scales the Q-Former's cross-attention queries so each query picks out its own image patches. */
const QUERY_SHARPNESS = 8;

/**
 * Image side: ViT (32 px patches) -> one Q-Former layer (learned queries: self-attention, cross-attention to the
 * image tokens, MLP) -> language_projection to `outWidth` (the LM width; tests build a mismatched one).
 */
export function tinyBlip2VisionEncoder(init: WeightInit, outWidth: number = BLIP2_DIMS.lmHidden): Uint8Array {
  const d = BLIP2_DIMS;
  const g = new GraphBuilder('blip2_vision_encoder');
  const ctx: Ctx = { g, init };
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, d.imageSize, d.imageSize]);
  let img = patchEmbedding(ctx, pixels, d.imageSize, d.patch, d.visionHidden, 'vision_model.embeddings');
  img = encoderLayer(ctx, img, { dim: d.visionHidden, heads: d.visionHeads }, 'vision_model.encoder.layers.0', false);
  img = layerNorm(ctx, img, d.visionHidden, 'vision_model.post_layernorm');

  // Learned query tokens [1, Q, Dq] expanded to the batch.
  const Dq = d.qformerHidden;
  const queries = g.weight('query_tokens', [1, d.queryTokens, Dq], init.uniform(d.queryTokens * Dq, 0.5));
  const shape = g.node('Concat', [dimOf(ctx, pixels, 0), g.constI64([d.queryTokens, Dq])], { axis: attr.int(0) });
  let q = layerNorm(ctx, g.node('Expand', [queries, shape]), Dq, 'qformer.layernorm');
  q = selfAttentionBlock(ctx, q, { dim: Dq, heads: d.qformerHeads }, 'qformer.encoder.layer.0.attention', false);
  // Cross-attention: queries read the image tokens (keys/values projected from the vision width).
  const hd = Dq / d.qformerHeads;
  const name = 'qformer.encoder.layer.0.crossattention';
  // Sharpened queries: with random weights the attention would be near uniform, averaging every image alike.
  const cq = g.node('Mul', [splitHeads(ctx, linear(ctx, layerNorm(ctx, q, Dq, `${name}.ln`), Dq, Dq, `${name}.query`), d.qformerHeads, hd), g.constF32([QUERY_SHARPNESS], [])]);
  const ck = splitHeads(ctx, linear(ctx, img, d.visionHidden, Dq, `${name}.key`), d.qformerHeads, hd);
  const cv = splitHeads(ctx, linear(ctx, img, d.visionHidden, Dq, `${name}.value`), d.qformerHeads, hd);
  q = g.node('Add', [q, linear(ctx, mergeHeads(ctx, attend(ctx, cq, ck, cv, hd), Dq), Dq, Dq, `${name}.output.dense`)]);
  const ffn = linear(ctx, g.node('Relu', [linear(ctx, layerNorm(ctx, q, Dq, 'qformer.encoder.layer.0.ln_ffn'), Dq, 4 * Dq, 'qformer.encoder.layer.0.intermediate_query.dense')]), 4 * Dq, Dq, 'qformer.encoder.layer.0.output_query.dense');
  q = g.node('Add', [q, ffn]);

  const features = linear(ctx, q, Dq, outWidth, 'language_projection');
  g.output(features, 'image_features', 'float32', ['batch_size', d.queryTokens, outWidth]);
  return encodeModel(g, 'tiny random-weight BLIP-2 image side: ViT + Q-Former + language projection (recaption test model)');
}

function decoderModel(init: WeightInit, wte: Float32Array, bias: Float32Array): Uint8Array {
  const { lmHidden: D, lmHeads: H, lmLayers, positions, positionOffset } = BLIP2_DIMS;
  const vocabSize = bias.length;
  const hd = D / H;
  const g = new GraphBuilder('opt_decoder_merged');
  const ctx: Ctx = { g, init };
  const embeds = g.input('inputs_embeds', 'float32', ['batch_size', 'sequence_length', D]);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'past_sequence_length + sequence_length']);
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < lmLayers; i++) {
    const shape = ['batch_size', H, 'past_sequence_length', hd];
    past.push({ key: g.input(`past_key_values.${i}.key`, 'float32', shape), value: g.input(`past_key_values.${i}.value`, 'float32', shape) });
  }

  // OPT positions: cumsum(mask) * mask - 1 over past + new, keep the new ones, + offset 2 into the table.
  const seqLen = dimOf(ctx, embeds, 1);
  const pastLen = dimOf(ctx, past[0]!.key, 2);
  const cum = g.node('CumSum', [mask, g.constI64([1], [])]);
  const pos = g.node('Sub', [g.node('Mul', [cum, mask]), g.constI64([1], [])]);
  const newPos = g.node('Slice', [pos, pastLen, g.constI64([Number.MAX_SAFE_INTEGER]), g.constI64([1])]);
  const wpe = g.weight('language_model.model.decoder.embed_positions.weight', [positions + positionOffset, D], init.uniform((positions + positionOffset) * D, 0.2));
  let x = g.node('Add', [embeds, g.node('Gather', [wpe, g.node('Add', [newPos, g.constI64([positionOffset], [])])], { axis: attr.int(0) })]);

  // Causal mask offset by the past length, and padding keys (attention_mask = 0) masked out: [B, 1, S, T].
  const keyMask = g.node('Unsqueeze', [g.node('Cast', [mask], { to: attr.int(9 /* BOOL */) }), g.constI64([1, 2])]);
  let allowed: string | undefined;
  for (let i = 0; i < lmLayers; i++) {
    const name = `language_model.model.decoder.layers.${i}`;
    const h = layerNorm(ctx, x, D, `${name}.self_attn_layer_norm`);
    const q = splitHeads(ctx, linear(ctx, h, D, D, `${name}.self_attn.q_proj`), H, hd);
    const k = g.node('Concat', [past[i]!.key, splitHeads(ctx, linear(ctx, h, D, D, `${name}.self_attn.k_proj`), H, hd)], { axis: attr.int(2) });
    const v = g.node('Concat', [past[i]!.value, splitHeads(ctx, linear(ctx, h, D, D, `${name}.self_attn.v_proj`), H, hd)], { axis: attr.int(2) });
    const presentShape = ['batch_size', H, 'past_sequence_length + sequence_length', hd];
    g.output(k, `present.${i}.key`, 'float32', presentShape);
    g.output(v, `present.${i}.value`, 'float32', presentShape);
    allowed ??= g.node('And', [causalMask(ctx, seqLen, dimOf(ctx, k, 2)), keyMask]);
    const a = mergeHeads(ctx, attend(ctx, q, k, v, hd, allowed), D);
    x = g.node('Add', [x, linear(ctx, a, D, D, `${name}.self_attn.out_proj`)]);
    const f = layerNorm(ctx, x, D, `${name}.final_layer_norm`);
    x = g.node('Add', [x, linear(ctx, g.node('Relu', [linear(ctx, f, D, 4 * D, `${name}.fc1`)]), 4 * D, D, `${name}.fc2`)]);
  }
  x = layerNorm(ctx, x, D, 'language_model.model.decoder.final_layer_norm');
  // LM head tied to the token embedding (as OPT's), plus the bias a trained LM would have learned.
  const table = g.weight('language_model.lm_head.weight', [vocabSize, D], wte);
  const logits = tiedLmHead(ctx, x, table, 'language_model.lm_head.bias', bias);
  g.output(logits, 'logits', 'float32', ['batch_size', 'sequence_length', vocabSize]);
  return encodeModel(g, 'tiny random-weight OPT decoder taking inputs_embeds, with past key/values (recaption test model)');
}

/** All files of the tiny BLIP-2 folder, by relative path. */
export function tinyBlip2Files(init: WeightInit): Record<string, string | Uint8Array> {
  const d = BLIP2_DIMS;
  const tok = buildOptTokenizer(CAPTION_CORPUS, d.merges);
  const bos = tok.special['</s>']!;
  const pad = tok.special['<pad>']!;
  const eos = tok.vocab[NEWLINE]!;
  const textConfig = {
    model_type: 'opt',
    architectures: ['OPTForCausalLM'],
    vocab_size: tok.vocabSize,
    hidden_size: d.lmHidden,
    word_embed_proj_dim: d.lmHidden,
    num_hidden_layers: d.lmLayers,
    num_attention_heads: d.lmHeads,
    ffn_dim: 4 * d.lmHidden,
    max_position_embeddings: d.positions,
    activation_function: 'relu',
    do_layer_norm_before: true,
    bos_token_id: bos,
    eos_token_id: eos,
    pad_token_id: pad,
    prefix: '</s>',
  };
  // Blip2Config as HF writes it (trimmed to what matters), with the tiny sizes.
  const config = {
    model_type: 'blip-2',
    architectures: ['Blip2ForConditionalGeneration'],
    num_query_tokens: d.queryTokens,
    use_decoder_only_language_model: true,
    vision_config: { model_type: 'blip_2_vision_model', hidden_size: d.visionHidden, num_hidden_layers: 1, num_attention_heads: d.visionHeads, image_size: d.imageSize, patch_size: d.patch },
    qformer_config: { model_type: 'blip_2_qformer', hidden_size: d.qformerHidden, num_hidden_layers: 1, num_attention_heads: d.qformerHeads, encoder_hidden_size: d.visionHidden },
    text_config: textConfig,
  };
  const preprocessor = {
    image_processor_type: 'BlipImageProcessor',
    processor_class: 'Blip2Processor',
    ...resizeTo({ height: d.imageSize, width: d.imageSize }, 3),
    ...rescaleAndNormalize(CLIP_IMAGE_MEAN, CLIP_IMAGE_STD),
    do_convert_rgb: true,
  };
  const tokenizerConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    add_bos_token: true,
    bos_token: '</s>',
    eos_token: '</s>',
    unk_token: '</s>',
    pad_token: '<pad>',
    add_prefix_space: false,
    model_max_length: d.positions,
    clean_up_tokenization_spaces: true,
  };
  // Fixed build order: the weights depend on it.
  const vision = tinyBlip2VisionEncoder(init);
  const wte = init.uniform(tok.vocabSize * d.lmHidden, 0.125);
  const decoder = decoderModel(init, wte, lmHeadBias(tok, eos, LM_HEAD_BIAS));
  return {
    'config.json': json(config),
    'generation_config.json': json({ bos_token_id: bos, eos_token_id: eos, pad_token_id: pad }),
    'preprocessor_config.json': json(preprocessor),
    'tokenizer.json': json(tok.json),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json({ bos_token: '</s>', eos_token: '</s>', unk_token: '</s>', pad_token: '<pad>' }),
    'onnx/vision_encoder.onnx': vision,
    'onnx/embed_tokens.onnx': embedTokensModel({
      graph: 'opt_embed_tokens',
      tableName: 'language_model.model.decoder.embed_tokens.weight',
      table: wte,
      width: d.lmHidden,
      doc: 'tiny random-weight OPT token embedding (recaption test model)',
    }),
    'onnx/decoder_model_merged.onnx': decoder,
  };
}

/**
 * Smoke run before the folder is committed: image side for 2 images, a prefill over [image features, BOS] with an
 * empty past, then one cached step; every output present with the expected cache length.
 */
export async function smokeTinyBlip2(dir: string): Promise<void> {
  const d = BLIP2_DIMS;
  const run = (name: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> => runOnce(path.join(dir, `onnx/${name}.onnx`), feeds);
  const B = 2;
  const image = (await run('vision_encoder', { pixel_values: greyPixels(B, d.imageSize) }))['image_features']!;
  const ids = (v: number): ort.Tensor => new ort.Tensor('int64', new BigInt64Array(B).fill(BigInt(v)), [B, 1]);
  const bos = (await run('embed_tokens', { input_ids: ids(2) }))['inputs_embeds']!;
  const Q = d.queryTokens;
  const D = d.lmHidden;
  const joined = new Float32Array(B * (Q + 1) * D);
  for (let b = 0; b < B; b++) {
    joined.set((image.data as Float32Array).subarray(b * Q * D, (b + 1) * Q * D), b * (Q + 1) * D);
    joined.set((bos.data as Float32Array).subarray(b * D, (b + 1) * D), (b * (Q + 1) + Q) * D);
  }
  const ones = (n: number): ort.Tensor => new ort.Tensor('int64', new BigInt64Array(B * n).fill(1n), [B, n]);
  const feeds: Record<string, ort.Tensor> = { inputs_embeds: new ort.Tensor('float32', joined, [B, Q + 1, D]), attention_mask: ones(Q + 1) };
  addEmptyPast(feeds, { layers: d.lmLayers, heads: d.lmHeads, headDim: D / d.lmHeads }, B);
  const first = await run('decoder_model_merged', feeds);
  const next: Record<string, ort.Tensor> = { inputs_embeds: (await run('embed_tokens', { input_ids: ids(7) }))['inputs_embeds']!, attention_mask: ones(Q + 2) };
  for (let i = 0; i < d.lmLayers; i++) for (const kv of ['key', 'value']) next[`past_key_values.${i}.${kv}`] = first[`present.${i}.${kv}`]!;
  const second = await run('decoder_model_merged', next);
  if (second['present.0.key']!.dims[2] !== Q + 2) throw new Error(`${dir}: the decoder does not extend its cache (present.0.key [${second['present.0.key']!.dims.join(', ')}])`);
}
