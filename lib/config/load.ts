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
  if (c.annotations.uri) c.annotations.uri = abs(c.annotations.uri);
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

const canonical = (v: unknown): unknown =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
    : v;

/**
 * The part of a config that changes outputs. Temporal tuning, the device, ORT session options, where annotations
 * are kept and the failure budget do not (beyond float rounding), so a resumed run may change them freely, e.g.
 * move to GPU workers or accept more failed shards.
 */
function outputDeterminants(c: RunConfig): object {
  const { temporal: _t, annotations: _a, models, run, ...others } = c;
  const { session: _s, device: _d, ...modelFiles } = models;
  const { maxFailedShards: _m, ...runFields } = run;
  return canonical({ ...others, run: runFields, models: modelFiles }) as object;
}

/** Stable hash of everything that changes outputs (key order independent). */
export function configHash(c: RunConfig): string {
  return createHash('sha256').update(JSON.stringify(outputDeterminants(c))).digest('hex').slice(0, 16);
}

/** The dotted paths of the output-changing fields that differ between two configs, e.g. `strategy.preset`. */
export function configChanges(before: RunConfig, after: RunConfig): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, at: string): void => {
    const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObj(a) && isObj(b)) {
      const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
      for (const k of [...keys].sort()) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(at);
  };
  walk(outputDeterminants(before), outputDeterminants(after), '');
  return out;
}
