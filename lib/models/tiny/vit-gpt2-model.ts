/**
 * Tiny random-weight VisionEncoderDecoder (ViT encoder + GPT-2 decoder with cross-attention) in Optimum's
 * layout: encoder_model.onnx and decoder_model_merged.onnx with Optimum's exact I/O names. The merged decoder
 * really uses its cache: self-attention runs over Concat(past, new) under a causal mask offset by the past
 * length, and `use_cache_branch = false` ignores the past inputs (as Optimum's If-merged graphs do).
 */
import { attr, encodeModel, GraphBuilder } from '../../onnx/graph-builder';
import { attend, causalMask, Ctx, dimOf, encoderLayer, layerNorm, linear, mergeHeads, mlp, patchEmbedding, splitHeads, toScalar, WeightInit, withPast } from './layers';
import { buildGpt2Tokenizer } from './bpe';
import { CAPTION_CORPUS } from './corpus';
import { json, rescaleAndNormalize, resizeTo } from './folder-files';
import { lmHeadBias, tiedLmHead, type LmHeadBiases } from './token-side';

export interface VitGpt2Dims {
  hidden: number;
  heads: number;
  encoderLayers: number;
  decoderLayers: number;
  imageSize: number;
  patch: number;
  positions: number;
  merges: number;
  /** vocabulary rows of the decoder when larger than the tokenizer's (padding ids a real vocabulary would have) */
  vocab?: number;
}
const TINY_DIMS: VitGpt2Dims = { hidden: 64, heads: 2, encoderLayers: 1, decoderLayers: 2, imageSize: 224, patch: 32, positions: 128, merges: 400 };
/** ViT-base encoder + GPT-2 124M decoder sizes (nlpconnect/vit-gpt2-image-captioning), for real-size benchmarks. */
export const REAL_SIZE_VIT_GPT2_DIMS: VitGpt2Dims = { hidden: 768, heads: 12, encoderLayers: 12, decoderLayers: 12, imageSize: 224, patch: 16, positions: 1024, merges: 400, vocab: 50257 };
/** LM-head bias of the random model (token-side.ts): enough of an EOS lift for varied caption lengths. */
const LM_HEAD_BIAS: LmHeadBiases = { eos: 3, word: 2, strayByte: -4 };

function encoderModel(init: WeightInit, DIMS: VitGpt2Dims): Uint8Array {
  const g = new GraphBuilder('vit_encoder');
  const ctx: Ctx = { g, init };
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, DIMS.imageSize, DIMS.imageSize]);
  let x = patchEmbedding(ctx, pixels, DIMS.imageSize, DIMS.patch, DIMS.hidden, 'encoder.embeddings');
  for (let i = 0; i < DIMS.encoderLayers; i++) x = encoderLayer(ctx, x, { dim: DIMS.hidden, heads: DIMS.heads }, `encoder.layer.${i}`, false);
  x = layerNorm(ctx, x, DIMS.hidden, 'encoder.layernorm');
  g.output(x, 'last_hidden_state', 'float32', ['batch_size', 'encoder_sequence_length', DIMS.hidden]);
  return encodeModel(g, 'tiny random-weight ViT encoder (recaption test model)');
}

