/**
 * DataComp's image-cluster filter inside the pipeline: the score stage assigns each image embedding its
 * nearest centroid (written to the score parquet), the select stage keeps kept samples only when that
 * centroid is in the target set. Centroids and target load once per worker process.
 */
import type { RunConfig } from '../config/schema';
import { NearestCentroid, readTargetList } from '../clusters';
import { getCachedModel } from '../models';

export function nearestCentroidFor(config: RunConfig): Promise<NearestCentroid> | null {
  const f = config.filters.imageCluster;
  if (!f) return null;
  const device = config.models.device as 'cpu' | `cuda:${number}`;
  return getCachedModel(`centroids:${f.centroids}:${f.centroidNorm}:${device}`, () =>
    NearestCentroid.fromNpy(f.centroids, { centroidNorm: f.centroidNorm, device }),
  );
}

export function targetClustersFor(config: RunConfig): Promise<Set<number>> | null {
  const f = config.filters.imageCluster;
  if (!f) return null;
  return getCachedModel(`target:${f.target}`, () => readTargetList(f.target));
}

export const IMAGE_CLUSTER_REASON = 'image_filter:not_in_target_clusters';
