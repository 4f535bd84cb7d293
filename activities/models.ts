/** Models are loaded once per worker process and reused by every activity (GPU workers keep them resident). */
import { getCachedModel, loadCaptioner, loadClip } from '../lib/models';
import type { Captioner, ClipScorer, RuntimeOptions } from '../lib/models/types';
import type { RunConfig } from '../lib/config/schema';

function runtime(config: RunConfig, dtype: RuntimeOptions['dtype']): RuntimeOptions & { maxPixels: number; resampler: 'sharp' | 'pillow' } {
  return {
    device: config.models.device as RuntimeOptions['device'],
    dtype,
    maxPixels: config.image.maxPixels,
    resampler: config.image.resampler,
    ...(config.models.intraOpNumThreads ? { intraOpNumThreads: config.models.intraOpNumThreads } : {}),
  };
}

export function captionerFor(config: RunConfig): Promise<Captioner> {
  const m = config.models.captioner;
  const opts = runtime(config, m.dtype);
  return getCachedModel(`captioner:${m.path}:${JSON.stringify(opts)}`, () => loadCaptioner(m.path, opts));
}

export function clipFor(config: RunConfig): Promise<ClipScorer> {
  const m = config.models.clip;
  const opts = runtime(config, m.dtype);
  return getCachedModel(`clip:${m.path}:${JSON.stringify(opts)}`, () => loadClip(m.path, opts));
}
