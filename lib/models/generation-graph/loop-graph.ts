/**
 * Builds a caption family's generation graph: one ONNX model whose single run decodes a whole batch.
 *
 *   inputs   context            encoder_hidden_states [B, E, D] (encoder-decoder families) or image_features
 *                               [B, Q, D] (prefix-LM: prepended to the prompt's embeddings on the first step)
 *            uniforms           [B, maxLength] float64: row r's draw for step t, from the row's SeededRng
 *            max_length         int64 scalar: the Loop's trip count
 *            min_length, top_k  int64 scalars; temperature, repetition_penalty float64 scalars
 *   outputs  tokens [T, B] int64 (T = steps run; row r's tokens are tokens[0..lengths[r]) in column r),
 *            lengths [B] int64, invalid [B] bool (a row had nothing left to sample: the JS loop's error)
 *
 * The graph is a `Loop` whose body is one decoder step, with the KV cache, the next feed (ids or embeddings),
 * the presence mask and the row states as loop-carried values, then the sampler (sampler-graph.ts). Step 0 is
 * the prefill: the carried feed starts as the prompt (ids, or embeddings computed once at load; for a prefix-LM
 * the image prefix in front), the cache starts empty and use_cache_branch is false; from step 1 on the feed is
 * the sampled token. The merged decoder (and embed_tokens) are inlined into the body by inline-graph.ts, nested
 * If branches included; their weights become initializers of the body (or of the outer graph) — references into
 * the model files where readModel made them so (file-weights.ts), which keeps the built graph small.
 */
import { onnx } from 'onnx-proto';
import { attr, ELEM, elemTypeOf, encodeModelWith, GraphBuilder, tensorProto, type ElemType } from '../../onnx/graph-builder';
import { inlineGraph, InlineError } from '../../onnx/inline-graph';
import { samplerNodes } from './sampler-graph';

/** Why a family's generation graph cannot be built; the captioner then uses the JS loop and says why. */
export class GraphUnsupported extends Error {
  override readonly name = 'GraphUnsupported';
}

/** A float tensor's values as ONNX raw data wants them: float32, or float16 as its IEEE half bits. */
export interface FloatValues {
  type: 'float32' | 'float16';
  data: Float32Array | Uint16Array;
  dims: number[];
}

export interface GenerationGraphSpec {
  family: string;
  /** the merged decoder (decoded) and its file, for messages */
  decoder: { model: onnx.ModelProto; file: string };
  /** embed_tokens, for decoders that take inputs_embeds (the token of each step is embedded in the body) */
  embed?: { model: onnx.ModelProto; file: string };
  /** how the per-batch `context` input reaches the decoder */
  context: 'encoder_hidden_states' | 'prefix';
  /** the first step's tokens, the same for every row (decoder start, task or text prompt) */
  promptIds: readonly number[];
  /** the prompt's embeddings [P, D] for embedding decoders (computed once at load by embed_tokens) */
  promptEmbeds?: FloatValues;
  eosIds: readonly number[];
  vocab: number;
  /** cache sides: `growing` is the self-attention cache ('' or 'decoder'); `fixed` one computed on step 0 and kept (Florence-2's 'encoder') */
  cache: { layers: number; heads: number; headDim: number; growing: string; fixed?: string };
  /** where the decoder's weights live: the Loop body (default) or the outer graph, read from the body by name */
  weights?: 'body' | 'outer';
}

/** The vocabulary size: the logits' static width, else the config's; unknown -> the graph cannot be built. */
export function knownVocab(file: string, ...sizes: (number | null | undefined)[]): number {
  const v = sizes.find((x): x is number => typeof x === 'number' && x > 0);
  if (v === undefined) throw new GraphUnsupported(`${file}: the vocabulary size is neither static in the logits nor in the config`);
  return v;
}

export const GRAPH_INPUTS = { context: 'context', uniforms: 'uniforms', maxLength: 'max_length', minLength: 'min_length', temperature: 'temperature', topK: 'top_k', penalty: 'repetition_penalty' } as const;
export const GRAPH_OUTPUTS = ['tokens', 'lengths', 'invalid'] as const;

