/**
 * The backlog KEDA's `temporal` scaler scales on (KEDA v2.20.2 pkg/scalers/temporal_scaler.go,
 * getUnversionedBacklogCount): DescribeTaskQueue with reportStats per queue type, summing
 * stats.approximateBacklogCount. Read here the same way, so a test sees what the ScaledObjects in infra/k8s see.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const { TaskQueueKind, TaskQueueType } = temporal.api.enums.v1;
const TYPES = { workflow: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, activity: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY };

export async function taskQueueBacklog(client: Client, taskQueue: string, queueTypes: Array<keyof typeof TYPES> = ['activity']): Promise<number> {
  let backlog = 0;
  for (const type of queueTypes) {
    const r = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: TYPES[type],
      reportStats: true,
    });
    backlog += Number(r.stats?.approximateBacklogCount ?? 0);
  }
  return backlog;
}

/** Poll `check` until it is true (every `everyMs`), or fail after `timeoutMs` naming what was awaited. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
