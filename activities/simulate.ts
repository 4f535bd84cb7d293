/**
 * Simulate mode (workers/build.ts `simulate`, `npm run bench:scale`): every activity under its real name and
 * signature, through the real adapter (heartbeat, plan lookup, error mapping), returning realistic small summaries
 * without reading input or running a model — so the workflows, task queues, workers and server carry a run of any
 * size while only the orchestration costs. What it writes: the run's plan.json (a generated plan of
 * `input.maxShards` shards, as large as a real one) and, only if a stage fails, the real failure record.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { configHash, parseConfig } from '../lib/config/load';
import type { RunConfig } from '../lib/config/schema';
import { InputError } from '../lib/errors';
import type { StageSummary } from '../lib/pipeline/checkpoint';
import type { RunSummaryData } from '../lib/pipeline/finalize-stage';
import { commitPlan } from '../lib/pipeline/plan-stage';
import { AnnotationStore, annotationKeys, contentId, keyDeterminants } from '../lib/run/annotations';
import { RunLayout } from '../lib/run/layout';
import { annotationsNeeded, annotationsRead } from '../lib/run/needs';
import { loadPlan, PLAN_VERSION, shardOf, type PlannedShard, type RunPlan } from '../lib/run/plan';
import type { ShardStage } from '../lib/run/stages';
import { joinUri } from '../lib/storage/uri';
import { ruleOf, thresholdKey, thresholdsNeeded } from '../lib/strategies/presets';
import type { CpuActivities, GpuActivities } from '.';
import { runActivity, shardActivity, type ShardTask } from './adapter';
import { planResult, recordShardFailure, type PlanResult } from './run';

export interface SimulateOptions {
  /** How long each activity takes (default 0: only the orchestration is measured). */
  delayMs?: number;
  /** Samples in each simulated shard (default 10,000, img2dataset's usual shard size). */
  samplesPerShard?: number;
  /** Told when a shard stage completes (the scale bench counts them). */
  onShardStage?: (stage: ShardStage, index: number) => void;
}

const DEFAULT_SAMPLES_PER_SHARD = 10_000;

