/**
 * What a run would do, before anything runs (`recaption plan`, `recaption run --dry-run`): which annotation groups
 * its strategy needs, how many shards already have each (from any earlier run) and so are reused, which stages run
 * where, and an estimate of GPU time from a stated throughput or one measured on a shard.
 */
import type { RunConfig } from '../config/schema';
import { listShards, readShardStats } from '../formats/img2dataset';
import type { AnnotationGroup, ModelGroup } from '../run/annotations';
import { storageFor } from '../storage';
import { missingByShard, needsModels } from './annotate-stage';
import { annotationPlan } from './plan-stage';

export interface GroupPreview {
  group: AnnotationGroup;
  key: string;
  /** Shards whose annotations of this group are committed (reused, not computed again). */
  committed: number;
  /** The model the group needs, or null (samples: decoding only). */
  model: string | null;
}

export interface RunPreview {
  run: string;
  preset: string;
  fraction: number | null;
  shards: number;
  annotationsRoot: string;
  groups: GroupPreview[];
  /** Shards the GPU stage (annotate) runs for: those missing any model group. */
  shardsToAnnotate: number;
  /** Samples in them: from img2dataset's `_stats.json` where present, else estimated from the others (or 10,000). */
  samplesToAnnotate: number;
  samplesEstimated: boolean;
  /** The CPU stages that follow. */
  cpuStages: string[];
}

const MODEL_OF: Record<ModelGroup, 'captioner' | 'clip'> = { captions: 'captioner', rawScores: 'clip', syntheticScores: 'clip', clusters: 'clip' };

export async function previewRun(config: RunConfig): Promise<RunPreview> {
  const { shards, annotations } = await annotationPlan(config);
  const groups: AnnotationGroup[] = ['samples', ...annotations.compute];
  const missing = await missingByShard(annotations, shards);
  const toAnnotate = shards.map((_, i) => i).filter((i) => needsModels(missing[i]!));
  const { samples, estimated } = await sampleCount(config.input.uri, toAnnotate.map((i) => shards[i]!.name));
  return {
    run: config.run.name,
    preset: config.strategy.preset,
    fraction: config.strategy.fraction ?? null,
    shards: shards.length,
    annotationsRoot: annotations.root,
    groups: groups.map((g) => ({
      group: g,
      key: annotations.keys[g]!,
      committed: missing.filter((m) => !m.includes(g)).length,
      model: g === 'samples' ? null : `${config.models[MODEL_OF[g]].path} (${config.models[MODEL_OF[g]].dtype})`,
    })),
    shardsToAnnotate: toAnnotate.length,
    samplesToAnnotate: samples,
    samplesEstimated: estimated,
    cpuStages: ['thresholds', 'select', 'write', 'finalize'],
  };
}

/** Samples in the named shards, from their `_stats.json` (successes) where present. */
async function sampleCount(inputUri: string, names: string[]): Promise<{ samples: number; estimated: boolean }> {
  if (names.length === 0) return { samples: 0, estimated: false };
  const wanted = new Set(names);
  const refs = (await listShards(storageFor(inputUri), inputUri)).filter((s) => wanted.has(s.name));
  const known: number[] = [];
  for (const r of refs) {
    // A stats file that cannot be read only makes the estimate rougher.
    const stats = r.stats ? await readShardStats(storageFor(r.stats), r.stats).catch(() => null) : null;
    if (stats) known.push(stats.successes);
  }
  const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 10_000;
  return { samples: Math.round(known.reduce((a, b) => a + b, 0) + (names.length - known.length) * mean), estimated: known.length < names.length };
}
