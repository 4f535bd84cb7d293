/** samples/s and the ETA `recaption status` states: only this execution's work in the current phase counts. */
import { formatDuration, phaseRate } from '../../cli/rate';
import type { LiveProgress } from '../../cli/runs';
import { emptyProgress } from '../../lib/run/stages';

function progress(over: Partial<LiveProgress>): LiveProgress {
  const c = (done = 0, skipped = 0, failed = 0, samples = 0) => ({ done, skipped, failed, samples });
  return {
    phase: 'annotate',
    shards: 10,
    pagesDone: 0,
    pages: 1,
    progress: emptyProgress(),
    activePages: [],
    live: { annotate: 0, select: 0, write: 0 },
    stages: { annotate: c(), select: c(), write: c() },
    status: 'RUNNING',
    phaseStartedAt: 0,
    ...over,
  };
}

describe('phaseRate', () => {
  it('counts processed shards and samples, not the ones found committed, and extrapolates the rest', () => {
    const r = phaseRate(progress({ stages: { annotate: { done: 6, skipped: 2, failed: 1, samples: 4000 }, select: { done: 0, skipped: 0, failed: 0, samples: 0 }, write: { done: 0, skipped: 0, failed: 0, samples: 0 } } }), 100_000);
    expect(r).toMatchObject({ phase: 'annotate', elapsedSeconds: 100, processedShards: 4, processedSamples: 4000, samplesPerSecond: 40, remainingShards: 3 });
    expect(r!.etaSeconds).toBeCloseTo(75);
  });

  it('in the select phase, a shard is done when written; shards failed before never reach it', () => {
    const stages = { annotate: { done: 8, skipped: 0, failed: 1, samples: 0 }, select: { done: 5, skipped: 1, failed: 0, samples: 500 }, write: { done: 4, skipped: 1, failed: 1, samples: 400 } };
    const r = phaseRate(progress({ phase: 'select', stages, failedBefore: 1 }), 30_000);
    // 10 shards − 4 written − 1 failed in write − 1 failed annotating here − 1 kept from before = 3 left
    expect(r).toMatchObject({ processedShards: 3, processedSamples: 500, remainingShards: 3 });
    expect(r!.etaSeconds).toBeCloseTo(30);
  });

  it('has no rate outside a shard phase, and no ETA before a shard is processed', () => {
    expect(phaseRate(progress({ phase: 'thresholds' }), 1000)).toBeNull();
    expect(phaseRate(progress({}), 1000)!.etaSeconds).toBeNull();
  });

  it('formats durations', () => {
    expect([formatDuration(8.2), formatDuration(75), formatDuration(3725), formatDuration(3 * 86400 + 7200)]).toEqual(['8s', '1m15s', '1h02m', '3d02h']);
  });
});