/** A stable number in [0, 1) per shard, so every count varies a little but is the same on every attempt. */
function jitter(index: number, salt: number): number {
  let h = Math.imul(index ^ 0x9e3779b9, 0x85ebca6b) ^ salt;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/** The counts a simulated shard reports: a few undecodable samples, about a third kept, split raw/synthetic. */
export function simulatedShardCounts(index: number, samplesPerShard: number) {
  const failed = Math.floor(jitter(index, 1) * 8);
  const kept = Math.round((samplesPerShard - failed) * (0.28 + 0.04 * jitter(index, 2)));
  const raw = Math.round(kept * (0.35 + 0.1 * jitter(index, 3)));
  return { samples: samplesPerShard, failed, kept, raw, synthetic: kept - raw, dropped: samplesPerShard - kept };
}

/** A plan of `input.maxShards` generated shards (nothing listed, nothing hashed), shaped and sized like a real one. */
function simulatedPlan(config: RunConfig, runUri: string): RunPlan {
  const count = config.input.maxShards;
  if (!count) throw new InputError('InvalidConfig', 'simulate mode generates input.maxShards shards: set input.maxShards');
  const shards: PlannedShard[] = Array.from({ length: count }, (_, i) => {
    const name = String(i).padStart(8, '0');
    return { name, tar: joinUri(config.input.uri, `${name}.tar`), parquet: joinUri(config.input.uri, `${name}.parquet`), content: contentId(`simulated:${name}`) };
  });
  const compute = annotationsNeeded(config);
  const determinants = keyDeterminants(config, compute, { captioner: 'simulated', clip: 'simulated', centroids: 'simulated' });
  return {
    version: PLAN_VERSION,
    runName: config.run.name,
    runUri,
    configHash: configHash(config),
    config,
    createdAt: new Date().toISOString(),
    shards,
    annotations: { root: AnnotationStore.rootFor(config), keys: annotationKeys(determinants), determinants, compute: [...compute], read: [...annotationsRead(config)] },
  };
}

export function createSimulatedGpuActivities(opts: SimulateOptions = {}): GpuActivities {
  const { stage } = simulator(opts);
  return {
    annotateShard: (task: ShardTask) =>
      stage('annotate', task, (plan, counts) => ({
        samples: counts.samples,
        failed: counts.failed,
        counts: { decoded: counts.samples - counts.failed, resumedAt: 0, ...Object.fromEntries(plan.annotations.compute.map((g) => [`computed:${g}`, 1])) },
      })),
  };
}

export function createSimulatedCpuActivities(opts: SimulateOptions = {}): CpuActivities {
  const { stage, pause, samplesPerShard } = simulator(opts);
  const thresholds = (plan: RunPlan) => Object.fromEntries(thresholdsNeeded(ruleOf(plan.config.strategy)).map((t) => [thresholdKey(t), 0.3]));
  return {
    async planRun(input: { config: unknown }): Promise<PlanResult> {
      return runActivity(async () => {
        const config = parseConfig(input.config, 'workflow input');
        ruleOf(config.strategy);
        // Through the real plan commit: a resumed run keeps its plan, a changed config is refused.
        const plan = await commitPlan(config, async (layout) => simulatedPlan(config, layout.runUri));
        await pause();
        // Nothing failed before in a simulation.
        return planResult(plan, config, { keep: [], retry: [] });
      });
    },
    async shardsToAnnotate(input: { runUri: string; start: number; end: number }): Promise<number[]> {
      return runActivity(async () => {
        await loadPlan(input.runUri);
        await pause();
        // Nothing is annotated yet in a simulation: every shard of the page needs the GPU stage.
        return Array.from({ length: input.end - input.start }, (_, k) => input.start + k);
      });
    },
    async computeThresholds(input: { runUri: string }): Promise<Record<string, number | string>> {
      return runActivity(async () => {
        const plan = await loadPlan(input.runUri);
        await pause();
        return thresholds(plan);
      });
    },
    selectShard: (task: ShardTask) =>
      stage('select', task, (_plan, c) => ({
        samples: c.samples,
        failed: c.failed,
        counts: { kept: c.kept, raw: c.raw, synthetic: c.synthetic, dropped: c.dropped, 'dropped:undecodable': c.failed, 'dropped:below_threshold': c.dropped - c.failed },
      })),
    writeShard: (task: ShardTask) => stage('write', task, (_plan, c) => ({ samples: c.samples, failed: 0, counts: { written: c.kept, writtenDigest: c.kept * 2654435761 % 2 ** 31 } })),
    recordShardFailure,
    async finalizeRun(input: { runUri: string }): Promise<RunSummaryData> {
      return runActivity(async () => {
        const plan = await loadPlan(input.runUri);
        const layout = new RunLayout(plan.runUri);
        const totals = { samples: 0, kept: 0, raw: 0, synthetic: 0, failed: 0, dropped: 0 };
        plan.shards.forEach((_, i) => {
          const c = simulatedShardCounts(i, samplesPerShard);
          for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += c[k];
        });
        await pause();
        return {
          runUri: plan.runUri,
          shards: plan.shards.length,
          samples: totals.samples,
          kept: totals.kept,
          keptBySource: { raw: totals.raw, synthetic: totals.synthetic },
          dropped: { undecodable: totals.failed, below_threshold: totals.dropped - totals.failed },
          failedShards: 0,
          thresholds: thresholds(plan),
          meanScores: { raw: 0.3, synthetic: 0.3, chosen: 0.33 },
          outputs: {
            shards: layout.outputShardsDir,
            decisions: layout.decisionsDir,
            manifest: layout.manifest,
            subset: layout.subset,
            stats: layout.stats,
            report: layout.report,
            reportHtml: layout.reportHtml,
          },
          resharded: 0,
        };
      });
    },
  };
}

type Counts = ReturnType<typeof simulatedShardCounts>;

function simulator(opts: SimulateOptions) {
  const delayMs = opts.delayMs ?? 0;
  const samplesPerShard = opts.samplesPerShard ?? DEFAULT_SAMPLES_PER_SHARD;
  const pause = async (signal?: AbortSignal) => {
    if (delayMs > 0) await sleep(delayMs, undefined, signal ? { signal } : undefined);
  };
  /** A shard stage through the real adapter: its shard must be in the plan, and its summary names it. */
  const stage = (name: ShardStage, task: ShardTask, outcome: (plan: RunPlan, c: Counts) => Omit<StageSummary, 'shard' | 'skipped'>): Promise<StageSummary> =>
    shardActivity(name, task, async (plan, ctx) => {
      const shard = shardOf(plan, task.index);
      await pause(ctx.signal);
      const summary: StageSummary = { shard: shard.name, skipped: false, ...outcome(plan, simulatedShardCounts(task.index, samplesPerShard)) };
      opts.onShardStage?.(name, task.index);
      return summary;
    });
  return { stage, pause: () => pause(), samplesPerShard };
}
