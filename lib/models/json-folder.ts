/**
 * Reading a model folder's JSON files (configs, tokenizer.json), with every problem reported as InputError('BadModel')
 * naming the file. Apart from ModelFolder (which adds sessions, and so loads ONNX Runtime) so that preprocessing
 * threads (lib/pipeline/prep-pool.ts) can load a model's tokenizer without the model runtime.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors';

/** What reading a folder's JSON files needs: ModelFolder is one, jsonFolder(dir) another. */
export interface JsonFolder {
  /** `<folder>/<rel>`, for error messages that name the file. */
  display(rel: string): string;
  readJson<T>(rel: string, schema: z.ZodType<T>, opts: { optional: true }): Promise<T | undefined>;
  readJson<T>(rel: string, schema: z.ZodType<T>, opts?: { optional?: false }): Promise<T>;
}

/** Parses a JSON file and validates it against `schema`; an absent optional file gives undefined. */
export async function readModelJson<T>(file: string, schema: z.ZodType<T>, opts: { optional?: boolean } = {}): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    if (opts.optional) return undefined;
    throw new InputError('BadModel', `${file}: missing (required in a model folder)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError('BadModel', `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InputError('BadModel', `${file}: unexpected content: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The JSON files of the folder `dir`. */
export function jsonFolder(dir: string): JsonFolder {
  const abs = path.resolve(dir);
  return {
    display: (rel: string) => path.join(abs, rel),
    readJson: (<T>(rel: string, schema: z.ZodType<T>, opts: { optional?: boolean } = {}) => readModelJson(path.join(abs, rel), schema, opts)) as JsonFolder['readJson'],
  };
}
