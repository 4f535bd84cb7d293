/**
 * Reads and validates a model folder in the public export layout (Optimum / transformers.js): JSON configs at
 * the top, ONNX graphs in `onnx/` with a dtype suffix. Everything wrong with a folder is reported at load time as
 * InputError('BadModel') naming the file, never later as a cryptic inference failure.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { InputError } from '../errors';
import { readModelJson } from './json-folder';
import { createSession, type Session, type SessionInfo } from './session';
import type { RuntimeOptions } from './types';

export type ModelDtype = NonNullable<RuntimeOptions['dtype']>;

const DTYPE_SUFFIX: Record<ModelDtype, string> = { fp32: '', fp16: '_fp16', quantized: '_quantized' };

/** `onnx/<name><suffix>.onnx`, relative to the model folder. */
export function onnxFileName(name: string, dtype: ModelDtype = 'fp32'): string {
  const suffix = DTYPE_SUFFIX[dtype];
  if (suffix === undefined) throw new InputError('InvalidConfig', `unknown model dtype ${JSON.stringify(dtype)} (fp32, fp16, quantized)`);
  return `onnx/${name}${suffix}.onnx`;
}

export class ModelFolder {
  private constructor(
    readonly dir: string,
    readonly dtype: ModelDtype,
  ) {}

  static async open(dir: string, dtype: ModelDtype = 'fp32'): Promise<ModelFolder> {
    const abs = path.resolve(dir);
    const st = await fs.stat(abs).catch(() => undefined);
    if (!st?.isDirectory()) throw new InputError('BadModel', `model folder ${abs} does not exist or is not a directory`);
    return new ModelFolder(abs, dtype);
  }

  /** `<folder>/<rel>`, for error messages that name the file. */
  display(rel: string): string {
    return path.join(this.dir, rel);
  }

  async exists(rel: string): Promise<boolean> {
    return fs.stat(path.join(this.dir, rel)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** Parses a JSON file and validates it against `schema`; absent optional files give undefined. */
  async readJson<T>(rel: string, schema: z.ZodType<T>, opts: { optional: true }): Promise<T | undefined>;
  async readJson<T>(rel: string, schema: z.ZodType<T>, opts?: { optional?: false }): Promise<T>;
  async readJson<T>(rel: string, schema: z.ZodType<T>, opts: { optional?: boolean } = {}): Promise<T | undefined> {
    return readModelJson(path.join(this.dir, rel), schema, opts);
  }

  /** The absolute path of `onnx/<name>[suffix].onnx`, refused (BadModel) when it is missing. */
  async onnxFile(name: string): Promise<string> {
    const rel = onnxFileName(name, this.dtype);
    if (!(await this.exists(rel))) throw new InputError('BadModel', `${path.join(this.dir, rel)}: missing (expected ${rel} for dtype ${this.dtype})`);
    return path.join(this.dir, rel);
  }

  /**
   * Creates a session for `onnx/<name>[suffix].onnx` and validates its signature; a function signature is built
   * from the session (e.g. to count the past_key_values inputs of a decoder). `verify` runs after the signature
   * check for what only the session can tell (e.g. the logits width against the tokenizer); whatever throws, the
   * session is released.
   */
  async session(
    name: string,
    signature: SessionSignature | ((session: SessionInfo, file: string) => SessionSignature),
    opts: RuntimeOptions,
    verify?: (session: SessionInfo, file: string) => void,
  ): Promise<LoadedSession> {
    const file = await this.onnxFile(name);
    const session = await createSession(file, file, opts);
    try {
      validateSession(session, file, typeof signature === 'function' ? signature(session, file) : signature);
      verify?.(session, file);
    } catch (err) {
      await session.release();
      throw err;
    }
    return { session, file };
  }
}

export interface LoadedSession {
  session: Session;
  /** absolute path of the ONNX file, for messages and manifests */
  file: string;
}

type ElemType = ort.Tensor.Type;
export const FLOAT_TYPES: readonly ElemType[] = ['float32', 'float16'];

export interface TensorSpec {
  name: string;
  /** accepted element types */
  types: readonly ElemType[];
  rank: number;
  /** expected static sizes by axis, checked only where the model declares a static size */
  dims?: Record<number, number>;
  /** inputs the runtime feeds only when present (e.g. attention_mask) */
  optional?: boolean;
}

export interface SessionSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/**
 * Checks names, element types and ranks against the session (its metadata where ORT provides it). Any input the
 * runtime would not feed is an error too: otherwise the first `run` would fail on every sample.
 */
export function validateSession(session: SessionInfo, file: string, signature: SessionSignature): void {
  const problems: string[] = [];
  const check = (kind: 'input' | 'output', names: readonly string[], metas: readonly ort.InferenceSession.ValueMetadata[] | undefined, specs: TensorSpec[]): void => {
    for (const spec of specs) {
      if (!names.includes(spec.name)) {
        if (!spec.optional) problems.push(`missing ${kind} '${spec.name}' (model has ${kind}s: ${names.join(', ') || 'none'})`);
        continue;
      }
      const meta = metas?.find((m) => m.name === spec.name);
      if (!meta) continue;
      if (!meta.isTensor) {
        problems.push(`${kind} '${spec.name}' is not a tensor`);
        continue;
      }
      if (!spec.types.includes(meta.type)) problems.push(`${kind} '${spec.name}' has type ${meta.type}, expected ${spec.types.join(' or ')}`);
      if (meta.shape.length > 0 && meta.shape.length !== spec.rank) {
        problems.push(`${kind} '${spec.name}' has rank ${meta.shape.length} [${meta.shape.join(', ')}], expected rank ${spec.rank}`);
        continue;
      }
      for (const [axis, size] of Object.entries(spec.dims ?? {})) {
        const actual = meta.shape[Number(axis)];
        if (typeof actual === 'number' && actual !== size) problems.push(`${kind} '${spec.name}' has size ${actual} on axis ${axis}, expected ${size}`);
      }
    }
  };
  check('input', session.inputNames, session.inputMetadata, signature.inputs);
  check('output', session.outputNames, session.outputMetadata, signature.outputs);
  const known = new Set(signature.inputs.map((s) => s.name));
  const unknown = session.inputNames.filter((n) => !known.has(n));
  if (unknown.length > 0) problems.push(`unexpected input(s) the runtime cannot feed: ${unknown.join(', ')}`);
  if (problems.length > 0) throw new InputError('BadModel', `${file}: ${problems.join('; ')}`);
}

/** Static size of one axis of an input/output, when the model declares it. */
export function staticDim(session: SessionInfo, name: string, kind: 'input' | 'output', axis: number): number | undefined {
  const metas = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const meta = metas?.find((m) => m.name === name);
  if (!meta || !meta.isTensor) return undefined;
  const d = meta.shape[axis];
  return typeof d === 'number' ? d : undefined;
}
