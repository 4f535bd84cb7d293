import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../errors';
import { configSchema, type RunConfig } from './schema';

/** `strategy.preset: must be one of ...` — one line per bad field, so a user fixes them all at once. */
function formatIssues(source: string, issues: z.core.$ZodIssue[]): string {
  const lines = issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  return `invalid config ${source}:\n${lines.join('\n')}`;
}

/** Validate a parsed config object; relative local paths resolve against `baseDir`. */
export function parseConfig(raw: unknown, source: string, baseDir = process.cwd()): RunConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new InputError('InvalidConfig', formatIssues(source, result.error.issues));
  const c = result.data;
  const abs = (p: string) => (p.startsWith('gs://') || path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  c.input.uri = abs(c.input.uri);
  c.output.uri = abs(c.output.uri);
  c.models.captioner.path = abs(c.models.captioner.path);
  c.models.clip.path = abs(c.models.clip.path);
  if (c.filters.imageCluster) {
    c.filters.imageCluster.centroids = abs(c.filters.imageCluster.centroids);
    c.filters.imageCluster.target = abs(c.filters.imageCluster.target);
  }
  return c;
}

export async function loadConfigFile(file: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError('InvalidConfig', `cannot read config ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new InputError('InvalidConfig', `config ${file} is not valid YAML: ${(e as Error).message}`);
  }
  return parseConfig(raw, file, path.dirname(path.resolve(file)));
}

/** Stable hash of everything that changes outputs (key order independent). */
export function configHash(c: RunConfig): string {
  const canonical = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
      : v;
  // Temporal tuning, the device and ORT session options do not change outputs (beyond float rounding), so a
  // resumed run may change them freely, e.g. move to GPU workers.
  const { temporal: _t, models, ...others } = c;
  const { session: _s, device: _d, ...modelFiles } = models;
  const rest = { ...others, models: modelFiles };
  return createHash('sha256').update(JSON.stringify(canonical(rest))).digest('hex').slice(0, 16);
}
