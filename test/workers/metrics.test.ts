/**
 * The worker's own metrics from stage summaries (workers/metrics.ts), on a real prom-client registry read back
 * in Prometheus's text format: what counts as work done, how skipped samples are labelled (reasons may contain
 * ':'), and busy time. The scrape of running workers is in test/e2e/worker-metrics.test.ts.
 */
import { createWorkerMetrics } from '../../workers/metrics';
import { samplesOf, total } from '../e2e/prometheus';

const read = async (m: ReturnType<typeof createWorkerMetrics>) => samplesOf(await m.registry.metrics());

describe('worker metrics', () => {
  it('counts samples and durations of shards that worked; committed and earlier-failed shards only by outcome', async () => {
    const m = createWorkerMetrics();
    m.stageFinished('select', { shard: '00000000', skipped: false, samples: 10, failed: 1, counts: { kept: 6, 'dropped:below_thresholds': 3, 'dropped:basic_filter:few_words': 1, 'failed:decode_error': 1 } }, 2);
    m.stageFinished('select', { shard: '00000001', skipped: true, samples: 10, failed: 0 }, 0.01);
    m.stageFinished('select', { shard: '00000002', skipped: false, samples: 0, failed: 0, failedEarlier: true }, 0.01);
    m.stageFailed('select', 'CorruptShard');
    const s = await read(m);
    expect(total(s, 'recaption_stage_shards_total', { stage: 'select', outcome: 'done' })).toBe(1);
    expect(total(s, 'recaption_stage_shards_total', { stage: 'select', outcome: 'skipped' })).toBe(1);
    expect(total(s, 'recaption_stage_shards_total', { stage: 'select', outcome: 'failed_earlier' })).toBe(1);
    expect(total(s, 'recaption_stage_samples_total', { stage: 'select' })).toBe(10);
    expect(total(s, 'recaption_stage_duration_seconds_count', { stage: 'select' })).toBe(1);
    expect(total(s, 'recaption_stage_duration_seconds_sum', { stage: 'select' })).toBe(2);
    expect(total(s, 'recaption_stage_samples_skipped_total', { stage: 'select', kind: 'dropped', reason: 'below_thresholds' })).toBe(3);
    expect(total(s, 'recaption_stage_samples_skipped_total', { stage: 'select', kind: 'dropped', reason: 'basic_filter:few_words' })).toBe(1);
    expect(total(s, 'recaption_stage_samples_skipped_total', { stage: 'select', kind: 'failed', reason: 'decode_error' })).toBe(1);
    expect(s.filter((x) => x.name === 'recaption_stage_samples_skipped_total' && x.labels.reason === 'kept')).toEqual([]);
    expect(total(s, 'recaption_stage_failures_total', { stage: 'select', type: 'CorruptShard' })).toBe(1);
  });

  it("splits the annotate stage thread's busy time into ONNX Runtime and JS, per sample of the attempt", async () => {
    const m = createWorkerMetrics();
    // a resumed attempt: 40 of the shard's 100 samples were committed before, so 60 were prepared and run here
    m.stageFinished('annotate', { shard: '00000000', skipped: false, samples: 100, failed: 0, counts: { decoded: 60, resumedAt: 40, mainThreadMs: 900, onnxRunMs: 870, prepThreads: 3 } }, 2);
    m.stageFinished('annotate', { shard: '00000001', skipped: true, samples: 100, failed: 0, counts: { mainThreadMs: 5000, onnxRunMs: 1 } }, 0.01);
    const s = await read(m);
    expect(total(s, 'recaption_stage_main_thread_seconds_total', { stage: 'annotate', part: 'onnx' })).toBeCloseTo(0.87);
    expect(total(s, 'recaption_stage_main_thread_seconds_total', { stage: 'annotate', part: 'js' })).toBeCloseTo(0.03);
    expect(total(s, 'recaption_stage_main_thread_js_ms_per_sample_sum', { stage: 'annotate' })).toBeCloseTo(0.5);
    expect(total(s, 'recaption_stage_main_thread_js_ms_per_sample_bucket', { stage: 'annotate', le: '0.3' })).toBe(0);
    expect(total(s, 'recaption_stage_main_thread_js_ms_per_sample_bucket', { stage: 'annotate', le: '1' })).toBe(1);
    expect(total(s, 'recaption_prep_threads', {})).toBe(3);
  });

  it('adds busy time while an activity runs, per task queue, and counts running activities', async () => {
    const m = createWorkerMetrics();
    const endA = m.activityStarted('q');
    const endB = m.activityStarted('q');
    expect(total(await read(m), 'recaption_activities_running', { task_queue: 'q' })).toBe(2);
    await new Promise((r) => setTimeout(r, 120));
    endA();
    const during = total(await read(m), 'recaption_activity_busy_seconds_total', { task_queue: 'q' });
    expect(during).toBeGreaterThanOrEqual(0.1);
    endB();
    await new Promise((r) => setTimeout(r, 120));
    const after = await read(m);
    expect(total(after, 'recaption_activities_running', { task_queue: 'q' })).toBe(0);
    // Idle time after the last activity ended is not busy time.
    expect(total(after, 'recaption_activity_busy_seconds_total', { task_queue: 'q' })).toBeLessThan(during + 0.05);
  });

  it('declares GPU utilisation everywhere but samples it only on a CUDA worker that can read it', async () => {
    const text = await createWorkerMetrics().registry.metrics();
    expect(text).toContain('# TYPE recaption_gpu_utilization_ratio gauge');
    expect(samplesOf(text).filter((x) => x.name === 'recaption_gpu_utilization_ratio')).toEqual([]);
  });
});