const MIN_OPSET = 13;
/** ops whose meaning is the same in every default-domain opset from 13 on: an embed graph of another opset may hold only these */
const OPSET_STABLE = new Set(['Gather', 'Mul', 'Add', 'Cast', 'Constant', 'Identity', 'Reshape', 'Shape', 'Unsqueeze', 'Squeeze', 'Sqrt', 'Div']);

const suffix = (layer: number, side: string, part: string): string => (side ? `${layer}.${side}.${part}` : `${layer}.${part}`);

function opsetOf(model: onnx.ModelProto, domain = ''): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'));
  return entry ? Number(String(entry.version)) : undefined;
}

function inputElem(model: onnx.ModelProto, name: string, file: string): ElemType {
  const v = (model.graph?.input ?? []).find((i) => i.name === name);
  const elem = elemTypeOf(v?.type?.tensorType?.elemType);
  if (!elem) throw new GraphUnsupported(`${file}: input ${name} has no tensor element type the generation graph can build`);
  return elem;
}

function outputElem(model: onnx.ModelProto, name: string, file: string): ElemType {
  const v = (model.graph?.output ?? []).find((i) => i.name === name);
  const elem = elemTypeOf(v?.type?.tensorType?.elemType);
  if (!elem) throw new GraphUnsupported(`${file}: output ${name} has no tensor element type the generation graph can build`);
  return elem;
}

/** The generation model's opset imports: the decoder's; the embed graph must agree or use only opset-stable ops. */
function opsetImports(spec: GenerationGraphSpec): onnx.IOperatorSetIdProto[] {
  const { decoder, embed } = spec;
  const version = opsetOf(decoder.model);
  if (version === undefined || version < MIN_OPSET) throw new GraphUnsupported(`${decoder.file}: default-domain opset ${version ?? 'missing'} < ${MIN_OPSET}`);
  const imports = new Map<string, number>();
  for (const o of decoder.model.opsetImport ?? []) imports.set(o.domain === 'ai.onnx' ? '' : (o.domain ?? ''), Number(String(o.version)));
  if (embed) {
    const ev = opsetOf(embed.model);
    if (ev !== version) {
      const unstable = (embed.model.graph?.node ?? []).filter((n) => (n.domain ?? '') === '' && !OPSET_STABLE.has(n.opType ?? ''));
      if (ev === undefined || ev < MIN_OPSET || unstable.length > 0) {
        throw new GraphUnsupported(`${embed.file}: opset ${ev ?? 'missing'} differs from ${decoder.file}'s ${version} and it uses ${unstable.map((n) => n.opType).join(', ')}`);
      }
    }
    for (const o of embed.model.opsetImport ?? []) {
      const d = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
      if (d === '') continue;
      const v = Number(String(o.version));
      if (imports.has(d) && imports.get(d) !== v) throw new GraphUnsupported(`${embed.file}: opset ${d} ${v} differs from ${decoder.file}'s ${imports.get(d)}`);
      imports.set(d, v);
    }
  }
  return [...imports].map(([domain, v]) => ({ domain, version: v }));
}

/** The serialised generation model for `spec`. Throws GraphUnsupported when the decoder does not fit. */
export function buildGenerationGraph(spec: GenerationGraphSpec): Uint8Array {
  try {
    return build(spec);
  } catch (err) {
    if (err instanceof InlineError) throw new GraphUnsupported(`${spec.decoder.file}: ${err.message}`);
    throw err;
  }
}

