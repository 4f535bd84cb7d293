/**
 * Runs a family's generation graph (loop-graph.ts): one session.run per batch returns the token ids, the KV
 * cache never leaves ONNX Runtime and only the ids, lengths and a validity flag come back (explicit fetch list).
 * Randomness comes in as per-row uniforms drawn beforehand from each row's SeededRng, one per step, exactly as
 * the JS loop draws them (sampling.ts), so a row's caption depends only on (image, seed, options).
 *
 * Which route a captioner takes is decided at load (`generation` option, else RECAPTION_GENERATION, else auto):
 * `auto` builds the graph and falls back to the JS loop with a stated reason when it cannot be built or loaded;
 * `graph` refuses to load without it; `js` forces the JS loop (A/B comparisons load a second model with it).
 * A model holds the decoder's weights once: the graph route never opens the per-step decoder session the JS loop
 * steps with (families/decoder-source.ts, caption-family.ts StepSessions).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { InputError } from '../../errors';
import { decodeModel } from '../clip-joint';
import { SeededRng } from '../rng';
import { embedIds } from '../families/caption-family';
import type { DecoderSource } from '../families/decoder-source';
import type { LoadedSession } from '../model-folder';
import { asFloatType, createSession, runSession, type Session } from '../session';
import type { CaptionOptions, RuntimeOptions } from '../types';
import { referToFile } from './file-weights';
import { buildGenerationGraph, GRAPH_INPUTS, GRAPH_OUTPUTS, GraphUnsupported, type FloatValues, type GenerationGraphSpec } from './loop-graph';

export type GenerationMode = 'auto' | 'graph' | 'js';
const MODES: readonly GenerationMode[] = ['auto', 'graph', 'js'];
export const GENERATION_ENV = 'RECAPTION_GENERATION';

export interface GenerationOptions {
  /** `auto` (default): the ONNX Runtime Loop graph where it can be built, else the JS loop; `graph`: required; `js`: forced. */
  generation?: GenerationMode;
}

/** How a captioner generates, and why when it is not the graph. */
export type GenerationRoute = { kind: 'graph' } | { kind: 'js'; reason: string };

export function describeRoute(route: GenerationRoute): string {
  return route.kind === 'graph' ? 'generation in ONNX Runtime (Loop graph)' : `generation in the JS loop (${route.reason})`;
}

