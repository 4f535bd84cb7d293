/**
 * The process-wide Temporal runtime of a worker: the SDK's logger at a chosen level and format (minus expected
 * noise), and — with `prometheusBindAddress` — the SDK's own Prometheus metrics exporter (workers/metrics-server.ts
 * serves them together with ours).
 */
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import { jsonLogLine, type LogFormat } from './log-format';

// A GPU-only worker has no workflows by design; the SDK warns about that on every start.
const EXPECTED = [/No workflows registered, not polling for workflow tasks/];

let installed = false;

export interface WorkerRuntimeOptions {
  /** `text` (default): the SDK's readable lines; `json`: one JSON object per line. */
  format?: LogFormat;
  /** Where the SDK serves its Prometheus metrics, e.g. `127.0.0.1:9465`; none when omitted. */
  prometheusBindAddress?: string;
}

/** Install the process-wide Temporal runtime (logger, SDK metrics) once; later calls are no-ops. */
export function installWorkerLogger(level: LogLevel = 'INFO', opts: WorkerRuntimeOptions = {}): void {
  if (installed) return;
  installed = true;
  const base = new DefaultLogger(level);
  const logger = new DefaultLogger(level, (entry: LogEntry) => {
    if (EXPECTED.some((re) => re.test(entry.message))) return;
    if (opts.format === 'json') process.stderr.write(jsonLogLine(entry));
    else base.log(entry.level, entry.message, entry.meta);
  });
  Runtime.install({
    logger,
    ...(opts.prometheusBindAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: opts.prometheusBindAddress } } } } : {}),
  });
}