function decoderModel(init: WeightInit, bias: Float32Array, DIMS: VitGpt2Dims): Uint8Array {
  const vocabSize = bias.length;
  const g = new GraphBuilder('gpt2_decoder_merged');
  const ctx: Ctx = { g, init };
  const { hidden: D, heads: H } = DIMS;
  const hd = D / H;
  const ids = g.input('input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
  const enc = g.input('encoder_hidden_states', 'float32', ['batch_size', 'encoder_sequence_length', D]);
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < DIMS.decoderLayers; i++) {
    const shape = ['batch_size', H, 'past_decoder_sequence_length', hd];
    past.push({
      key: g.input(`past_key_values.${i}.key`, 'float32', shape),
      value: g.input(`past_key_values.${i}.value`, 'float32', shape),
    });
  }
  const useCache = g.input('use_cache_branch', 'bool', [1]);

  // Positions continue after the (used) past: past_len + arange(seq).
  const seqLen = dimOf(ctx, ids, 1);
  const pastLen = g.node('Where', [useCache, dimOf(ctx, past[0]!.key, 2), g.constI64([0])]);
  const start = toScalar(ctx, pastLen);
  const positions = g.node('Range', [start, toScalar(ctx, g.node('Add', [pastLen, seqLen])), g.constI64([1], [])]);
  const wte = g.weight('transformer.wte.weight', [vocabSize, D], init.uniform(vocabSize * D, 0.125));
  const wpe = g.weight('transformer.wpe.weight', [DIMS.positions, D], init.uniform(DIMS.positions * D, 0.2));
  let x = g.node('Add', [g.node('Gather', [wte, ids], { axis: attr.int(0) }), g.node('Gather', [wpe, positions], { axis: attr.int(0) })]);

  for (let i = 0; i < DIMS.decoderLayers; i++) {
    const name = `transformer.h.${i}`;
    // Causal self-attention over cache + new tokens.
    const h = layerNorm(ctx, x, D, `${name}.ln_1`);
    const q = splitHeads(ctx, linear(ctx, h, D, D, `${name}.attn.q`), H, hd);
    const kNew = splitHeads(ctx, linear(ctx, h, D, D, `${name}.attn.k`), H, hd);
    const vNew = splitHeads(ctx, linear(ctx, h, D, D, `${name}.attn.v`), H, hd);
    const k = withPast(ctx, useCache, past[i]!.key, kNew, `l${i}_key`);
    const v = withPast(ctx, useCache, past[i]!.value, vNew, `l${i}_value`);
    const presentShape = ['batch_size', H, 'past_decoder_sequence_length + decoder_sequence_length', hd];
    g.output(k, `present.${i}.key`, 'float32', presentShape);
    g.output(v, `present.${i}.value`, 'float32', presentShape);
    const mask = causalMask(ctx, seqLen, dimOf(ctx, k, 2));
    const selfAttn = mergeHeads(ctx, attend(ctx, q, k, v, hd, mask), D);
    x = g.node('Add', [x, linear(ctx, selfAttn, D, D, `${name}.attn.c_proj`)]);
    // Cross-attention to the image tokens (GPT-2 recomputes these K/V every step; they are not cached).
    const hc = layerNorm(ctx, x, D, `${name}.ln_cross_attn`);
    const cq = splitHeads(ctx, linear(ctx, hc, D, D, `${name}.crossattention.q_attn`), H, hd);
    const ck = splitHeads(ctx, linear(ctx, enc, D, D, `${name}.crossattention.k`), H, hd);
    const cv = splitHeads(ctx, linear(ctx, enc, D, D, `${name}.crossattention.v`), H, hd);
    const crossAttn = mergeHeads(ctx, attend(ctx, cq, ck, cv, hd), D);
    x = g.node('Add', [x, linear(ctx, crossAttn, D, D, `${name}.crossattention.c_proj`)]);
    x = g.node('Add', [x, mlp(ctx, layerNorm(ctx, x, D, `${name}.ln_2`), D, 4 * D, `${name}.mlp`)]);
  }
  x = layerNorm(ctx, x, D, 'transformer.ln_f');
  // Tied LM head (x @ wte^T) plus the bias.
  const logits = tiedLmHead(ctx, x, wte, 'lm_head.bias', bias);
  g.output(logits, 'logits', 'float32', ['batch_size', 'decoder_sequence_length', vocabSize]);
  return encodeModel(g, 'tiny random-weight GPT-2 decoder with cross-attention, merged with/without past (recaption test model)');
}

/** All files of the tiny ViT-GPT2 folder (or one of other `DIMS`), by relative path. */
export function tinyVitGpt2Files(init: WeightInit, DIMS: VitGpt2Dims = TINY_DIMS): Record<string, string | Uint8Array> {
  const tok = buildGpt2Tokenizer(CAPTION_CORPUS, DIMS.merges);
  const eos = tok.special['<|endoftext|>']!;
  const specialIds = { bos_token_id: eos, eos_token_id: eos, pad_token_id: eos, decoder_start_token_id: eos };
  const config = {
    model_type: 'vision-encoder-decoder',
    architectures: ['VisionEncoderDecoderModel'],
    is_encoder_decoder: true,
    tie_word_embeddings: false,
    ...specialIds,
    encoder: {
      model_type: 'vit',
      hidden_size: DIMS.hidden,
      num_hidden_layers: DIMS.encoderLayers,
      num_attention_heads: DIMS.heads,
      intermediate_size: 4 * DIMS.hidden,
      hidden_act: 'quick_gelu',
      image_size: DIMS.imageSize,
      patch_size: DIMS.patch,
      num_channels: 3,
      qkv_bias: true,
      layer_norm_eps: 1e-5,
    },
    decoder: {
      model_type: 'gpt2',
      vocab_size: Math.max(tok.vocabSize, DIMS.vocab ?? 0),
      n_positions: DIMS.positions,
      n_embd: DIMS.hidden,
      n_layer: DIMS.decoderLayers,
      n_head: DIMS.heads,
      n_inner: 4 * DIMS.hidden,
      activation_function: 'quick_gelu',
      add_cross_attention: true,
      is_decoder: true,
      ...specialIds,
    },
  };
  const preprocessor = {
    image_processor_type: 'ViTImageProcessor',
    feature_extractor_type: 'ViTFeatureExtractor',
    ...resizeTo({ height: DIMS.imageSize, width: DIMS.imageSize }, 2),
    ...rescaleAndNormalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
  };
  const tokenizerConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    add_prefix_space: false,
    model_max_length: DIMS.positions,
    clean_up_tokenization_spaces: true,
  };
  const encoder = encoderModel(init, DIMS);
  const bias = lmHeadBias(tok, eos, LM_HEAD_BIAS);
  // Padding ids past the tokenizer's vocabulary (real-size dims) get a low bias, as unused rows would.
  const padded = DIMS.vocab && DIMS.vocab > bias.length ? Float32Array.from({ length: DIMS.vocab }, (_, i) => (i < bias.length ? bias[i]! : LM_HEAD_BIAS.strayByte)) : bias;
  const decoder = decoderModel(init, padded, DIMS);
  return {
    'config.json': json(config),
    'generation_config.json': json({ ...specialIds, _from_model_config: true }),
    'preprocessor_config.json': json(preprocessor),
    'tokenizer.json': json(tok.json),
    'tokenizer_config.json': json(tokenizerConfig),
    'special_tokens_map.json': json({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: '<|endoftext|>' }),
    'onnx/encoder_model.onnx': encoder,
    'onnx/decoder_model_merged.onnx': decoder,
  };
}
