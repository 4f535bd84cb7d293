/**
 * A sweep: one run per strategy over one pool, sharing one annotation pass — the paper's table rows and its Fig. 2
 * threshold sweep. The first run annotates everything every run of the sweep reads (annotations.include, and the
 * image clusters without filtering when only `-in1k` rows use them); the others then cost CPU time only.
 * The image-cluster filter applies exactly to the presets that name it.
 */
import { parseConfig } from '../config/load';
import type { RunConfig } from '../config/schema';
import { InputError } from '../errors';
import { annotationsNeeded } from '../run/needs';
import { presetNeedsImageCluster } from '../strategies/presets';

export interface SweepStrategy {
  preset: string;
  fraction?: number;
}

/** `mix-threshold` at f is `mix-threshold-f<f>`; a preset is its name. */
export function strategySlug(s: SweepStrategy): string {
  return s.fraction === undefined ? s.preset : `${s.preset}-f${s.fraction}`;
}

/** The sweep's run configs, the annotating one first. */
export function sweepConfigs(base: RunConfig, strategies: SweepStrategy[]): RunConfig[] {
  if (strategies.length === 0) throw new InputError('InvalidConfig', 'a sweep needs at least one preset or fraction');
  const cluster = base.filters.imageCluster;
  const configs = strategies.map((s) => {
    const in1k = presetNeedsImageCluster(s.preset);
    if (in1k && !cluster) throw new InputError('InvalidConfig', `preset ${s.preset} needs filters.imageCluster (centroids + target) in the base config`);
    const { imageCluster: _drop, ...filters } = base.filters;
    return parseConfig(
      {
        ...base,
        run: { ...base.run, name: `${base.run.name}-${strategySlug(s)}` },
        strategy: { preset: s.preset, ...(s.fraction !== undefined ? { fraction: s.fraction } : {}) },
        filters: in1k ? { ...filters, imageCluster: { ...cluster!, apply: true } } : filters,
        annotations: { ...base.annotations, include: [] },
      },
      `sweep ${strategySlug(s)}`,
    );
  });
  // The run that needs most goes first and also annotates what the others need beyond it.
  const needs = configs.map((c) => annotationsNeeded(c));
  const first = needs.reduce((best, n, i) => (n.size > needs[best]!.size ? i : best), 0);
  const union = new Set(needs.flatMap((n) => [...n]));
  const head = configs[first]!;
  const include = [...union].filter((g): g is 'captions' | 'rawScores' | 'syntheticScores' => g !== 'clusters' && !needs[first]!.has(g));
  const annotating = parseConfig(
    {
      ...head,
      annotations: { ...head.annotations, include },
      filters: union.has('clusters') && !head.filters.imageCluster ? { ...head.filters, imageCluster: { ...cluster!, apply: false } } : head.filters,
    },
    `sweep ${head.run.name}`,
  );
  return [annotating, ...configs.filter((_, i) => i !== first)];
}
