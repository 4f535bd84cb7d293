/** What a stage needs from whoever runs it (a Temporal activity, a test, the bench): progress and cancellation. */
export interface StageContext {
  /**
   * Called every few samples with the number of samples processed so far and, for stages that commit in chunks,
   * how many of them are committed (heartbeat details).
   */
  heartbeat(processed: number, committed?: number): void;
  /** Aborted when the run is cancelled or the worker's shutdown grace runs out; stages stop at the next batch. */
  signal?: AbortSignal;
  /**
   * Aborted when the worker starts to shut down (first SIGTERM, workers/start.ts): a stage that commits in chunks
   * commits what it has at its next batch and throws StageStopped (retryable), so another worker resumes there.
   */
  stopping?: AbortSignal;
  log?(message: string): void;
}

export const NO_CONTEXT: StageContext = { heartbeat: () => undefined };

export function throwIfAborted(ctx: StageContext): void {
  if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('stage cancelled');
}

/** A stage stopped at a checkpoint because its worker is shutting down: retried (elsewhere) from that checkpoint. */
export class StageStopped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StageStopped';
  }
}
