/** Checks made before a run starts, so bad input fails in the terminal, not hours later in a worker. */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../lib/config/schema';
import { InputError } from '../lib/errors';
import { listInputShards } from '../lib/pipeline/plan-stage';

export async function preflight(config: RunConfig): Promise<{ shards: number }> {
  const shards = await listInputShards(config.input.uri);
  for (const [role, m] of Object.entries({ captioner: config.models.captioner, clip: config.models.clip })) {
    if (m.path.startsWith('gs://')) continue;
    if (!existsSync(m.path)) throw new InputError('BadModel', `models.${role}.path: model folder ${m.path} does not exist`);
    if (!existsSync(path.join(m.path, 'config.json'))) {
      throw new InputError('BadModel', `models.${role}.path: ${m.path} has no config.json (expected an Optimum / transformers.js export)`);
    }
  }
  const clusters = config.filters.imageCluster;
  for (const [field, uri] of clusters ? Object.entries({ centroids: clusters.centroids, target: clusters.target }) : []) {
    if (!uri.startsWith('gs://') && !existsSync(uri)) throw new InputError('MissingInput', `filters.imageCluster.${field}: ${uri} does not exist`);
  }
  return { shards: shards.length };
}
