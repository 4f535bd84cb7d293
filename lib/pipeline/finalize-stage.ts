/**
 * Last stage (CPU): read every decision file once and write the run-level outputs — the DataComp subset
 * file of kept uids, `_stats.json`, `report.json` (summary numbers) and the run manifest.
 */
import { writeSubsetNpy } from '../formats/subset';
import { writeReport } from '../report';
import { readShardFailures } from '../run/failures';
import { RunLayout } from '../run/layout';
import { annotationStore, type RunPlan } from '../run/plan';
import { DECISION_TABLE, SAMPLES_TABLE } from '../run/tables';
import { InputError } from '../errors';
import { accountShard } from './accounting';
import { committedSummary } from './checkpoint';
import { storageFor } from '../storage';
import { NO_CONTEXT, type StageContext } from './context';
import { reshardRun } from './reshard';
import { readThresholds, encodeThreshold } from './thresholds-stage';
import { modelFileHashes, softwareVersions } from './versions';

export interface RunSummaryData {
  runUri: string;
  shards: number;
  samples: number;
  kept: number;
  keptBySource: Record<string, number>;
  dropped: Record<string, number>;
  failedShards: number;
  thresholds: Record<string, number | string>;
  meanScores: { raw: number | null; synthetic: number | null; chosen: number | null };
  outputs: { shards: string; decisions: string; manifest: string; subset: string; stats: string; report: string; reportHtml: string };
  /** Fixed-size output shards written (output.samplesPerShard), 0 when not asked for. */
  resharded: number;
}

class Mean {
  private sum = 0;
  n = 0;
  add(v: number | null): void {
    if (v === null || Number.isNaN(v)) return;
    this.sum += v;
    this.n++;
  }
  get value(): number | null {
    return this.n ? this.sum / this.n : null;
  }
}

