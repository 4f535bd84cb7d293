/** Activity timeouts and retries per queue. Workflow-safe: plain data only. */
import type { Duration } from '@temporalio/common';
import type { ActivityOptions } from '@temporalio/workflow';
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
  };
}
