/** Worker log output: the SDK's console logger at a chosen level, minus expected noise. */
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

// A GPU-only worker has no workflows by design; the SDK warns about that on every start.
const EXPECTED = [/No workflows registered, not polling for workflow tasks/];

let installed = false;

/** Install the process-wide Temporal runtime logger once (later calls are no-ops). */
export function installWorkerLogger(level: LogLevel = 'INFO'): void {
  if (installed) return;
  installed = true;
  const base = new DefaultLogger(level);
  const logger = new DefaultLogger(level, (entry: LogEntry) => {
    if (EXPECTED.some((re) => re.test(entry.message))) return;
    base.log(entry.level, entry.message, entry.meta);
  });
  Runtime.install({ logger });
}
