/**
 * The models the annotate stage uses — captioner, CLIP scorer, and the nearest-centroid graph of the image-cluster
 * filter — loaded once per worker process and shared by every activity. Built by the worker with its device
 * (`recaption worker --device`), which wins over each run's `models.device` for all three.
 */
import type { RunConfig } from '../config/schema';
import { NearestCentroid } from '../clusters/nearest';
import { getCachedModel } from '../models/cache';
import { parseDevice } from '../models/session';
import { loadModel, modelSpecs, type ModelKind, type ModelSpec } from '../models/specs';
import type { Captioner, ClipScorer, Device } from '../models/types';
import type { ModelGroup } from '../run/annotations';
import type { AnnotateModels } from './annotate-stage';

export class StageModels {
  /** @param device the worker's device; undefined: each run's `models.device`. */
  constructor(readonly device?: Device) {
    if (device !== undefined) parseDevice(device); // InvalidConfig on a malformed value
  }

  /** Where a run's models run on this worker. */
  deviceFor(config: RunConfig): Device {
    return this.device ?? (config.models.device as Device);
  }

  /** The specs of every model the run config names (what the worker's start-up check loads). */
  specs(config: RunConfig): ModelSpec[] {
    return modelSpecs(config.models, config.image, this.device);
  }

  captioner(config: RunConfig): Promise<Captioner> {
    return loadModel({ ...this.spec(config, 'captioner'), kind: 'captioner' });
  }

  clip(config: RunConfig): Promise<ClipScorer> {
    return loadModel({ ...this.spec(config, 'clip'), kind: 'clip' });
  }

  /** The image-cluster filter's nearest-centroid graph, or null when the run has no such filter. */
  centroids(config: RunConfig): Promise<NearestCentroid | null> {
    const f = config.filters.imageCluster;
    if (!f) return Promise.resolve(null);
    const device = this.deviceFor(config);
    return getCachedModel(`centroids:${f.centroids}:${f.centroidNorm}:${device}`, () =>
      NearestCentroid.fromNpy(f.centroids, { centroidNorm: f.centroidNorm, device }),
    );
  }

  /** The models the given annotation groups need (a group computed from committed inputs needs only its own). */
  async forAnnotate(config: RunConfig, groups: ReadonlySet<ModelGroup>): Promise<AnnotateModels> {
    const clipNeeded = groups.has('rawScores') || groups.has('syntheticScores') || groups.has('clusters');
    const [captioner, clip, centroids] = await Promise.all([
      groups.has('captions') ? this.captioner(config) : null,
      clipNeeded ? this.clip(config) : null,
      groups.has('clusters') ? this.centroids(config) : null,
    ]);
    return { captioner, clip, centroids };
  }

  private spec(config: RunConfig, kind: ModelKind): ModelSpec {
    return this.specs(config).find((s) => s.kind === kind)!;
  }
}