export async function finalizeRun(plan: RunPlan, ctx: StageContext = NO_CONTEXT): Promise<RunSummaryData> {
  const layout = new RunLayout(plan.runUri);
  const storage = storageFor(plan.runUri);
  const thresholds = await readThresholds(plan.runUri);

  const keptUids: string[] = [];
  const keptBySource: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  const mRaw = new Mean();
  const mSyn = new Mean();
  const mChosen = new Mean();
  let samples = 0;
  const failures = await readShardFailures(storage, layout);
  const failedShards = new Set(failures.map((f) => f.shard));
  const store = annotationStore(plan);
  const problems: string[] = [];
  const uidShard = new Map<string, string>();
  const shardRows: Array<{ shard: string; input: string; output: string | null; samples: number; kept: number; failed?: true }> = [];
  for (const shard of plan.shards) {
    // A shard that failed as a whole has no outputs: none of its samples is listed or kept.
    if (failedShards.has(shard.name)) {
      shardRows.push({ shard: shard.name, input: shard.tar, output: null, samples: 0, kept: 0, failed: true });
      continue;
    }
    if (!(await storage.exists(layout.done('select', shard.name)))) {
      problems.push(`${shard.name}: no committed decisions and no recorded failure`);
      continue;
    }
    const rows = await DECISION_TABLE.read(storage, layout.decisions(shard.name));
    const samplesUri = store.file('samples', shard);
    const inTar = (await SAMPLES_TABLE.decode(await storageFor(samplesUri).readBuffer(samplesUri), samplesUri, ['key'])).length;
    const write = await committedSummary(storage, layout, 'write', shard.name);
    const account = accountShard(shard.name, inTar, rows, write?.counts ?? null, plan.config.input.requireUid);
    if (account.problems.length) problems.push(`${shard.name} (${account.samples} in, ${account.kept} kept, ${account.dropped} dropped, ${account.failed} failed): ${account.problems.join('; ')}`);
    for (const r of rows) {
      samples++;
      mRaw.add(r.s_raw);
      mSyn.add(r.s_syn);
      if (r.kept && r.source) {
        keptBySource[r.source] = (keptBySource[r.source] ?? 0) + 1;
        mChosen.add(r.source === 'raw' ? r.s_raw : r.s_syn);
        if (r.uid) {
          const earlier = uidShard.get(r.uid);
          if (earlier !== undefined) problems.push(`uid ${r.uid} is kept in shard ${earlier} and again in ${shard.name} (${r.key})`);
          uidShard.set(r.uid, shard.name);
          keptUids.push(r.uid);
        }
      } else {
        const reason = r.reason ?? 'unknown';
        dropped[reason] = (dropped[reason] ?? 0) + 1;
      }
    }
    shardRows.push({ shard: shard.name, input: shard.tar, output: layout.outputShard(shard.name), samples: rows.length, kept: account.kept });
  }
  if (problems.length) {
    // Nothing is reported as done: the subset, stats and manifest would list what was not committed.
    throw new InputError(
      'AccountingMismatch',
      `run ${plan.runName}: the accounting does not close (samples in = kept + dropped + failed, every kept sample written once):\n` +
        problems.slice(0, 20).map((p) => `  - ${p}`).join('\n') +
        (problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''),
    );
  }

  const encodedThresholds = Object.fromEntries(Object.entries(thresholds).map(([k, v]) => [k, encodeThreshold(v)]));
  const totalKept = Object.values(keptBySource).reduce((a, b) => a + b, 0);

  // The run-level outputs below describe the run as it stands now: finalize runs again on every execution that
  // reaches the end (a resume after failed shards were retried changes them; the manifest carries finishedAt), so
  // they replace, whole and atomically. They are derived from committed shard outputs, never shard data themselves.
  await writeSubsetNpy(storage, layout.subset, keptUids, { replace: true });
  const reshard = plan.config.output.samplesPerShard
    ? await reshardRun(plan, new Map(shardRows.filter((r) => r.output).map((r) => [r.shard, r.kept])), plan.config.output.samplesPerShard, ctx)
    : null;
  const resharded = reshard?.shards ?? 0;
  if (reshard?.removedStale) ctx.log?.(`resharding: ${reshard.removedStale} tars of an earlier execution held other samples and were rewritten`);
  const meanScores = { raw: mRaw.value, synthetic: mSyn.value, chosen: mChosen.value };
  const stats = {
    run: plan.runName,
    preset: plan.config.strategy.preset,
    raw_score: plan.config.score.rawScore === 'precomputed' ? `precomputed (${plan.config.score.precomputedColumn})` : 'computed',
    shards: plan.shards.length,
    failed_shards: failedShards.size,
    samples,
    kept: totalKept,
    kept_with_uid: keptUids.length,
    kept_by_source: keptBySource,
    dropped_by_reason: dropped,
    mean_scores: meanScores,
    thresholds: encodedThresholds,
  };
  await storage.writeAtomic(layout.stats, JSON.stringify(stats, null, 2), { replace: true });

  const models = plan.config.models;
  const manifest = {
    version: 1,
    run: plan.runName,
    runUri: plan.runUri,
    createdAt: plan.createdAt,
    finishedAt: new Date().toISOString(),
    config: plan.config,
    configHash: plan.configHash,
    versions: softwareVersions(),
    models: {
      captioner: { path: models.captioner.path, dtype: models.captioner.dtype, files: await modelFileHashes(models.captioner.path) },
      clip: { path: models.clip.path, dtype: models.clip.dtype, files: await modelFileHashes(models.clip.path) },
    },
    // Where the captions, scores and clusters came from: shared annotations, by what determines them.
    annotations: plan.annotations,
    thresholds: encodedThresholds,
    shards: shardRows,
    failures,
    outputs: {
      shards: layout.outputShardsDir,
      decisions: layout.decisionsDir,
      subset: layout.subset,
      stats: layout.stats,
      report: layout.report,
      reportHtml: layout.reportHtml,
      ...(resharded
        ? { resharded: { folder: layout.reshardedDir, shards: resharded, samplesPerShard: plan.config.output.samplesPerShard, segments: layout.reshardedSegments } }
        : {}),
    },
  };
  await storage.writeAtomic(layout.manifest, JSON.stringify(manifest, null, 2), { replace: true });
  // The quality report reads the manifest, so it comes last: report.json + a self-contained report.html.
  await writeReport(plan.runUri);

  return {
    runUri: plan.runUri,
    shards: plan.shards.length,
    samples,
    kept: totalKept,
    keptBySource,
    dropped,
    failedShards: failedShards.size,
    thresholds: encodedThresholds,
    meanScores,
    outputs: { ...manifest.outputs, manifest: layout.manifest },
    resharded,
  };
}
