/**
 * Task-queue names. A run config that names none and a worker started without `--gpu-queue/--cpu-queue` both take
 * these defaults, read here only, so a run and a worker started in the same environment always meet.
 */
export type QueueKind = 'gpu' | 'cpu';

const TASK_QUEUE_ENV: Record<QueueKind, string> = { gpu: 'RECAPTION_GPU_QUEUE', cpu: 'RECAPTION_CPU_QUEUE' };
const BUILT_IN: Record<QueueKind, string> = { gpu: 'recaption-gpu', cpu: 'recaption-cpu' };

/** `RECAPTION_GPU_QUEUE` / `RECAPTION_CPU_QUEUE` when set, else `recaption-gpu` / `recaption-cpu`. */
export function defaultTaskQueue(kind: QueueKind): string {
  return process.env[TASK_QUEUE_ENV[kind]] || BUILT_IN[kind];
}
