/** Checks made before a run starts, so bad input fails in the terminal, not hours later in a worker. */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { configHash } from '../lib/config/load';
import type { RunConfig } from '../lib/config/schema';
import { InputError } from '../lib/errors';
import { configChangedError, listInputShards } from '../lib/pipeline/plan-stage';
import { RunLayout } from '../lib/run/layout';
import { readPlan } from '../lib/run/plan';
import { joinUri, storageFor } from '../lib/storage';

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
  await checkOutputWritable(config.output.uri);
  const plan = await readPlan(RunLayout.of(config.output.uri, config.run.name).runUri);
  if (plan && plan.configHash !== configHash(config)) throw configChangedError(plan, config);
  return { shards: shards.length };
}

/** Write and remove a small object under the output, so a run never starts where it cannot write its results. */
async function checkOutputWritable(outputUri: string): Promise<void> {
  const probe = joinUri(outputUri, `.recaption-write-probe-${randomBytes(6).toString('hex')}`);
  const storage = storageFor(probe);
  try {
    await storage.writeAtomic(probe, 'written and removed by recaption before a run starts\n');
    await storage.remove(probe);
  } catch (e) {
    const why = e instanceof InputError ? `${e.type}: ${e.message}` : (e as Error).message;
    const message = `output.uri: cannot write to ${outputUri} (${why})`;
    // Only what the storage classified as the input's fault is one; a network error may pass (exit 1, try again).
    throw e instanceof InputError ? new InputError('OutputNotWritable', message) : new Error(message);
  }
}


