/**
 * Where every stage writes, as a pure function of (run, stage, shard). Deterministic locations are the
 * checkpoint: a stage whose committed output exists is done, so a resumed run skips it.
 *
 *   <output>/<run>/plan.json                       shards of the run, the config and the annotation keys
 *   <output>/<run>/work/<stage>/<shard>.done.json  the stage's commit marker + small summary (written last)
 *   (captions, CLIP scores and clusters are annotations, shared between runs: lib/run/annotations.ts)
 *   <output>/<run>/thresholds.json                 pool-wide thresholds
 *   <output>/<run>/decisions/<shard>.parquet       every sample's decision
 *   <output>/<run>/shards/<shard>.tar              WebDataset shard of the kept samples
 *   <output>/<run>/resharded/<i:08d>.tar           the kept samples in shards of output.samplesPerShard
 *   <output>/<run>/resharded/_segments.json        which kept samples each of those tars holds
 *   <output>/<run>/failures/<stage>/<shard>.json   shard-level failures (bad shard), for the manifest
 *   <output>/<run>/subset.npy, manifest.json, _stats.json, report.json, report.html
 */
import { joinUri } from '../storage';
import type { ShardStage } from './stages';

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
  get reportHtml(): string {
    return joinUri(this.runUri, 'report.html');
  }
  get decisionsDir(): string {
    return joinUri(this.runUri, 'decisions');
  }
  decisions(shard: string): string {
    return joinUri(this.decisionsDir, `${shard}.parquet`);
  }
  get outputShardsDir(): string {
    return joinUri(this.runUri, 'shards');
  }
  outputShard(shard: string): string {
    return joinUri(this.outputShardsDir, `${shard}.tar`);
  }
  get reshardedDir(): string {
    return joinUri(this.runUri, 'resharded');
  }
  /** Output shard `index` of the optional fixed-size resharding (output.samplesPerShard). */
  resharded(index: number): string {
    return joinUri(this.reshardedDir, `${String(index).padStart(8, '0')}.tar`);
  }
  /** The folder of a stage's commit markers. */
  stageDir(stage: ShardStage): string {
    return joinUri(this.runUri, 'work', stage);
  }
  /** The segments (input shard, offset, count) each resharded tar holds: what those tars were written under. */
  get reshardedSegments(): string {
    return joinUri(this.reshardedDir, '_segments.json');
  }
  /** Commit marker of a stage: written after the stage's data, so its presence means the data is complete. */
  done(stage: ShardStage, shard: string): string {
    return joinUri(this.stageDir(stage), `${shard}.done.json`);
  }
  failure(stage: ShardStage, shard: string): string {
    return joinUri(this.runUri, 'failures', stage, `${shard}.json`);
  }
  get failuresDir(): string {
    return joinUri(this.runUri, 'failures');
  }
}
