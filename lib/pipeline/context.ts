/** What a stage needs from whoever runs it (a Temporal activity, a test, the bench): progress and cancellation. */
export interface StageContext {
  /**
   * Called every few samples with the number of samples processed so far and, for stages that commit in chunks,
   * how many of them are committed (heartbeat details).
   */
  heartbeat(processed: number, committed?: number): void;
  /** Aborted when the run is cancelled or the worker shuts down; stages stop at the next batch. */
  signal?: AbortSignal;
  log?(message: string): void;
}

export const NO_CONTEXT: StageContext = { heartbeat: () => undefined };

export function throwIfAborted(ctx: StageContext): void {
  if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('stage cancelled');
}
