/**
 * onnxruntime-node sessions built from RuntimeOptions, plus the tensor glue every model family needs (float16
 * adaptation for `_fp16` exports, reading outputs back as float32).
 */
import * as ort from 'onnxruntime-node';
import { InputError } from '../errors';
import { fromFloat16Bits, toFloat16Bits } from '../formats/float16';
import { commitOptimized, discard, optimizedCacheEntry, optimizedTempFile } from './optimized-cache';
import { timedRun } from './run-clock';
import { GraphBuilder, encodeModel } from '../onnx/graph-builder';
import type { Device, RuntimeOptions } from './types';

export type Session = ort.InferenceSession;
/** What a session says about its inputs and outputs; also read from a model's declarations without a session. */
export type SessionInfo = Pick<Session, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata'>;

export function parseDevice(device: Device | undefined): { kind: 'cpu' } | { kind: 'cuda'; deviceId: number } {
  if (device === undefined || device === 'cpu') return { kind: 'cpu' };
  const m = /^cuda:(\d+)$/.exec(device);
  if (!m) throw new InputError('InvalidConfig', `device must be "cpu" or "cuda:N", got ${JSON.stringify(device)}`);
  return { kind: 'cuda', deviceId: Number(m[1]) };
}

export function sessionOptions(opts: RuntimeOptions = {}): ort.InferenceSession.SessionOptions {
  const device = parseDevice(opts.device);
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: device.kind === 'cpu' ? ['cpu'] : [{ name: 'cuda', deviceId: device.deviceId }],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    // Errors only: ORT's warnings (e.g. unused initializers) are noise in long-running workers.
    logSeverityLevel: 3,
  };
  if (opts.intraOpNumThreads !== undefined) options.intraOpNumThreads = opts.intraOpNumThreads;
  if (opts.interOpNumThreads !== undefined) options.interOpNumThreads = opts.interOpNumThreads;
  return options;
}

const CUDA_FAILURE = /cuda|execution ?provider|providers_shared|cudnn|cublas/i;

/** The CudaUnavailable error: what is missing and how to supply it (README "GPU"). */
function cudaUnavailable(displayName: string, deviceId: number, message: string): InputError {
  return new InputError(
    'CudaUnavailable',
    `${displayName}: cuda:${deviceId} is unavailable: onnxruntime cannot create or run the CUDA execution provider (${message}` +
      // The JS error is generic; ORT's native log (stderr) names the library that failed to load.
      `${/failed to load shared library/i.test(message) ? "; onnxruntime's log line above names the library it could not load" : ''}). ` +
      `onnxruntime-node ${ort.env.versions.common} needs libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so ` +
      'from the same ONNX Runtime release next to its binding (node_modules/onnxruntime-node/bin/napi-v*/linux/x64/; the default ' +
      'install skips them), plus CUDA 13 (cudart, cuBLAS, cuRAND) and cuDNN 9 on LD_LIBRARY_PATH — see README "GPU"; or use device "cpu".',
  );
}

/**
 * Creates a session for one ONNX file (a path, or the bytes of a graph built in memory such as lib/clusters'
 * nearest-centroid graph). A CUDA EP that cannot be created is reported as `CudaUnavailable`; a file ORT cannot
 * parse is a `BadModel`. Both are InputErrors: retrying on the same worker cannot fix them. With
 * `optimizedModelCache`, a path's optimised graph is saved on first load and reused later (optimized-cache.ts).
 */
export async function createSession(file: string | Uint8Array, displayName: string, opts: RuntimeOptions = {}, load: { externalDataDir?: string } = {}): Promise<Session> {
  const options = sessionOptions(opts);
  // Model bytes have no folder of their own: ORT resolves relative external-data locations against this one.
  if (load.externalDataDir) options.extra = { session: { model_external_initializers_file_folder_path: load.externalDataDir } };
  const level = options.graphOptimizationLevel;
  if (typeof file !== 'string' || !opts.optimizedModelCache || level === 'disabled' || level === 'layout' || level === undefined) {
    return openSession(file, displayName, options, opts);
  }
  const entry = await optimizedCacheEntry(opts.optimizedModelCache, file, { ep: parseDevice(opts.device).kind, level });
  if (entry.hit) {
    try {
      // The cached graph is already optimised: a second pass would only cost time.
      return await openSession(entry.file, displayName, { ...options, graphOptimizationLevel: 'disabled' }, opts);
    } catch (err) {
      if (err instanceof InputError && err.type === 'CudaUnavailable') throw err;
      await discard(entry.file); // unreadable (e.g. a damaged disk): rebuild it from the source below
    }
  }
  const tmp = await optimizedTempFile(entry.file);
  try {
    const session = await openSession(file, displayName, { ...options, optimizedModelFilePath: tmp }, opts);
    await commitOptimized(tmp, entry.file);
    return session;
  } catch (err) {
    await discard(tmp);
    if (err instanceof InputError && err.type === 'CudaUnavailable') throw err;
    // Saving can fail where loading does not (e.g. a graph over protobuf's 2 GB limit): load uncached then, and
    // if that fails too, its error names the real problem.
    const session = await openSession(file, displayName, options, opts);
    process.emitWarning(`${displayName}: cannot save the optimised graph to ${opts.optimizedModelCache} (${err instanceof Error ? err.message : String(err)}); loaded without the cache`);
    return session;
  }
}

