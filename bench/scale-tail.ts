/**
 * The real cost of the run's tail (thresholds and finalize), which the scale bench's simulated activities skip: the
 * real stages (lib/pipeline, no Temporal) over real runs of a few tiny real shards (tiny models), timed at three
 * sizes and fitted as fixed + per-shard cost, then extrapolated to the simulated run's shard count. Both stages
 * walk the shards one after another, so the per-shard cost is what grows with the run; local files only (on GCS
 * each shard's reads are round trips, paid one shard at a time).
 */
import * as path from 'node:path';
import { parseConfig } from '../lib/config/load';
import type { RunConfig } from '../lib/config/schema';
import { annotateShard } from '../lib/pipeline/annotate-stage';
import { finalizeRun } from '../lib/pipeline/finalize-stage';
import { planRun } from '../lib/pipeline/plan-stage';
import { closeSharedPrepPool } from '../lib/pipeline/prep-pool';
import { selectShard } from '../lib/pipeline/select-stage';
import { StageModels } from '../lib/pipeline/stage-models';
import { computeThresholds } from '../lib/pipeline/thresholds-stage';
import { writeShard } from '../lib/pipeline/write-stage';
import { generateSampleData } from '../lib/sampledata';
import { seconds } from './timing';

const TINY = path.join(__dirname, '..', '.cache', 'models');

export interface TailTiming {
  shards: number;
  thresholdsSeconds: number;
  finalizeSeconds: number;
}

export interface Fit {
  fixed: number;
  perShardMs: number;
  r2: number;
}

export interface RealTail {
  samplesPerShard: number;
  measured: TailTiming[];
  /** Least-squares line through the measured sizes: seconds = fixed + perShard × shards. */
  fit: { thresholds: Fit; finalize: Fit };
  /** The fit at the simulated run's size (null where the fit's per-shard cost is not positive: noise won). */
  extrapolated: { shards: number; thresholdsSeconds: number | null; finalizeSeconds: number | null };
}

/** Least squares, with R² (how much of the spread the line explains: low when the machine's noise dominates). */
function fitLine(points: Array<[number, number]>): Fit {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const slope = sxx ? points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx : 0;
  const fixed = my - slope * mx;
  const syy = points.reduce((a, [, y]) => a + (y - my) ** 2, 0);
  const sse = points.reduce((a, [x, y]) => a + (y - fixed - slope * x) ** 2, 0);
  return { fixed, perShardMs: slope * 1000, r2: syy ? 1 - sse / syy : 1 };
}

/** Time the real thresholds and finalize stages over runs of `sizes` real shards (each annotates, untimed, what the smaller runs left). */
export async function measureRealTail(tmp: string, bench: RunConfig, targetShards: number, note: (m: string) => void, sizes = [16, 32, 64], samplesPerShard = 4): Promise<RealTail> {
  const root = path.join(tmp, 'tail');
  const largest = Math.max(...sizes);
  note(`real tail: generating ${largest} tiny shards of ${samplesPerShard} samples and running the real stages (tiny models)…`);
  await generateSampleData({ out: path.join(root, 'input'), shards: largest, perShard: samplesPerShard, seed: 12 });
  const models = new StageModels();
  const measured: TailTiming[] = [];
  try {
    // A one-shard run first, untimed: the first call of each code path loads and compiles it.
    const runs = [{ shards: 1, timed: false }, ...[...sizes].sort((a, b) => a - b).map((shards) => ({ shards, timed: true }))];
    for (const { shards, timed } of runs) {
      const config = parseConfig(
        {
          run: { name: `tail-${shards}` },
          input: { uri: path.join(root, 'input'), maxShards: shards },
          output: { uri: path.join(root, 'output') },
          strategy: bench.strategy,
          models: { captioner: { path: path.join(TINY, 'tiny-vit-gpt2') }, clip: { path: path.join(TINY, 'tiny-clip') } },
          caption: { maxLength: 6 },
        },
        'bench:scale tail',
      );
      const plan = await planRun(config);
      for (let i = 0; i < shards; i++) await annotateShard(plan, i, (groups) => models.forAnnotate(plan.config, groups));
      const thresholdsSeconds = await seconds(() => computeThresholds(plan));
      for (let i = 0; i < shards; i++) {
        await selectShard(plan, i);
        await writeShard(plan, i);
      }
      const finalizeSeconds = await seconds(() => finalizeRun(plan));
      if (timed) measured.push({ shards, thresholdsSeconds, finalizeSeconds });
    }
  } finally {
    await closeSharedPrepPool();
  }
  const fit = {
    thresholds: fitLine(measured.map((m) => [m.shards, m.thresholdsSeconds])),
    finalize: fitLine(measured.map((m) => [m.shards, m.finalizeSeconds])),
  };
  const at = (f: Fit) => (f.perShardMs > 0 ? Math.max(0, f.fixed) + (f.perShardMs / 1000) * targetShards : null);
  return { samplesPerShard, measured, fit, extrapolated: { shards: targetShards, thresholdsSeconds: at(fit.thresholds), finalizeSeconds: at(fit.finalize) } };
}
