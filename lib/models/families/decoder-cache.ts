/**
 * What the merged-decoder families share about their KV cache: its shape and how it is read from the decoder,
 * its tensor names, and a step's bookkeeping (empty past in, presents out, both checked) in CachedDecodeState.
 */
import type * as ort from 'onnxruntime-node';
import { InputError } from '../../errors';
import type { DecodeState, StepResult } from '../caption-model';
import { FLOAT_TYPES, staticDim, type LoadedSession, type TensorSpec } from '../model-folder';
import { floatInputType, floatTensor, int64Tensor, lastPositionLogits, runSession, selectRows, type SessionInfo } from '../session';

export interface CacheShape {
  layers: number;
  heads: number;
  headDim: number;
}

const PARTS = ['key', 'value'] as const;

/**
 * The name suffix of one cache tensor: `{i}.key` for one cache per layer (GPT-2, OPT), `{i}.{side}.key` for
 * Florence-2's two (`side` is 'decoder' or 'encoder'). Inputs are `past_key_values.` + it, outputs `present.` + it.
 */
function cacheSuffix(layer: number | string, side: string, part: string): string {
  return side ? `${layer}.${side}.${part}` : `${layer}.${part}`;
}

/**
 * `past_key_values.{i}[.side].key/value` inputs and the matching `present.*` outputs, layer by layer. `sides` is
 * `['']` for one cache per layer (GPT-2, OPT) and e.g. `['decoder', 'encoder']` for Florence-2's two caches.
 */
export function cacheSpecs(layers: number, sides: readonly string[] = ['']): { past: TensorSpec[]; present: TensorSpec[] } {
  const past: TensorSpec[] = [];
  const present: TensorSpec[] = [];
  for (let i = 0; i < layers; i++) {
    for (const side of sides) {
      for (const part of PARTS) {
        past.push({ name: `past_key_values.${cacheSuffix(i, side, part)}`, types: FLOAT_TYPES, rank: 4 });
        present.push({ name: `present.${cacheSuffix(i, side, part)}`, types: FLOAT_TYPES, rank: 4 });
      }
    }
  }
  return { past, present };
}

/** How many layers the decoder caches: its `past_key_values.{i}[.side].key` inputs. */
export function cachedLayers(session: SessionInfo, side = ''): number {
  const key = new RegExp(`^past_key_values\\.\\d+\\.${side ? `${side}\\.` : ''}key$`);
  return session.inputNames.filter((n) => key.test(n)).length;
}

/**
 * The decoder's cached layer count for its signature. Refused when it has no cache inputs (`expected` says what
 * kind of decoder was expected) or when config.json's layer count (`config.key` names the field) disagrees.
 */
export function checkedLayers(session: SessionInfo, file: string, side: string, expected: string, config: { layers: number | undefined; key: string }): number {
  const layers = cachedLayers(session, side);
  if (layers === 0) {
    throw new InputError('BadModel', `${file}: no past_key_values.${cacheSuffix('{i}', side, 'key')} inputs; expected ${expected} (inputs: ${session.inputNames.join(', ')})`);
  }
  if (config.layers !== undefined && config.layers !== layers) {
    throw new InputError('BadModel', `${file}: has ${layers} cached layers but ${config.key} says ${config.layers}`);
  }
  return layers;
}

/**
 * The cache's shape: heads and head size from past_key_values.0[.side].key when the export makes them static,
 * else from config.json's head count and width (`config.source` names those fields in the error). `decoder.info`:
 * the decoder's interface, from its session or from its file (decoder-source.ts).
 */
export function readCacheShape(decoder: { file: string; info: SessionInfo }, side: string, config: { heads: number | undefined; hidden: number | undefined; source: string }): CacheShape {
  const key = `past_key_values.${cacheSuffix(0, side, 'key')}`;
  const heads = staticDim(decoder.info, key, 'input', 1) ?? config.heads;
  const headDim = staticDim(decoder.info, key, 'input', 3) ?? (config.hidden && heads ? config.hidden / heads : undefined);
  if (!heads || !headDim || !Number.isInteger(headDim)) {
    throw new InputError('BadModel', `${decoder.file}: cannot tell the number of heads / head size (not static in the model nor in ${config.source})`);
  }
  return { layers: cachedLayers(decoder.info, side), heads, headDim };
}

/** The first step's past: key and value per layer, each empty [rows, heads, 0, head size] (one shared tensor). */
export function emptyPast(type: 'float32' | 'float16', rows: number, cache: CacheShape): ort.Tensor[] {
  const empty = floatTensor(type, new Float32Array(0), [rows, cache.heads, 0, cache.headDim]);
  return Array.from({ length: 2 * cache.layers }, () => empty);
}

