/** Activity timeouts, retries and cancellation per queue. Workflow-safe: plain data only. */
import type { Duration } from '@temporalio/common';
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import type { QueueKind } from '../lib/config/task-queues';

/**
 * GPU stages are long (a 10k-sample shard through the captioner) and back off further between attempts; every
 * stage heartbeats, so a dead worker is noticed within `heartbeatTimeout` whatever its stage's length.
 */
const LIMITS: Record<QueueKind, { startToCloseTimeout: Duration; initialInterval: Duration; maximumInterval: Duration }> = {
  gpu: { startToCloseTimeout: '6h', initialInterval: '5s', maximumInterval: '5m' },
  cpu: { startToCloseTimeout: '2h', initialInterval: '2s', maximumInterval: '2m' },
};

export function stageOptions(kind: QueueKind, taskQueue: string, heartbeatTimeout = '2m'): ActivityOptions {
  const { startToCloseTimeout, initialInterval, maximumInterval } = LIMITS[kind];
  return {
    taskQueue,
    startToCloseTimeout,
    heartbeatTimeout: heartbeatTimeout as Duration,
    retry: { initialInterval, backoffCoefficient: 2, maximumInterval, maximumAttempts: 8 },
    // Cancelled (recaption cancel), a stage learns of it with its next heartbeat and stops at its next batch; the
    // caller waits for that, so a cancelled run has closed only once its stages have. (Left unset, the SDK sends
    // TRY_CANCEL, the proto default, and the run closes while its stages still run.)
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
}
