/**
 * Transformer building blocks (pre-LayerNorm, multi-head attention, MLP) emitted as ONNX nodes, used by the tiny
 * model generators. Shapes stay symbolic in batch and sequence so the graphs behave like real exports.
 */
import { attr, GraphBuilder, tensorProto } from '../../onnx/graph-builder';

/** Source of seeded uniform numbers in [0, 1). */
export interface UniformSource {
  nextDouble(): number;
}

/** Seeded weight initialiser: uniform with the requested standard deviation (no transcendental math, so portable). */
export class WeightInit {
  constructor(private readonly source: UniformSource) {}

  uniform(n: number, std: number): Float32Array {
    const half = Math.sqrt(3) * std;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (this.source.nextDouble() * 2 - 1) * half;
    return out;
  }
}

export function fill(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}

export interface Ctx {
  g: GraphBuilder;
  init: WeightInit;
}

/** x[..., inDim] @ W[inDim, outDim] (+ b). */
export function linear({ g, init }: Ctx, x: string, inDim: number, outDim: number, name: string, bias = true): string {
  const w = g.weight(`${name}.weight`, [inDim, outDim], init.uniform(inDim * outDim, 1 / Math.sqrt(inDim)));
  const y = g.node('MatMul', [x, w]);
  if (!bias) return y;
  const b = g.weight(`${name}.bias`, [outDim], init.uniform(outDim, 0.02));
  return g.node('Add', [y, b]);
}

