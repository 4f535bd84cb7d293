/** A run config that names no task queues and a worker started without --gpu-queue/--cpu-queue must meet. */
import { buildProgram } from '../../cli/main';
import { parseConfig } from '../../lib/config/load';

const minimal = {
  run: { name: 'q' },
  input: { uri: '/in' },
  output: { uri: '/out' },
  strategy: { preset: 'raw' },
  models: { captioner: { path: '/m/cap' }, clip: { path: '/m/clip' } },
};

function defaults(): { config: { gpu: string; cpu: string }; worker: { gpu: string; cpu: string } } {
  const c = parseConfig(minimal, 'test').temporal;
  const w = buildProgram().commands.find((cmd) => cmd.name() === 'worker')!.opts<{ gpuQueue: string; cpuQueue: string }>();
  return { config: { gpu: c.gpuTaskQueue, cpu: c.cpuTaskQueue }, worker: { gpu: w.gpuQueue, cpu: w.cpuQueue } };
}

describe('default task queues', () => {
  const saved = { gpu: process.env.RECAPTION_GPU_QUEUE, cpu: process.env.RECAPTION_CPU_QUEUE };
  afterEach(() => {
    for (const [k, v] of [['RECAPTION_GPU_QUEUE', saved.gpu], ['RECAPTION_CPU_QUEUE', saved.cpu]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('are recaption-gpu / recaption-cpu for both', () => {
    delete process.env.RECAPTION_GPU_QUEUE;
    delete process.env.RECAPTION_CPU_QUEUE;
    const d = defaults();
    expect(d.config).toEqual({ gpu: 'recaption-gpu', cpu: 'recaption-cpu' });
    expect(d.worker).toEqual(d.config);
  });

  it('follow RECAPTION_GPU_QUEUE / RECAPTION_CPU_QUEUE for both', () => {
    process.env.RECAPTION_GPU_QUEUE = 'h200-pool';
    process.env.RECAPTION_CPU_QUEUE = 'cpu-pool';
    const d = defaults();
    expect(d.config).toEqual({ gpu: 'h200-pool', cpu: 'cpu-pool' });
    expect(d.worker).toEqual(d.config);
  });
});
