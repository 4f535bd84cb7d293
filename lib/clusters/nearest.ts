/**
 * Nearest-centroid assignment for DataComp's image-based filter, on onnxruntime-node.
 *
 * DataComp (mlfoundations/datacomp, baselines/apply_filter.py `get_centroid_ids_gpu`) assigns a feature to
 * `argmax_j <x, c_j>` over the centroids exactly as published (`torch.einsum('ik,jk->ij')` then
 * `torch.argmax`, batches of 1024), with the centroids NOT re-normalised: they come from faiss k-means (L2,
 * not spherical) over L2-normalised L/14 embeddings, so their norms are slightly below 1 and differ. The default
 * here (`centroidNorm: 'as-is'`) reproduces that; `'l2'` normalises the centroids first (cosine nearest, the
 * argmin of L2 distance between unit vectors). The feature's own norm never changes the argmax.
 *
 * The heavy part is one tiny ONNX graph built at load time: `x [n, D]`, `c [K, D]` (an initializer, so it is
 * uploaded/prepacked once) → Gemm(transB=1), i.e. MatMul(x, cᵀ) without transposing 77M floats in JS (that
 * alone took ~4 s for K = 100k, D = 768) → ArgMax(axis 1, keepdims 0, select_last_index 0) → int64 [n]. Ties go
 * to the lowest index, like torch.argmax. Rows are fed in chunks so the [chunk, K] score matrix stays bounded
 * (K = 100k: 1024 rows = 400 MB of scores, hence the smaller default below).
 */
import * as ort from 'onnxruntime-node';
import { InputError } from '../errors';
import { attr, encodeModel, GraphBuilder } from '../onnx/graph-builder';
import { createSession, runSession } from '../models/session';
import type { RuntimeOptions } from '../models/types';
import { readFloatMatrix } from '../formats/npy';
import type { StorageOptions } from '../storage';

export interface NearestCentroidOptions extends Pick<RuntimeOptions, 'device' | 'intraOpNumThreads' | 'interOpNumThreads'> {
  /**
   * `as-is` (default): raw inner product with the centroids as given, DataComp's own assignment.
   * `l2`: L2-normalise every centroid on load (cosine nearest centroid).
   */
  centroidNorm?: 'as-is' | 'l2';
  /** Rows per ORT run. Default: the largest of at most 1024 keeping the score matrix ≤ 2^25 floats (128 MB). */
  chunkRows?: number;
  /** Name used in error messages (e.g. the centroid file's uri). */
  name?: string;
}

/** Default chunk: ≤ 1024 rows and ≤ 2^25 score floats per run (K = 100k → 335 rows). */
export function defaultChunkRows(k: number): number {
  return Math.max(1, Math.min(1024, Math.floor(2 ** 25 / k)));
}