export function layerNorm({ g }: Ctx, x: string, dim: number, name: string): string {
  const scale = g.weight(`${name}.weight`, [dim], fill(dim, 1));
  const bias = g.weight(`${name}.bias`, [dim], fill(dim, 0));
  return g.node('LayerNormalization', [x, scale, bias], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
}

/** CLIP's quick_gelu, x * sigmoid(1.702 x): only opset-17 ops (Gelu arrives in opset 20). */
export function quickGelu({ g }: Ctx, x: string): string {
  const k = g.constF32([1.702], []);
  return g.node('Mul', [x, g.node('Sigmoid', [g.node('Mul', [x, k])])]);
}

export function mlp(ctx: Ctx, x: string, dim: number, hidden: number, name: string): string {
  const h = quickGelu(ctx, linear(ctx, x, dim, hidden, `${name}.fc1`));
  return linear(ctx, h, hidden, dim, `${name}.fc2`);
}

/** [B, S, H*hd] -> [B, H, S, hd] */
export function splitHeads({ g }: Ctx, x: string, heads: number, headDim: number): string {
  const shape = g.constI64([0, 0, heads, headDim]);
  return g.node('Transpose', [g.node('Reshape', [x, shape])], { perm: attr.ints([0, 2, 1, 3]) });
}

/** [B, H, S, hd] -> [B, S, H*hd] */
export function mergeHeads({ g }: Ctx, x: string, dim: number): string {
  const t = g.node('Transpose', [x], { perm: attr.ints([0, 2, 1, 3]) });
  return g.node('Reshape', [t, g.constI64([0, 0, dim])]);
}

/** Size of one axis as an int64 tensor of shape [1]. */
export function dimOf({ g }: Ctx, x: string, axis: number): string {
  return g.node('Shape', [x], { start: attr.int(axis), end: attr.int(axis + 1) });
}

/** A 1-element int64 tensor as a scalar (Range and Trilu's k want scalars). */
export function toScalar({ g }: Ctx, x: string): string {
  return g.node('Squeeze', [x, g.constI64([0])]);
}

/**
 * Causal mask [S, T] (true = may attend): query i sees keys j <= i + offset, where offset = T - S is the cached
 * past length. Built as Trilu(ones, k = offset), so the same graph serves prefill and cached decoding.
 */
export function causalMask(ctx: Ctx, queryLen: string, keyLen: string): string {
  const { g } = ctx;
  const ones = g.node('ConstantOfShape', [g.node('Concat', [queryLen, keyLen], { axis: attr.int(0) })], {
    value: attr.tensor(tensorProto('one', 'float32', [1], Float32Array.of(1))),
  });
  const offset = toScalar(ctx, g.node('Sub', [keyLen, queryLen]));
  const lower = g.node('Trilu', [ones, offset], { upper: attr.int(0) });
  return g.node('Cast', [lower], { to: attr.int(9 /* BOOL */) });
}

/** softmax(q k^T / sqrt(hd) [masked]) v over [B, H, S, hd] tensors. */
export function attend(ctx: Ctx, q: string, k: string, v: string, headDim: number, mask?: string): string {
  const { g } = ctx;
  const kT = g.node('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) });
  let scores = g.node('Mul', [g.node('MatMul', [q, kT]), g.constF32([1 / Math.sqrt(headDim)], [])]);
  if (mask) scores = g.node('Where', [mask, scores, g.constF32([-Infinity], [])]);
  return g.node('MatMul', [g.node('Softmax', [scores], { axis: attr.int(-1) }), v]);
}

export interface AttentionDims {
  dim: number;
  heads: number;
}

/** Full bidirectional (or causal, with `causal`) self-attention block without cache: x + attn(LN(x)). */
export function selfAttentionBlock(ctx: Ctx, x: string, d: AttentionDims, name: string, causal: boolean): string {
  const headDim = d.dim / d.heads;
  const h = layerNorm(ctx, x, d.dim, `${name}.ln_1`);
  const q = splitHeads(ctx, linear(ctx, h, d.dim, d.dim, `${name}.q_proj`), d.heads, headDim);
  const k = splitHeads(ctx, linear(ctx, h, d.dim, d.dim, `${name}.k_proj`), d.heads, headDim);
  const v = splitHeads(ctx, linear(ctx, h, d.dim, d.dim, `${name}.v_proj`), d.heads, headDim);
  let mask: string | undefined;
  if (causal) {
    const len = dimOf(ctx, x, 1);
    mask = causalMask(ctx, len, len);
  }
  const a = mergeHeads(ctx, attend(ctx, q, k, v, headDim, mask), d.dim);
  return ctx.g.node('Add', [x, linear(ctx, a, d.dim, d.dim, `${name}.out_proj`)]);
}

/** One pre-LN encoder layer: self-attention then MLP, both residual. */
export function encoderLayer(ctx: Ctx, x: string, d: AttentionDims, name: string, causal: boolean): string {
  const a = selfAttentionBlock(ctx, x, d, name, causal);
  const m = mlp(ctx, layerNorm(ctx, a, d.dim, `${name}.ln_2`), d.dim, 4 * d.dim, `${name}.mlp`);
  return ctx.g.node('Add', [a, m]);
}

/**
 * If(`cond`) then `thenOut` else `elseOut`, each branch a subgraph whose one float32 output its callback builds
 * (Optimum's merged decoders switch on use_cache_branch this way). Branch values are prefixed by `name`, so they
 * never clash with the parent graph's.
 */
export function ifBranches(ctx: Ctx, cond: string, name: string, thenOut: (g: GraphBuilder) => string, elseOut: (g: GraphBuilder) => string): string {
  const thenG = new GraphBuilder(`${name}_then`, `${name}_then_`);
  thenG.output(thenOut(thenG), `${name}_then_out`, 'float32');
  const elseG = new GraphBuilder(`${name}_else`, `${name}_else_`);
  elseG.output(elseOut(elseG), `${name}_else_out`, 'float32');
  return ctx.g.node('If', [cond], { then_branch: attr.graph(thenG.toGraph()), else_branch: attr.graph(elseG.toGraph()) });
}

/** If(use_cache_branch) then Concat(past, new) else new, for one K or V tensor: the growing self-attention cache. */
export function withPast(ctx: Ctx, useCache: string, past: string, fresh: string, name: string): string {
  return ifBranches(
    ctx,
    useCache,
    name,
    (g) => g.node('Concat', [past, fresh], { axis: attr.int(2) }),
    (g) => g.node('Identity', [fresh]),
  );
}

/**
 * ViT/CLIP patch embedding: Conv(stride = patch) -> [B, N, D], a learned class token in front, plus learned
 * position embeddings. Returns [B, 1 + N, D].
 */
export function patchEmbedding(ctx: Ctx, pixels: string, imageSize: number, patch: number, dim: number, name: string): string {
  const { g, init } = ctx;
  const nPatches = (imageSize / patch) ** 2;
  const convW = g.weight(`${name}.patch_embedding.weight`, [dim, 3, patch, patch], init.uniform(dim * 3 * patch * patch, 1 / Math.sqrt(3 * patch * patch)));
  const conv = g.node('Conv', [pixels, convW], { kernel_shape: attr.ints([patch, patch]), strides: attr.ints([patch, patch]) });
  const seq = g.node('Transpose', [g.node('Reshape', [conv, g.constI64([0, dim, nPatches])])], { perm: attr.ints([0, 2, 1]) });
  // Class token expanded to [B, 1, D] using the batch size of the input.
  const cls = g.weight(`${name}.class_embedding`, [1, 1, dim], init.uniform(dim, 0.5));
  const clsShape = g.node('Concat', [dimOf(ctx, pixels, 0), g.constI64([1, dim])], { axis: attr.int(0) });
  const tokens = g.node('Concat', [g.node('Expand', [cls, clsShape]), seq], { axis: attr.int(1) });
  const pos = g.weight(`${name}.position_embedding`, [1 + nPatches, dim], init.uniform((1 + nPatches) * dim, 0.5));
  return g.node('Add', [tokens, pos]);
}
