/**
 * onnxruntime-node sessions built from RuntimeOptions, plus the tensor glue every model family needs (float16
 * adaptation for `_fp16` exports, reading outputs back as float32).
 */
import * as ort from 'onnxruntime-node';
import { InputError } from '../errors';
import { fromFloat16Bits, toFloat16Bits } from './float16';
import type { Device, RuntimeOptions } from './types';

export type Session = ort.InferenceSession;

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

/**
 * Creates a session for one ONNX file. A CUDA EP that cannot be created (the provider libraries are not shipped
 * when onnxruntime-node is installed with ONNXRUNTIME_NODE_INSTALL=skip) is reported as `CudaUnavailable`; a file
 * ORT cannot parse is a `BadModel`. Both are InputErrors: retrying on the same worker cannot fix them.
 */
export async function createSession(file: string | Uint8Array, displayName: string, opts: RuntimeOptions = {}): Promise<Session> {
  const options = sessionOptions(opts);
  try {
    // A path, or the bytes of a model built in memory (e.g. lib/clusters' nearest-centroid graph).
    return await (typeof file === 'string' ? ort.InferenceSession.create(file, options) : ort.InferenceSession.create(file, options));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const device = parseDevice(opts.device);
    if (device.kind === 'cuda' && CUDA_FAILURE.test(message)) {
      throw new InputError(
        'CudaUnavailable',
        `${displayName}: cannot create the CUDA execution provider on cuda:${device.deviceId} (${message}). ` +
          'onnxruntime-node needs its CUDA provider libraries (libonnxruntime_providers_cuda.so, ' +
          'libonnxruntime_providers_shared.so) plus CUDA 12 and cuDNN 9 on the library path; use device "cpu" otherwise.',
      );
    }
    throw new InputError('BadModel', `${displayName}: onnxruntime cannot load the model: ${message}`);
  }
}

export function tensorMeta(session: Session, name: string, kind: 'input' | 'output'): ort.InferenceSession.TensorValueMetadata | undefined {
  const list = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const meta = list?.find((m) => m.name === name);
  return meta && meta.isTensor ? meta : undefined;
}

/** Element type the session expects for a float input (float16 for some `_fp16` exports), float32 by default. */
export function floatInputType(session: Session, name: string): 'float32' | 'float16' {
  return tensorMeta(session, name, 'input')?.type === 'float16' ? 'float16' : 'float32';
}

/** A float tensor in the element type `type`, converting from float32 when needed. */
export function floatTensor(type: 'float32' | 'float16', data: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', toFloat16Bits(data), dims) : new ort.Tensor('float32', data, dims);
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

/** Runs a session, turning ORT failures into errors that name the model file. */
export async function runSession(session: Session, displayName: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
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
