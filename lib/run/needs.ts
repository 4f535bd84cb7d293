/**
 * Which annotations a run needs, from its strategy and filters: `raw` none; `raw-top30` raw scores (none with
 * precomputed DataComp scores, which the select stage reads from the shards' parquets); `synthetic` captions; the
 * mixes captions and both scores (the unfiltered mix no synthetic score); best-of-N by CLIP the synthetic scores
 * of its candidates; the image-cluster filter the clusters. `annotations.include` adds groups for later runs.
 */
import type { RunConfig } from '../config/schema';
import { ruleInputs, ruleOf } from '../strategies/presets';
import { MODEL_GROUPS, type ModelGroup } from './annotations';

/** The groups the select stage reads for the decisions (a best-of-N pick reads the candidates' scores). */
export function annotationsRead(config: RunConfig): Set<ModelGroup> {
  const uses = ruleInputs(ruleOf(config.strategy));
  const read = new Set<ModelGroup>();
  if (uses.synthetic) read.add('captions');
  if (uses.scores.has('synthetic') || (uses.synthetic && bestOfN(config))) read.add('syntheticScores');
  if (uses.scores.has('raw') && config.score.rawScore === 'compute') read.add('rawScores');
  if (config.filters.imageCluster?.apply) read.add('clusters');
  return read;
}

/**
 * The groups the annotate stage computes: what the run reads, what annotations.include asks for later runs, and the
 * clusters wherever centroids are configured (`apply: false` annotates without filtering).
 */
export function annotationsNeeded(config: RunConfig): Set<ModelGroup> {
  const need = new Set<ModelGroup>([...annotationsRead(config), ...config.annotations.include]);
  if (config.filters.imageCluster) need.add('clusters');
  // Best-of-N keeps the candidate CLIP scores best, so its captions cannot exist without their scores, nor scores
  // without the captions they are of.
  if (need.has('captions') && bestOfN(config)) need.add('syntheticScores');
  if (need.has('syntheticScores')) need.add('captions');
  return new Set(MODEL_GROUPS.filter((g) => need.has(g)));
}

function bestOfN(config: RunConfig): boolean {
  return config.caption.candidates > 1 && config.caption.pick === 'clip';
}