function build(spec: GenerationGraphSpec): Uint8Array {
  const { decoder, embed, cache, vocab } = spec;
  const dec = decoder.model.graph!;
  const opsetImport = opsetImports(spec);
  const decInputs = new Set((dec.input ?? []).map((v) => v.name ?? ''));
  const feedName = embed ? 'inputs_embeds' : 'input_ids';
  if (!decInputs.has(feedName)) throw new GraphUnsupported(`${decoder.file}: no ${feedName} input`);
  if (embed && !spec.promptEmbeds) throw new Error('generation graph: an embedding decoder needs the prompt embeddings');
  const feedElem: ElemType = embed ? inputElem(decoder.model, 'inputs_embeds', decoder.file) : 'int64';
  const contextElem: ElemType = spec.context === 'prefix' ? feedElem : inputElem(decoder.model, 'encoder_hidden_states', decoder.file);
  const pastElem = inputElem(decoder.model, `past_key_values.${suffix(0, cache.growing, 'key')}`, decoder.file);
  if (pastElem !== 'float32' && pastElem !== 'float16') throw new GraphUnsupported(`${decoder.file}: the cache is ${pastElem}`);
  const sides = cache.fixed === undefined ? [cache.growing] : [cache.growing, cache.fixed];
  const pastNames = (side: string): string[] => Array.from({ length: cache.layers }, (_, i) => ['key', 'value'].map((p) => suffix(i, side, p))).flat();

  // ---- outer graph: inputs, per-batch initial state, option scalars ----
  const g = new GraphBuilder('caption_generation', 'g/');
  const context = g.input(GRAPH_INPUTS.context, contextElem, ['batch_size', 'context_length', 'context_width']);
  const uniforms = g.input(GRAPH_INPUTS.uniforms, 'float64', ['batch_size', 'max_length']);
  const maxLength = g.input(GRAPH_INPUTS.maxLength, 'int64', []);
  const minLength = g.input(GRAPH_INPUTS.minLength, 'int64', []);
  const temperature = g.input(GRAPH_INPUTS.temperature, 'float64', []);
  const topK = g.input(GRAPH_INPUTS.topK, 'int64', []);
  const penalty = g.input(GRAPH_INPUTS.penalty, 'float64', []);
  const i64s = (...v: number[]): string => g.constant('int64', [v.length], BigInt64Array.from(v.map(BigInt)));
  const i64 = (v: number): string => g.constant('int64', [], BigInt64Array.of(BigInt(v)));
  const f64 = (v: number): string => g.constant('float64', [], Float64Array.of(v));

  const batch = g.node('Slice', [g.node('Shape', [uniforms]), i64s(0), i64s(1)]); // [1]
  const greedy = g.node('Equal', [temperature, f64(0)]);
  const tempEff = g.node('Where', [greedy, f64(1), temperature]);
  const kNoFilter = g.node('Where', [g.node('Equal', [topK, i64(0)]), i64(vocab), g.node('Min', [topK, i64(vocab)])]);
  const k = g.node('Reshape', [g.node('Where', [greedy, i64(1), kNoFilter]), i64s(1)]);

  const eosMask = new Uint8Array(vocab);
  for (const e of spec.eosIds) if (e >= 0 && e < vocab) eosMask[e] = 1;
  const eosMaskV = g.constant('bool', [vocab], eosMask);
  const prompt = new Uint8Array(vocab);
  for (const id of spec.promptIds) if (id >= 0 && id < vocab) prompt[id] = 1;
  const presence0 = g.node('Expand', [g.constant('bool', [1, vocab], prompt), g.node('Concat', [batch, i64s(vocab)], { axis: attr.int(0) })]);
  const falses = g.node('ConstantOfShape', [batch], { value: attr.tensor(tensorProto('f', 'bool', [1], Uint8Array.of(0))) });
  const zeros = g.node('ConstantOfShape', [batch], { value: attr.tensor(tensorProto('z', 'int64', [1], BigInt64Array.of(0n))) });
  const zeroPast = pastElem === 'float16' ? tensorProto('z', 'float16', [1], Uint16Array.of(0)) : tensorProto('z', 'float32', [1], Float32Array.of(0));
  const emptyPast = g.node('ConstantOfShape', [g.node('Concat', [batch, i64s(cache.heads, 0, cache.headDim)], { axis: attr.int(0) })], { value: attr.tensor(zeroPast) });

  // The first step's feed: the prompt for every row (prefix-LM: after the row's image prefix).
  const P = spec.promptIds.length;
  let feed0: string;
  if (!embed) {
    feed0 = g.node('Expand', [g.constant('int64', [1, P], BigInt64Array.from(spec.promptIds.map(BigInt))), g.node('Concat', [batch, i64s(P)], { axis: attr.int(0) })]);
  } else {
    const pe = spec.promptEmbeds!;
    if (pe.type !== feedElem) throw new Error(`generation graph: prompt embeddings are ${pe.type}, the decoder takes ${feedElem}`);
    const width = pe.dims[1]!;
    const promptEmb = g.node('Expand', [g.constant(pe.type, [1, P, width], pe.data), g.node('Concat', [batch, i64s(P, width)], { axis: attr.int(0) })]);
    feed0 = spec.context === 'prefix' ? g.node('Concat', [context, promptEmb], { axis: attr.int(1) }) : promptEmb;
  }
  const encoderMask = decInputs.has('encoder_attention_mask') && spec.context === 'encoder_hidden_states'
    ? g.node('ConstantOfShape', [g.node('Slice', [g.node('Shape', [context]), i64s(0), i64s(2)])], { value: attr.tensor(tensorProto('one', 'int64', [1], BigInt64Array.of(1n))) })
    : undefined;

  // ---- the Loop body: one decoder step, then the sampler ----
  const b = new GraphBuilder('generation_step', 'b/');
  const bi64s = (...v: number[]): string => b.constant('int64', [v.length], BigInt64Array.from(v.map(BigInt)));
  const iter = b.input('b/iter', 'int64', []);
  b.input('b/cond', 'bool', []);
  const feed = b.input('b/feed', feedElem);
  const past: Record<string, string[]> = {};
  for (const side of sides) past[side] = pastNames(side).map((n) => b.input(`b/past.${n}`, pastElem));
  const presence = b.input('b/presence', 'bool');
  const finished = b.input('b/finished', 'bool');
  const lengths = b.input('b/lengths', 'int64');
  const invalid = b.input('b/invalid', 'bool');

  const feedShape = b.node('Shape', [feed]);
  const rows = b.node('Slice', [feedShape, bi64s(0), bi64s(1)]);
  const seq = b.node('Slice', [feedShape, bi64s(1), bi64s(2)]);
  const pastLen = b.node('Slice', [b.node('Shape', [past[cache.growing]![0]!]), bi64s(2), bi64s(3)]);
  const total = b.node('Add', [pastLen, seq]);
  const bind: Record<string, string> = { [feedName]: feed };
  for (const side of sides) pastNames(side).forEach((n, j) => (bind[`past_key_values.${n}`] = past[side]![j]!));
  for (const name of decInputs) {
    if (name in bind) continue;
    if (name === 'encoder_hidden_states' && spec.context === 'encoder_hidden_states') bind[name] = context;
    else if (name === 'encoder_attention_mask' && encoderMask) bind[name] = encoderMask;
    else if (name === 'use_cache_branch') bind[name] = b.node('Reshape', [b.node('Greater', [iter, b.constant('int64', [], BigInt64Array.of(0n))]), bi64s(1)]);
    else if (name === 'attention_mask') {
      // Rows are never padded: all ones over past + new, as the JS loop feeds.
      bind[name] = b.node('ConstantOfShape', [b.node('Concat', [rows, total], { axis: attr.int(0) })], { value: attr.tensor(tensorProto('one', 'int64', [1], BigInt64Array.of(1n))) });
    } else if (name === 'position_ids') {
      const range = b.node('Range', [b.node('Squeeze', [pastLen, bi64s(0)]), b.node('Squeeze', [total, bi64s(0)]), b.constant('int64', [], BigInt64Array.of(1n))]);
      bind[name] = b.node('Expand', [b.node('Unsqueeze', [range, bi64s(0)]), b.node('Concat', [rows, seq], { axis: attr.int(0) })]);
    }
  }
  const inlined = inlineGraph(dec, { prefix: 'dec/', inputs: bind });
  b.addNodes(inlined.nodes);
  (spec.weights === 'outer' ? g : b).addInitializers(inlined.initializers);
  const logits = inlined.outputs['logits'];
  if (!logits) throw new GraphUnsupported(`${decoder.file}: no logits output`);
  const presents: Record<string, string[]> = {};
  for (const side of sides) {
    presents[side] = pastNames(side).map((n) => {
      const out = inlined.outputs[`present.${n}`];
      if (!out) throw new GraphUnsupported(`${decoder.file}: no present.${n} output`);
      return out;
    });
  }

  const s = samplerNodes(b, { logits, iter, presence, finished, lengths, invalid, uniforms, minLength, temperature: tempEff, penalty, k, eosMask: eosMaskV }, spec.eosIds);

  // Next feed: the step's token (ids), or its embedding through the inlined embed_tokens.
  const tokenCol = b.node('Unsqueeze', [s.feed, bi64s(1)]);
  let nextFeed = tokenCol;
  if (embed) {
    const e = inlineGraph(embed.model.graph!, { prefix: 'emb/', inputs: { input_ids: tokenCol } });
    b.addNodes(e.nodes);
    (spec.weights === 'outer' ? g : b).addInitializers(e.initializers);
    nextFeed = e.outputs['inputs_embeds'] ?? '';
    if (!nextFeed) throw new GraphUnsupported(`${embed.file}: no inputs_embeds output`);
    const embedElem = outputElem(embed.model, 'inputs_embeds', embed.file);
    if (embedElem !== feedElem) nextFeed = b.node('Cast', [nextFeed], { to: attr.int(ELEM[feedElem]) });
  }

  // The fixed (cross-attention) cache: step 0's presents, then carried unchanged (Optimum's cached branch may
  // return empty placeholders for them).
  let fixedNext: string[] = [];
  if (cache.fixed !== undefined) {
    const first = b.node('Equal', [iter, b.constant('int64', [], BigInt64Array.of(0n))]);
    const branch = (name: string, values: string[]): onnx.IGraphProto => {
      const sub = new GraphBuilder(name, `b/${name}/`);
      values.forEach((v, j) => sub.output(sub.node('Identity', [v]), `b/${name}/out${j}`, pastElem));
      return sub.toGraph();
    };
    fixedNext = b.nodeN('If', [first], presents[cache.fixed]!.length, {
      then_branch: attr.graph(branch('fixed_first', presents[cache.fixed]!)),
      else_branch: attr.graph(branch('fixed_kept', past[cache.fixed]!)),
    });
  }

  b.output(s.cond, 'b/cond_out', 'bool', []);
  b.output(nextFeed, 'b/feed_out', feedElem);
  presents[cache.growing]!.forEach((v, j) => b.output(v, `b/past_out.${cache.growing}.${j}`, pastElem));
  fixedNext.forEach((v, j) => b.output(v, `b/past_out.${cache.fixed}.${j}`, pastElem));
  b.output(s.presence, 'b/presence_out', 'bool');
  b.output(s.finished, 'b/finished_out', 'bool');
  b.output(s.lengths, 'b/lengths_out', 'int64');
  b.output(s.invalid, 'b/invalid_out', 'bool');
  b.output(s.emitted, 'b/token_out', 'int64');

  const carried0 = [feed0, ...sides.flatMap((side) => pastNames(side).map(() => emptyPast)), presence0, falses, zeros, falses];
  const finals = carried0.map((_, j) => `g/final_${j}`);
  const cond0 = g.constant('bool', [], Uint8Array.of(1));
  g.nodeN('Loop', [maxLength, cond0, ...carried0], carried0.length + 1, { body: attr.graph(b.toGraph()) }, [...finals, 'g/tokens']);
  g.output('g/tokens', 'tokens', 'int64', ['steps', 'batch_size']);
  g.output(finals[finals.length - 2]!, 'lengths', 'int64', ['batch_size']);
  g.output(finals[finals.length - 1]!, 'invalid', 'bool', ['batch_size']);

  return encodeModelWith(g, {
    docString: `recaption caption generation (${spec.family}): Loop over ${decoder.file}`,
    producerName: 'recaption-generation',
    opsetImport,
    irVersion: Math.max(7, Number(String(decoder.model.irVersion ?? 7))),
    functions: [...(decoder.model.functions ?? []), ...(embed?.model.functions ?? [])] as onnx.IFunctionProto[],
  });
}
