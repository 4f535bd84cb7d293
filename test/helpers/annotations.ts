/** Reading a run's annotations in tests. */
import type { ModelGroup } from '../../lib/run/annotations';
import { annotationStore, type RunPlan } from '../../lib/run/plan';
import { ANNOTATION_TABLES, CANDIDATE_TABLE, type CandidateRow } from '../../lib/run/tables';
import { storageFor } from '../../lib/storage';

export function annotationFile(plan: RunPlan, group: ModelGroup | 'samples', shard: number): string {
  return annotationStore(plan).file(group, plan.shards[shard]!);
}

const T = ANNOTATION_TABLES;
const read = <R>(table: { read(s: ReturnType<typeof storageFor>, uri: string): Promise<R[]> }, uri: string): Promise<R[]> => table.read(storageFor(uri), uri);

export const annotations = {
  samples: (plan: RunPlan, shard: number) => read(T.samples, annotationFile(plan, 'samples', shard)),
  captions: (plan: RunPlan, shard: number) => read(T.captions, annotationFile(plan, 'captions', shard)),
  candidates: (plan: RunPlan, shard: number): Promise<CandidateRow[]> => read(CANDIDATE_TABLE, annotationStore(plan).candidates(plan.shards[shard]!)),
  rawScores: (plan: RunPlan, shard: number) => read(T.rawScores, annotationFile(plan, 'rawScores', shard)),
  syntheticScores: (plan: RunPlan, shard: number) => read(T.syntheticScores, annotationFile(plan, 'syntheticScores', shard)),
  clusters: (plan: RunPlan, shard: number) => read(T.clusters, annotationFile(plan, 'clusters', shard)),
};
