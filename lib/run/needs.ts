/**
 * Which annotations a run needs, from its strategy and filters: `raw` none; `raw-top30` raw scores (none with
 * precomputed DataComp scores, which the select stage reads from the shards' parquets); `synthetic` captions; the
 * mixes captions and both scores (the unfiltered mix no synthetic score); best-of-N by CLIP the synthetic scores
 * of its candidates; the image-cluster filter the clusters. `annotations.include` adds groups for later runs.
 */
import type { RunConfig } from '../config/schema';
import { ruleInputs, ruleOf } from '../strategies/presets';
import { MODEL_GROUPS, type ModelGroup } from './annotations';

export function annotationsNeeded(config: RunConfig): Set<ModelGroup> {
  const uses = ruleInputs(ruleOf(config.strategy));
  const need = new Set<ModelGroup>(config.annotations.include);
  if (uses.synthetic) need.add('captions');
  if (uses.scores.has('synthetic')) need.add('syntheticScores');
  if (uses.scores.has('raw') && config.score.rawScore === 'compute') need.add('rawScores');
  // Best-of-N keeps the candidate CLIP scores best, so its captions cannot exist without their scores.
  if (need.has('captions') && config.caption.candidates > 1 && config.caption.pick === 'clip') need.add('syntheticScores');
  if (need.has('syntheticScores')) need.add('captions');
  if (config.filters.imageCluster) need.add('clusters');
  return new Set(MODEL_GROUPS.filter((g) => need.has(g)));
}

/** The groups that the select stage reads for the decisions (the rest are there for later runs, or not at all). */
export function annotationsRead(config: RunConfig): Set<ModelGroup> {
  const uses = ruleInputs(ruleOf(config.strategy));
  const read = new Set<ModelGroup>();
  if (uses.synthetic) read.add('captions');
  if (uses.scores.has('synthetic') || (uses.synthetic && config.caption.candidates > 1 && config.caption.pick === 'clip')) read.add('syntheticScores');
  if (uses.scores.has('raw') && config.score.rawScore === 'compute') read.add('rawScores');
  if (config.filters.imageCluster?.apply) read.add('clusters');
  return read;
}