/** The mode a load asks for, and where that came from (for the route's reason). */
export function generationMode(opts: GenerationOptions): { mode: GenerationMode; source: string } {
  const env = process.env[GENERATION_ENV];
  const [value, source] = opts.generation !== undefined ? [opts.generation, 'generation option'] : env ? [env, GENERATION_ENV] : ['auto', 'default'];
  if (!(MODES as readonly string[]).includes(value)) throw new InputError('InvalidConfig', `${source}: expected one of ${MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return { mode: value as GenerationMode, source };
}

/** An ONNX file decoded for building, and its path. */
export interface DecodedModel {
  model: onnx.ModelProto;
  file: string;
}

/**
 * Decodes `file` for building, its large initializers turned into references to their bytes in the file itself
 * (file-weights.ts): the built graph carries no copy of the weights, and the file's buffer is garbage once this
 * returns. External data, the file's own or these references, resolves from the file's folder (`onnx/`, where
 * every part of a model folder lives: the graph's session resolves against the decoder's).
 */
export async function readModel(file: string): Promise<DecodedModel> {
  const bytes = await fs.readFile(file);
  const model = decodeModel(bytes, file);
  referToFile(model, bytes, file, path.dirname(file));
  return { model, file };
}

export interface PreparedGeneration {
  route: GenerationRoute;
  generator?: GraphGenerator;
}

/**
 * The route for a captioner: builds and loads its generation graph from `spec()` unless the JS loop is forced.
 * A graph that cannot be built (GraphUnsupported) or loaded by ONNX Runtime falls back to the JS loop in `auto`.
 * `spec` gets the decoder's decoded model, taken from `decoder` (which keeps no reference): the spec and the
 * built bytes are dropped as soon as ONNX Runtime has them, so the only copy of the weights left is the session's.
 */
export async function prepareGeneration(decoder: DecoderSource, opts: RuntimeOptions, spec: (decoder: DecodedModel) => Promise<GenerationGraphSpec>): Promise<PreparedGeneration> {
  const { mode, source } = decoder.mode;
  const display = decoder.file;
  if (mode === 'js') return { route: { kind: 'js', reason: `forced by ${source}` } };
  try {
    // No local keeps the spec (the decoded decoder) nor the built bytes: both are garbage once ONNX Runtime has
    // loaded the graph (its loadModel copies what it keeps; the weights it reads from the files they are in).
    const session = await createSession(buildGenerationGraph(sameFolder(await spec(decoder.takeModel()))), `${display} generation graph`, opts, { externalDataDir: path.dirname(display) });
    return { route: { kind: 'graph' }, generator: new GraphGenerator(session, `${display} generation graph`) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const buildable = err instanceof GraphUnsupported || (err instanceof InputError && err.type === 'BadModel');
    if (mode === 'graph' || !buildable) {
      if (err instanceof InputError && err.type === 'CudaUnavailable') throw err;
      throw new InputError('BadModel', `${display}: cannot generate in ONNX Runtime: ${message}`);
    }
    return { route: { kind: 'js', reason: message } };
  }
}

/** The spec, once its parts are known to share the decoder's folder (their external data resolves from there). */
function sameFolder(spec: GenerationGraphSpec): GenerationGraphSpec {
  const dir = path.dirname(spec.decoder.file);
  if (spec.embed && path.dirname(spec.embed.file) !== dir) throw new GraphUnsupported(`${spec.embed.file}: not in the folder of ${spec.decoder.file}`);
  return spec;
}

/**
 * The prompt's embeddings [P, D] from embed_tokens, once at load, in the decoder's inputs_embeds type: the
 * generation graph's first-step feed for the embedding families (the JS loop embeds the same ids each batch).
 */
export async function promptEmbeddings(embed: LoadedSession, promptIds: readonly number[], type: 'float32' | 'float16'): Promise<FloatValues> {
  const out = await embedIds(embed, [promptIds]);
  const t = asFloatType(out, type, embed.file);
  return { type, data: t.data as Float32Array | Uint16Array, dims: [promptIds.length, out.dims[2]!] };
}

const scalarI64 = (v: number): ort.Tensor => new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), []);
const scalarF64 = (v: number): ort.Tensor => new ort.Tensor('float64', Float64Array.of(v), []);

/** Row r's uniforms for steps 0..steps-1: the draws the JS loop takes from SeededRng(seed), one per step. */
export function rowUniforms(seeds: readonly string[], steps: number): Float64Array {
  const u = new Float64Array(seeds.length * steps);
  seeds.forEach((seed, r) => {
    const rng = new SeededRng(seed);
    for (let t = 0; t < steps; t++) u[r * steps + t] = rng.nextDouble();
  });
  return u;
}

export class GraphGenerator {
  constructor(
    private readonly session: Session,
    /** the graph's name in messages: `<decoder file> generation graph` */
    readonly display: string,
  ) {}

  /** Token ids per row (EOS excluded), for a batch whose image side gave `context` (one row per seed). */
  async generate(context: ort.Tensor, seeds: readonly string[], o: CaptionOptions): Promise<number[][]> {
    const rows = seeds.length;
    if (context.dims[0] !== rows) throw new Error(`${this.display}: context has ${context.dims[0]} rows for ${rows} seeds`);
    const feeds: Record<string, ort.Tensor> = {
      [GRAPH_INPUTS.context]: context,
      [GRAPH_INPUTS.uniforms]: new ort.Tensor('float64', rowUniforms(seeds, o.maxLength), [rows, o.maxLength]),
      [GRAPH_INPUTS.maxLength]: scalarI64(o.maxLength),
      [GRAPH_INPUTS.minLength]: scalarI64(o.minLength),
      [GRAPH_INPUTS.temperature]: scalarF64(o.temperature),
      [GRAPH_INPUTS.topK]: scalarI64(o.topK),
      [GRAPH_INPUTS.penalty]: scalarF64(o.repetitionPenalty ?? 1),
    };
    const out = await runSession(this.session, this.display, feeds, GRAPH_OUTPUTS);
    const tokens = out['tokens']!;
    const lengths = out['lengths']!.data as BigInt64Array;
    const invalid = out['invalid']!.data as Uint8Array;
    if (invalid.some((v) => v !== 0)) throw new Error('every token has a -inf/NaN logit: nothing can be sampled');
    const steps = tokens.dims[0]!;
    if (tokens.dims[1] !== rows || lengths.length !== rows) throw new Error(`${this.display}: tokens [${tokens.dims.join(', ')}] for ${rows} rows`);
    const ids = tokens.data as BigInt64Array;
    return Array.from({ length: rows }, (_, r) => {
      const n = Number(lengths[r]);
      if (n > steps || n > o.maxLength) throw new Error(`${this.display}: row ${r} has ${n} tokens after ${steps} steps`);
      return Array.from({ length: n }, (_, t) => Number(ids[t * rows + r]));
    });
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
