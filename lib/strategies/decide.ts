import { SELECTION_REASONS as WHY } from '../reasons';
import type { CaptionSource, Gate, Rule, ThresholdSpec } from './presets';
import { thresholdKey } from './presets';

export interface SampleScores {
  /** null when the sample failed before scoring (its failure reason is recorded instead). */
  sRaw: number | null;
  sSyn: number | null;
  /** Which captions have text to train on (an empty or white-space caption is never kept). */
  usable: Record<CaptionSource, boolean>;
}

export interface Decision {
  kept: boolean;
  source: CaptionSource | null;
  /** Why a sample was dropped; null when kept. */
  reason: string | null;
}

export type Thresholds = Record<string, number>;

function tau(thresholds: Thresholds, spec: ThresholdSpec): number {
  const v = thresholds[thresholdKey(spec)];
  if (v === undefined) throw new Error(`threshold ${thresholdKey(spec)} was not computed`);
  return v;
}

/** Decide one sample under a rule, given the pool-wide thresholds. */
export function decide(rule: Rule, s: SampleScores, thresholds: Thresholds): Decision {
  const drop = (reason: string): Decision => ({ kept: false, source: null, reason });
  const keep = (source: CaptionSource): Decision => (s.usable[source] ? { kept: true, source, reason: null } : drop(WHY.emptyCaption(source)));
  switch (rule.kind) {
    case 'all':
      return keep(rule.source);
    case 'top': {
      const score = rule.source === 'raw' ? s.sRaw : s.sSyn;
      if (score === null) return drop(WHY.noScore(rule.source));
      return score >= tau(thresholds, rule) ? keep(rule.source) : drop(WHY.below(rule.source));
    }
    case 'custom': {
      const other: CaptionSource = rule.prefer === 'raw' ? 'synthetic' : 'raw';
      for (const src of [rule.prefer, other]) {
        const g = rule.gates[src];
        if (g && s.usable[src] && passes(rule, src, g, s, thresholds)) return keep(src);
      }
      return drop(WHY.belowThresholds);
    }
    case 'mix': {
      const t = tau(thresholds, { source: 'raw', fraction: rule.fraction });
      if (s.sRaw !== null && s.sRaw >= t && s.usable.raw) return keep('raw');
      // The unfiltered mix reads no synthetic score: everything not kept raw is kept synthetic.
      if (!rule.filterSynthetic) return keep('synthetic');
      if (s.sSyn === null) return drop(WHY.noScore('synthetic'));
      return s.sSyn >= t ? keep('synthetic') : drop(WHY.belowThresholds);
    }
  }
}

function passes(rule: Extract<Rule, { kind: 'custom' }>, src: CaptionSource, g: Gate, s: SampleScores, thresholds: Thresholds): boolean {
  const score = src === 'raw' ? s.sRaw : s.sSyn;
  if ('all' in g) return true; // reads no score (ruleInputs), so none is computed for it
  if (score === null) return false;
  if ('min' in g) return score >= g.min;
  if ('fraction' in g) return score >= tau(thresholds, { source: src, fraction: g.fraction });
  // sameAs: the other source's gate value (its pool threshold or absolute minimum)
  const og = rule.gates[g.sameAs];
  if (!og || 'sameAs' in og || 'all' in og) throw new Error(`custom rule: ${src}.sameAs ${g.sameAs} needs ${g.sameAs} to have a fraction or min`);
  return score >= ('min' in og ? og.min : tau(thresholds, { source: g.sameAs, fraction: og.fraction }));
}