/** Feeds `past` (key, value per layer, in that order) as the decoder's past_key_values.{i}[.side].* inputs. */
export function feedPast(feeds: Record<string, ort.Tensor>, past: readonly ort.Tensor[], side = ''): void {
  past.forEach((t, n) => {
    feeds[`past_key_values.${cacheSuffix(Math.floor(n / 2), side, PARTS[n % 2]!)}`] = t;
  });
}

/**
 * Replaces `past` with the step's present.{i}[.side].* outputs, each checked to hold `rows` rows and `total`
 * (past + new) positions.
 */
export function takePresent(out: Record<string, ort.Tensor>, file: string, past: ort.Tensor[], side: string, rows: number, total: number): void {
  for (let n = 0; n < past.length; n++) {
    const name = `present.${cacheSuffix(Math.floor(n / 2), side, PARTS[n % 2]!)}`;
    const t = out[name];
    if (!t || t.dims[0] !== rows || t.dims[2] !== total) {
      throw new InputError('BadModel', `${file}: ${name} has shape [${t?.dims.join(', ') ?? 'missing'}], expected [${rows}, heads, ${total} (past + new), head size]`);
    }
    past[n] = t;
  }
}

/** The common length of a step's rows; every row feeds the same, non-zero number of tokens. */
export function stepLength(tokens: readonly (readonly number[])[], rows: number): number {
  const seq = tokens[0]?.length ?? 0;
  if (tokens.length !== rows || seq === 0 || tokens.some((t) => t.length !== seq)) {
    throw new Error(`decoder step: expected ${rows} rows of equal, non-zero length`);
  }
  return seq;
}

/** A step's logits, checked to be [rows, seq, vocab]: one row per batch row, one position per fed token. */
export function stepLogits(out: Record<string, ort.Tensor>, file: string, rows: number, seq: number): ort.Tensor {
  const logits = out['logits'];
  if (!logits || logits.dims.length !== 3 || logits.dims[0] !== rows || logits.dims[1] !== seq) {
    throw new InputError('BadModel', `${file}: logits have shape [${logits?.dims.join(', ') ?? 'missing'}], expected [${rows}, ${seq}, vocab]`);
  }
  return logits;
}

/** An all-ones int64 mask [rows, length]: rows are never padded (one prompt for all, finished rows leave). */
export function onesMask(rows: number, length: number): ort.Tensor {
  return int64Tensor(new Array<number>(rows * length).fill(1), [rows, length]);
}

/** position_ids [rows, len] of `len` new tokens after `pastLen` cached ones: what unpadded rows' masks imply. */
export function positionIds(rows: number, len: number, pastLen: number): ort.Tensor {
  return int64Tensor(Array.from({ length: rows * len }, (_, k) => pastLen + (k % len)), [rows, len]);
}

/**
 * A decoding state over a merged decoder's (self-attention) cache, key and value per layer: a step feeds the
 * past, runs the decoder, checks the logits and keeps the presents as the next past. The family builds the
 * other feeds (ids or embeddings, masks) and keeps whatever else its rows carry (encoder states, a second cache).
 */
export abstract class CachedDecodeState implements DecodeState {
  /** past_key_values.{i}[.side].key, .value for each layer, in input order */
  protected past: ort.Tensor[];
  /** positions already in the cache */
  protected pastLen = 0;

  constructor(
    protected readonly decoder: LoadedSession,
    rows: number,
    cache: CacheShape,
    private readonly side = '',
  ) {
    this.past = emptyPast(floatInputType(decoder.session, `past_key_values.${cacheSuffix(0, side, 'key')}`), rows, cache);
  }

  abstract get rows(): number;

  abstract step(tokens: readonly (readonly number[])[]): Promise<StepResult>;

  /** Runs the decoder on `feeds` plus the past, `len` new positions per row; returns the next-token logits. */
  protected async runDecoder(feeds: Record<string, ort.Tensor>, len: number): Promise<StepResult> {
    const rows = this.rows;
    const { session, file } = this.decoder;
    feedPast(feeds, this.past, this.side);
    const out = await runSession(session, file, feeds);
    const logits = stepLogits(out, file, rows, len);
    const total = this.pastLen + len;
    takePresent(out, file, this.past, this.side, rows, total);
    this.takeOtherOutputs(out, rows);
    this.pastLen = total;
    return lastPositionLogits(logits, file);
  }

  /** Reads what else the family keeps from a step's outputs, before the past length advances. */
  protected takeOtherOutputs(_out: Record<string, ort.Tensor>, _rows: number): void {}

  keepRows(rows: readonly number[]): void {
    this.past = this.past.map((t) => selectRows(t, rows));
  }
}
