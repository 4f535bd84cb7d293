/**
 * `recaption plan` (= `recaption run --dry-run`): what a run would do before anything runs — the annotations its
 * strategy needs, which are reused, the stages, and the GPU time to expect (from --images-per-second, or measured by
 * annotating one shard here with --measure, which commits that shard's annotations for the run to reuse).
 */
import { loadConfigFile } from '../../lib/config/load';
import type { RunConfig } from '../../lib/config/schema';
import { annotateShard, missingByShard, needsModels } from '../../lib/pipeline/annotate-stage';
import { planRun } from '../../lib/pipeline/plan-stage';
import { previewRun, type RunPreview } from '../../lib/pipeline/preview';
import { StageModels } from '../../lib/pipeline/stage-models';
import { releaseCachedModels } from '../../lib/models/cache';

export interface PlanOptions {
  config: string;
  json: boolean;
  imagesPerSecond?: number;
  measure: boolean;
}

interface Throughput {
  imagesPerSecond: number;
  source: string;
}

export async function planCommand(opts: PlanOptions): Promise<void> {
  await printPlan(await loadConfigFile(opts.config), opts);
}

export async function printPlan(config: RunConfig, opts: Omit<PlanOptions, 'config'>): Promise<void> {
  let throughput: Throughput | undefined = opts.imagesPerSecond ? { imagesPerSecond: opts.imagesPerSecond, source: 'stated' } : undefined;
  if (opts.measure) throughput = (await measure(config)) ?? throughput;
  const preview = await previewRun(config);
  const gpuSeconds = throughput && preview.samplesToAnnotate ? preview.samplesToAnnotate / throughput.imagesPerSecond : null;
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ...preview, throughput: throughput ?? null, gpuSeconds }) + '\n');
    return;
  }
  process.stdout.write(formatPlan(preview, throughput, gpuSeconds) + '\n');
}

function formatPlan(p: RunPreview, t: Throughput | undefined, gpuSeconds: number | null): string {
  const lines = [
    `run        ${p.run}: ${p.preset}${p.fraction !== null ? ` f=${p.fraction}` : ''}, ${p.shards} input shards`,
    `annotations ${p.annotationsRoot}`,
    ...p.groups.map((g) => `  ${g.group.padEnd(16)} ${g.key}  reused ${g.committed}/${p.shards} shards  ${g.model ?? '(image decoding only)'}`),
  ];
  const modelGroups = p.groups.filter((g) => g.group !== 'samples');
  if (modelGroups.length === 0) lines.push('stages     no model is needed: no annotate stage, no GPU worker');
  else if (p.shardsToAnnotate === 0) lines.push('stages     every annotation exists: no annotate stage runs, no GPU worker is needed');
  else lines.push(`stages     annotate (GPU) on ${p.shardsToAnnotate} shard(s), ~${p.samplesToAnnotate.toLocaleString('en-US')} images${p.samplesEstimated ? ' (partly estimated)' : ''}`);
  lines.push(`           then ${p.cpuStages.join(', ')} (CPU)`);
  if (gpuSeconds !== null && t) lines.push(`GPU time   ~${duration(gpuSeconds)} at ${t.imagesPerSecond.toFixed(1)} images/s (${t.source}), one worker`);
  else if (p.shardsToAnnotate > 0) lines.push('GPU time   give --images-per-second N, or --measure to time one shard here');
  return lines.join('\n');
}

function duration(s: number): string {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Annotate the first shard that needs it, here, and time it (model loading excluded). */
async function measure(config: RunConfig): Promise<Throughput | undefined> {
  const plan = await planRun(config);
  const index = await firstToAnnotate(plan);
  if (index === undefined) return undefined;
  const models = new StageModels();
  try {
    const groups = new Set(plan.annotations.compute);
    await models.forAnnotate(config, groups);
    const started = performance.now();
    const s = await annotateShard(plan, index, (g) => models.forAnnotate(config, g));
    const seconds = (performance.now() - started) / 1000;
    return { imagesPerSecond: s.samples / seconds, source: `measured on shard ${plan.shards[index]!.name} on ${models.deviceFor(config)}` };
  } finally {
    await releaseCachedModels();
  }
}

async function firstToAnnotate(plan: Awaited<ReturnType<typeof planRun>>): Promise<number | undefined> {
  const index = (await missingByShard(plan.annotations, plan.shards)).findIndex(needsModels);
  return index < 0 ? undefined : index;
}
