/**
 * Offline validators for the fleet's manifests, from the schema files vendored in ./schemas (README.md there says
 * where each comes from): Kubernetes kinds (strict: unknown fields refused), KEDA's CRDs (made strict the same
 * way), the Compose specification; and the worker command line, parsed by the CLI's own parser.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import draft7 from 'ajv/dist/refs/json-schema-draft-07.json';
import type { Command } from 'commander';
import { buildProgram } from '../../cli/main';
import type { WorkerOptions } from '../../cli/commands/worker';

const SCHEMAS = path.join(__dirname, 'schemas');
const read = (file: string): unknown => JSON.parse(readFileSync(path.join(SCHEMAS, file), 'utf8'));

export const KUBERNETES_VERSION = 'v1.33.0';
export const KEDA = read('keda-v2.20.2.json') as {
  crds: Record<string, object>;
  temporalScaler: { triggerMetadata: string[]; fromEnv: string[]; authParams: string[] };
};

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };
export type Validator = (doc: Manifest) => string[];

const messages = (errors: ErrorObject[] | null | undefined): string[] =>
  (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? `: ${(e.params as { additionalProperty: string }).additionalProperty}` : ''}`);

/** A CRD's structural schema, strict: objects that list their properties refuse others (as `kubectl --validate=strict`). */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== 'object') return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v)]));
  if (out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  return out;
}

/** Validates any manifest whose apiVersion/kind has a vendored schema; any other kind is an error itself. */
export function kubernetesValidator(): Validator {
  // The vendored schemas carry OpenAPI's x-kubernetes-* keywords and formats such as int-or-string: not ajv's.
  const k8s = read(`kubernetes-${KUBERNETES_VERSION}-strict.json`) as { definitions: object; kinds: Record<string, { 'x-kubernetes-group-version-kind': Array<{ group: string; version: string; kind: string }> }> };
  const ajv2020 = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv2020.addSchema(k8s.definitions);
  const byKind = new Map<string, ValidateFunction>();
  for (const schema of Object.values(k8s.kinds)) {
    const gvk = schema['x-kubernetes-group-version-kind'][0]!;
    byKind.set(`${gvk.group ? `${gvk.group}/` : ''}${gvk.version}/${gvk.kind}`, ajv2020.compile(schema));
  }
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  for (const [key, schema] of Object.entries(KEDA.crds)) byKind.set(key, ajv.compile(strict(schema) as object));
  return (doc) => {
    const validate = byKind.get(`${doc.apiVersion}/${doc.kind}`);
    if (!validate) return [`no schema for ${doc.apiVersion} ${doc.kind} (vendored: ${[...byKind.keys()].join(', ')})`];
    return validate(doc) ? [] : messages(validate.errors);
  };
}

export function composeValidator(): (doc: unknown) => string[] {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  // The spec names draft-07 by its https URL; ajv knows the meta-schema by the http one.
  ajv.addMetaSchema(draft7, 'https://json-schema.org/draft-07/schema');
  const validate = ajv.compile(read('compose-spec.json') as object);
  return (doc) => (validate(doc) ? [] : messages(validate.errors));
}

/**
 * The options `recaption worker <args>` would run with, parsed by the CLI's own parser (cli/main.ts buildProgram):
 * an unknown or renamed flag, or a bad value, throws. `env` stands in for the container's environment, which
 * the defaults (task queues) are read from.
 */
export function parseWorkerCommand(args: string[], env: Record<string, string> = {}): WorkerOptions {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const program = buildProgram();
    let parsed: WorkerOptions | undefined;
    const quiet = (c: Command) => c.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    quiet(program);
    quiet(program.commands.find((c) => c.name() === 'worker')!).action((opts: WorkerOptions) => {
      parsed = opts;
    });
    if (args[0] !== 'worker') throw new Error(`not a worker command line: ${args.join(' ')}`);
    program.parse(args, { from: 'user' });
    return parsed!;
  } finally {
    for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}