export class NearestCentroid {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Number of centroids. */
    readonly k: number,
    /** Embedding dimension. */
    readonly d: number,
    /** Rows per ORT run. */
    readonly chunkRows: number,
    private readonly name: string,
  ) {}

  /**
   * Builds the assigner from centroids [k, d] (row-major float32). The array is not modified; ORT keeps its
   * own (with `centroidNorm: 'l2'`, normalised) copy, so the caller may drop it afterwards.
   */
  static async create(centroids: Float32Array, k: number, d: number, opts: NearestCentroidOptions = {}): Promise<NearestCentroid> {
    const name = opts.name ?? 'centroids';
    if (!Number.isInteger(k) || !Number.isInteger(d) || k < 1 || d < 1) throw new InputError('BadCentroids', `${name}: bad shape [${k}, ${d}]`);
    if (centroids.length !== k * d) throw new InputError('BadCentroids', `${name}: ${centroids.length} values for shape [${k}, ${d}]`);
    const chunkRows = opts.chunkRows ?? defaultChunkRows(k);
    if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new InputError('InvalidConfig', `chunkRows must be a positive integer, got ${chunkRows}`);

    const c = checkedCentroids(centroids, k, d, opts.centroidNorm ?? 'as-is', name);
    const model = buildModel(c, k, d);
    const session = await createSession(model, `${name} (nearest-centroid graph)`, {
      device: opts.device,
      intraOpNumThreads: opts.intraOpNumThreads,
      interOpNumThreads: opts.interOpNumThreads,
    });
    return new NearestCentroid(session, k, d, chunkRows, name);
  }

  /** Loads a `.npy` [K, D] float32/float16 centroid matrix (local path or gs://) and builds the assigner. */
  static async fromNpy(uri: string, opts: NearestCentroidOptions & StorageOptions = {}): Promise<NearestCentroid> {
    const m = await readFloatMatrix(uri, opts);
    return NearestCentroid.create(m.data, m.rows, m.cols, { ...opts, name: opts.name ?? uri });
  }

  /**
   * Index of the nearest centroid of each of the `n` rows of `embeddings` ([n, d] row-major float32).
   * Rows with non-finite values are rejected (ArgMax over NaN scores is unspecified).
   */
  async assign(embeddings: Float32Array, n: number): Promise<Int32Array> {
    const { d } = this;
    if (!Number.isInteger(n) || n < 0) throw new InputError('BadEmbeddings', `assign: bad row count ${n}`);
    if (embeddings.length !== n * d) {
      throw new InputError('BadEmbeddings', `assign: ${embeddings.length} values for ${n} rows of dimension ${d} (centroids ${this.name})`);
    }
    for (let i = 0; i < embeddings.length; i++) {
      if (!Number.isFinite(embeddings[i]!)) throw new InputError('BadEmbeddings', `assign: non-finite value in row ${Math.floor(i / d)}`);
    }
    const out = new Int32Array(n);
    for (let start = 0; start < n; start += this.chunkRows) {
      const rows = Math.min(this.chunkRows, n - start);
      const x = new ort.Tensor('float32', embeddings.subarray(start * d, (start + rows) * d), [rows, d]);
      const result = await runSession(this.session, `${this.name}: nearest-centroid`, { x });
      const idx = result.index!.data as BigInt64Array;
      for (let i = 0; i < rows; i++) out[start + i] = Number(idx[i]!);
      result.index!.dispose();
    }
    return out;
  }

  /** Frees the ORT session (and its copy of the centroids). */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Rejects non-finite centroids; with `l2`, a normalised copy, otherwise the array itself. */
function checkedCentroids(c: Float32Array, k: number, d: number, norm: 'as-is' | 'l2', name: string): Float32Array {
  const out = norm === 'l2' ? new Float32Array(k * d) : c;
  for (let j = 0; j < k; j++) {
    let ss = 0;
    for (let t = j * d; t < (j + 1) * d; t++) {
      const v = c[t]!;
      if (!Number.isFinite(v)) throw new InputError('BadCentroids', `${name}: non-finite value in centroid ${j}`);
      ss += v * v;
    }
    if (norm === 'l2') {
      if (ss === 0) throw new InputError('BadCentroids', `${name}: centroid ${j} is all zeros and cannot be normalised`);
      const s = 1 / Math.sqrt(ss);
      for (let t = j * d; t < (j + 1) * d; t++) out[t] = c[t]! * s;
    }
  }
  return out;
}

/** Gemm(x [n, d], c [k, d], transB) → ArgMax over k → `index` int64 [n]. `c`'s bytes go into the proto uncopied. */
function buildModel(c: Float32Array, k: number, d: number): Uint8Array {
  const g = new GraphBuilder('nearest_centroid');
  const x = g.input('x', 'float32', ['n', d]);
  const scores = g.node('Gemm', [x, g.weight('c', [k, d], c, { copy: false })], { transB: attr.int(1) });
  // Ties go to the lowest index (select_last_index 0), like torch.argmax.
  const index = g.nodeN('ArgMax', [scores], 1, { axis: attr.int(1), keepdims: attr.int(0), select_last_index: attr.int(0) }, ['index'])[0]!;
  g.output(index, 'index', 'int64', ['n']);
  return encodeModel(g, 'nearest-centroid assignment (DataComp image-based filter)', 'recaption-clusters');
}
