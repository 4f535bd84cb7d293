/**
 * Where every stage writes, as a pure function of (run, stage, shard). Deterministic locations are the
 * checkpoint: a stage whose committed output exists is done, so a resumed run skips it.
 *
 *   <output>/<run>/plan.json                       shards of the run and the config that made it
 *   <output>/<run>/work/caption/<shard>.parquet    synthetic captions (+ raw captions, failures)
 *   <output>/<run>/work/caption/<shard>.candidates.parquet  every caption candidate (caption.candidates > 1)
 *   <output>/<run>/work/score/<shard>.parquet      s_raw, s_syn per sample
 *   <output>/<run>/work/<stage>/<shard>.done.json  the stage's commit marker + small summary (written last)
 *   <output>/<run>/thresholds.json                 pool-wide thresholds
 *   <output>/<run>/decisions/<shard>.parquet       every sample's decision
 *   <output>/<run>/shards/<shard>.tar              WebDataset shard of the kept samples
 *   <output>/<run>/failures/<stage>/<shard>.json   shard-level failures (bad shard), for the manifest
 *   <output>/<run>/subset.npy, manifest.json, _stats.json, report.json
 */
import { joinUri } from '../storage';

export type ShardStage = 'caption' | 'score' | 'select' | 'write';
export const SHARD_STAGES: readonly ShardStage[] = ['caption', 'score', 'select', 'write'];

export class RunLayout {
  constructor(readonly runUri: string) {}

  static of(outputUri: string, runName: string): RunLayout {
    return new RunLayout(joinUri(outputUri, runName));
  }

  get plan(): string {
    return joinUri(this.runUri, 'plan.json');
  }
  get thresholds(): string {
    return joinUri(this.runUri, 'thresholds.json');
  }
  get manifest(): string {
    return joinUri(this.runUri, 'manifest.json');
  }
  get stats(): string {
    return joinUri(this.runUri, '_stats.json');
  }
  get subset(): string {
    return joinUri(this.runUri, 'subset.npy');
  }
  get report(): string {
    return joinUri(this.runUri, 'report.json');
  }
  captions(shard: string): string {
    return joinUri(this.runUri, 'work', 'caption', `${shard}.parquet`);
  }
  candidates(shard: string): string {
    return joinUri(this.runUri, 'work', 'caption', `${shard}.candidates.parquet`);
  }
  scores(shard: string): string {
    return joinUri(this.runUri, 'work', 'score', `${shard}.parquet`);
  }
  decisions(shard: string): string {
    return joinUri(this.runUri, 'decisions', `${shard}.parquet`);
  }
  outputShard(shard: string): string {
    return joinUri(this.runUri, 'shards', `${shard}.tar`);
  }
  /** Commit marker of a stage: written after the stage's data, so its presence means the data is complete. */
  done(stage: ShardStage, shard: string): string {
    return joinUri(this.runUri, 'work', stage, `${shard}.done.json`);
  }
  failure(stage: ShardStage, shard: string): string {
    return joinUri(this.runUri, 'failures', stage, `${shard}.json`);
  }
  get failuresDir(): string {
    return joinUri(this.runUri, 'failures');
  }
}
