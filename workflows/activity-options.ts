/** Activity timeouts and retries per queue. Workflow-safe: plain data only. */
import type { Duration } from '@temporalio/common';
import type { ActivityOptions } from '@temporalio/workflow';

/** GPU stages: long (a 10k-sample shard), heartbeating so a dead worker is noticed within two minutes. */
export function gpuStageOptions(taskQueue: string, heartbeatTimeout = '2m'): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: '6h',
    heartbeatTimeout: heartbeatTimeout as Duration,
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 8 },
  };
}

/** CPU stages: shorter, same heartbeat rule. */
export function cpuStageOptions(taskQueue: string, heartbeatTimeout = '2m'): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: '2h',
    heartbeatTimeout: heartbeatTimeout as Duration,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 8 },
  };
}
