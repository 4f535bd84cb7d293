/**
 * `recaption worker --log-format`: `text` (the SDK's readable lines, the default) or `json` — one JSON object per
 * line on stderr, for log collectors: `time`, `level`, `message`, then the line's attributes at top level (on a
 * stage's lines: `run`, `stage`, `shard`, `attempt`, plus the SDK's `activityType`, `taskQueue`, `workflowId`...).
 */
import type { LogEntry, LogLevel } from '@temporalio/worker';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Errors keep their name, message, stack and (Temporal failures) type; bigints become strings. */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const { name, message, stack } = value;
    const type = (value as { type?: unknown }).type;
    return { name, message, ...(typeof type === 'string' ? { type } : {}), stack, ...(value.cause !== undefined ? { cause: value.cause } : {}) };
  }
  return value;
}

export function jsonLogLine(entry: Pick<LogEntry, 'level' | 'message' | 'meta' | 'timestampNanos'>): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  return JSON.stringify({ time, level: entry.level, message: entry.message, ...entry.meta }, replacer) + '\n';
}

/** A message of the worker process itself (start-up checks, where it listens), in the chosen format. */
export function processLogLine(format: LogFormat, message: string, level: LogLevel = 'INFO'): string {
  if (format === 'json') return jsonLogLine({ level, message, timestampNanos: BigInt(Date.now()) * 1_000_000n, meta: { sdkComponent: 'recaption' } });
  return `recaption: ${message}\n`;
}
