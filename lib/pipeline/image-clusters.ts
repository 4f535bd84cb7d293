/**
 * DataComp's image-cluster filter in the select stage: a kept sample stays kept only when its image's nearest
 * centroid (the `clusters` annotation, lib/pipeline/annotate-stage.ts) is in the target set.
 * Imports nothing of ONNX Runtime: the select stage runs on CPU workers that never load it.
 */
import type { RunConfig } from '../config/schema';
import { readTargetList } from '../clusters/target';
import { getCachedModel } from '../models/cache';
import { SELECTION_REASONS } from '../reasons';

/** The run's target cluster set (read once per worker process), or null when the run does not filter by it. */
export function targetClustersFor(config: RunConfig): Promise<Set<number>> | null {
  const f = config.filters.imageCluster;
  if (!f?.apply) return null;
  return getCachedModel(`target:${f.target}`, () => readTargetList(f.target));
}

export const IMAGE_CLUSTER_REASON = SELECTION_REASONS.filter('image', 'not_in_target_clusters');
