/**
 * What a preprocessing thread runs (loaded through prep-worker.js, which registers tsx first). Each task returns
 * its result, or its error as plain data (an Error's class does not survive the thread boundary; prep-pool.ts
 * rebuilds InputErrors from it so that bad input still fails fast). Buffers are handed over, not copied. Nothing
 * here loads ONNX Runtime: the thread only reads tars, decodes, preprocesses and tokenises.
 */
import type { MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { TextRecipe, TokenBatch } from '../models/types';
import { prepareBatch, readRawBatches, tokenizeTexts, transferables, type PrepareTask, type PreparedData, type ShardRead } from './batches';
import { encodeError, type Outcome, type ReaderMessage, type ReaderControl } from './prep-protocol';

/** A result with its buffers marked for transfer (piscina's Transferable). */
function handOver<T>(value: T, buffers: ArrayBufferLike[]): Outcome<T> {
  return move({
    get [transferableSymbol]() {
      return buffers;
    },
    get [valueSymbol]() {
      return { ok: value };
    },
  }) as unknown as Outcome<T>;
}

export async function prepare(task: PrepareTask): Promise<Outcome<PreparedData>> {
  try {
    const data = await prepareBatch(task);
    return handOver(data, transferables(data));
  } catch (err) {
    return { error: encodeError(err) };
  }
}

export async function tokenize(task: { recipe: TextRecipe; texts: string[] }): Promise<Outcome<TokenBatch>> {
  try {
    const tokens = await tokenizeTexts(task.recipe, task.texts);
    return handOver(tokens, [tokens.ids.buffer, tokens.mask.buffer]);
  } catch (err) {
    return { error: encodeError(err) };
  }
}

/**
 * Streams a shard's raw batches to `port` while the stage grants credits (one per batch), so at most that many are
 * read ahead; ends on `stop` or when the port closes.
 */
export async function read(task: ShardRead & { port: MessagePort }): Promise<void> {
  const { port, ...shard } = task;
  let credits = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  const control = (m: ReaderControl | 'closed') => {
    if (m === 'closed' || 'stop' in m) stopped = true;
    else credits += m.credit;
    wake?.();
    wake = null;
  };
  port.on('message', control);
  port.on('close', () => control('closed'));
  const send = (m: ReaderMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  try {
    for await (const raw of readRawBatches(shard)) {
      while (credits === 0 && !stopped) await new Promise<void>((r) => (wake = r));
      if (stopped) return;
      credits--;
      send({ batch: raw }, [raw.bytes]);
    }
    send({ done: true });
  } catch (err) {
    if (!stopped) send({ error: encodeError(err) });
  } finally {
    port.close();
  }
}

/** The native packages this thread has loaded (test/workers: a prep thread never loads ONNX Runtime). */
export function nativePackages(): string[] {
  const hits = new Set<string>();
  for (const k of Object.keys(require.cache)) {
    const m = /node_modules[\\/](onnxruntime-node|sharp)[\\/]/.exec(k);
    if (m) hits.add(m[1]!);
  }
  return [...hits].sort();
}
