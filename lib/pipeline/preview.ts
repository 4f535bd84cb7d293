/**
 * What a run would do, before anything runs (`recaption plan`, `recaption run --dry-run`): which annotation groups
 * its strategy needs, how many shards already have each (from any earlier run) and so are reused, which stages run
 * where, and an estimate of GPU time from a stated throughput or one measured on a shard.
 */
import type { RunConfig } from '../config/schema';
import { listShards, readShardStats } from '../formats/img2dataset';
import { AnnotationStore, type AnnotationGroup, type ModelGroup } from '../run/annotations';
import { storageFor } from '../storage';
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
  const store = new AnnotationStore(annotations.root, annotations.keys);
  const files = storageFor(store.root);
  const groups: AnnotationGroup[] = ['samples', ...annotations.compute];
  const committed = new Map<AnnotationGroup, Set<number>>(groups.map((g) => [g, new Set()]));
  for (let from = 0; from < shards.length; from += 32) {
    await Promise.all(
      shards.slice(from, from + 32).flatMap((shard, k) =>
        groups.map(async (g) => {
          if (await files.exists(store.file(g, shard))) committed.get(g)!.add(from + k);
        }),
      ),
    );
  }
  const toAnnotate = shards.map((_, i) => i).filter((i) => annotations.compute.some((g) => !committed.get(g)!.has(i)));
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
      committed: committed.get(g)!.size,
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
  for (const r of refs) if (r.stats) known.push((await readShardStats(storageFor(r.stats), r.stats)).successes);
  const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 10_000;
  return { samples: Math.round(known.reduce((a, b) => a + b, 0) + (names.length - known.length) * mean), estimated: known.length < names.length };
}