async function openSession(file: string | Uint8Array, displayName: string, options: ort.InferenceSession.SessionOptions, opts: RuntimeOptions): Promise<Session> {
  try {
    return await (typeof file === 'string' ? ort.InferenceSession.create(file, options) : ort.InferenceSession.create(file, options));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const device = parseDevice(opts.device);
    if (device.kind === 'cuda' && CUDA_FAILURE.test(message)) throw cudaUnavailable(displayName, device.deviceId, message);
    throw new InputError('BadModel', `${displayName}: onnxruntime cannot load the model: ${message}`);
  }
}

/**
 * Checks that `device` works on this machine: builds and runs a two-element Add graph there. Running (not only
 * creating) matters because some CUDA libraries (cuDNN) load on the first run. CPU needs no probe.
 */
export async function probeDevice(device: Device | undefined): Promise<void> {
  const parsed = parseDevice(device);
  if (parsed.kind === 'cpu') return;
  const name = `device probe (--device ${device})`;
  const session = await createSession(probeGraph(), name, { device });
  try {
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
    const y = out['y']?.data as Float32Array | undefined;
    if (!y || y[0] !== 2 || y[1] !== 4) throw new Error(`wrong result [${y ? Array.from(y).join(', ') : 'missing'}] for x + x with x = [1, 2]`);
  } catch (err) {
    throw cudaUnavailable(name, parsed.deviceId, err instanceof Error ? err.message : String(err));
  } finally {
    await session.release();
  }
}

/** y = x + x over float32[2], as a serialised ONNX model. */
function probeGraph(): Uint8Array {
  const g = new GraphBuilder('device_probe');
  const x = g.input('x', 'float32', [2]);
  g.output(g.node('Add', [x, x]), 'y', 'float32', [2]);
  return encodeModel(g, 'recaption device probe');
}

export function tensorMeta(session: SessionInfo, name: string, kind: 'input' | 'output'): ort.InferenceSession.TensorValueMetadata | undefined {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const meta = list?.find((m) => m.name === name);
  return meta && meta.isTensor ? meta : undefined;
}

/** Element type the session expects for a float input (float16 for some `_fp16` exports), float32 by default. */
export function floatInputType(session: SessionInfo, name: string): 'float32' | 'float16' {
  return tensorMeta(session, name, 'input')?.type === 'float16' ? 'float16' : 'float32';
}

/** A float tensor in the element type `type`, converting from float32 when needed. */
export function floatTensor(type: 'float32' | 'float16', data: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', toFloat16Bits(data), dims) : new ort.Tensor('float32', data, dims);
}

/** `t` in element type `type`: fp16 exports may mix float16 and float32 across their files. */
export function asFloatType(t: ort.Tensor, type: 'float32' | 'float16', what: string): ort.Tensor {
  return t.type === type ? t : floatTensor(type, readFloats(t, what), t.dims);
}

/** Reads a float32 or float16 output as float32. */
export function readFloats(tensor: ort.Tensor, what: string): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const data = tensor.data as unknown;
    // onnxruntime carries float16 as Uint16Array bits unless the platform has a native Float16Array.
    return data instanceof Uint16Array ? fromFloat16Bits(data) : Float32Array.from(data as ArrayLike<number>);
  }
  throw new InputError('BadModel', `${what}: expected a float tensor, got ${tensor.type}`);
}

export function int64Tensor(values: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return new ort.Tensor('int64', data, dims);
}

export function boolTensor(values: readonly boolean[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('bool', Uint8Array.from(values, (v) => (v ? 1 : 0)), dims);
}

/**
 * Runs a session, turning ORT failures into errors that name the model file. `fetches`: the outputs to return (all
 * by default); naming only those used keeps the others from being copied back to JS memory.
 */
export async function runSession(session: Session, displayName: string, feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>> {
  try {
    return (await timedRun(() => (fetches ? session.run(feeds, [...fetches]) : session.run(feeds)))) as Record<string, ort.Tensor>;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${displayName}: inference failed: ${message}`);
  }
}

/** The typed-array operations selectRows needs, common to every numeric tensor data type. */
interface TypedRows {
  subarray(begin: number, end: number): TypedRows;
  set(source: TypedRows, offset: number): void;
}

/** Rows `rows` (indices on axis 0, in order) of a numeric tensor, copied into a new tensor of the same type. */
export function selectRows(tensor: ort.Tensor, rows: readonly number[]): ort.Tensor {
  const data = tensor.data as unknown as TypedRows;
  const rowSize = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  const out = new (data.constructor as new (n: number) => TypedRows)(rows.length * rowSize);
  rows.forEach((r, i) => out.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return new ort.Tensor(tensor.type, out as unknown as ort.Tensor.DataType, [rows.length, ...tensor.dims.slice(1)]);
}

/**
 * Next-token logits of a decoder step: the last position of each row of `logits` [rows, seq, vocab], as float32
 * [rows, vocab]. A prompt step feeds several positions, but only the last one predicts the next token.
 */
export function lastPositionLogits(logits: ort.Tensor, file: string): { logits: Float32Array; vocab: number } {
  const [rows, seq, vocab] = logits.dims as [number, number, number];
  const all = readFloats(logits, file);
  if (seq === 1) return { logits: all, vocab };
  const last = new Float32Array(rows * vocab);
  for (let r = 0; r < rows; r++) last.set(all.subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab), r * vocab);
  return { logits: last, vocab };
}
