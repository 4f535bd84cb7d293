/**
 * The paper's table rows as named presets (Nguyen et al. 2023, Tables 1-2 and Fig. 2). Each preset is data:
 * which pool-wide thresholds it needs and how one sample is decided given them.
 */

export type CaptionSource = 'raw' | 'synthetic';

/** A pool-wide threshold: the score of rank floor(n·fraction) among `source` scores sorted descending. */
export interface ThresholdSpec {
  source: CaptionSource;
  fraction: number;
}

export type Rule =
  /** Keep every sample with the given caption. */
  | { kind: 'all'; source: CaptionSource }
  /** Keep a sample if its `source` score is in the top `fraction` of the pool; use that caption. */
  | { kind: 'top'; source: CaptionSource; fraction: number }
  /**
   * Raw caption where s_raw is in the raw top `fraction`; otherwise the synthetic caption — always
   * (`filterSynthetic` false) or only where s_syn clears the SAME raw threshold (the paper's filtered mix).
   */
  | { kind: 'mix'; fraction: number; filterSynthetic: boolean };

export interface Preset {
  name: string;
  description: string;
  rule: (fraction?: number) => Rule;
}

export const PRESETS: readonly Preset[] = [
  { name: 'raw', description: 'keep all, raw caption (no filtering baseline)', rule: () => ({ kind: 'all', source: 'raw' }) },
  {
    name: 'raw-top30',
    description: 'keep if s_raw >= tau_raw(0.3), raw caption (DataComp CLIP-score filter)',
    rule: () => ({ kind: 'top', source: 'raw', fraction: 0.3 }),
  },
  { name: 'synthetic', description: 'keep all, synthetic caption', rule: () => ({ kind: 'all', source: 'synthetic' }) },
  {
    name: 'synthetic-top50',
    description: 'keep if s_syn >= tau_syn(0.5), synthetic caption',
    rule: () => ({ kind: 'top', source: 'synthetic', fraction: 0.5 }),
  },
  {
    name: 'raw30-synthetic70',
    description: 'raw caption if s_raw >= tau_raw(0.3), else synthetic; nothing dropped',
    rule: () => ({ kind: 'mix', fraction: 0.3, filterSynthetic: false }),
  },
  {
    name: 'raw30-synthetic70-filtered',
    description: 'raw if s_raw >= tau_raw(0.3); else synthetic if s_syn >= tau_raw(0.3) (same tau); else drop',
    rule: () => ({ kind: 'mix', fraction: 0.3, filterSynthetic: true }),
  },
  {
    name: 'mix-threshold',
    description: 'Fig. 2 sweep: the filtered mix with the top fraction f as a parameter (strategy.fraction)',
    rule: (f) => {
      if (f === undefined) throw new Error('preset mix-threshold needs strategy.fraction');
      return { kind: 'mix', fraction: f, filterSynthetic: true };
    },
  },
];

export const PRESET_NAMES: string[] = PRESETS.map((p) => p.name);

export function resolveRule(preset: string, fraction?: number): Rule {
  const p = PRESETS.find((x) => x.name === preset);
  if (!p) throw new Error(`unknown preset "${preset}" (known: ${PRESET_NAMES.join(', ')})`);
  return p.rule(fraction);
}

/** Thresholds a rule needs; the mix uses tau_raw(f) for both raw and synthetic scores. */
export function thresholdsNeeded(rule: Rule): ThresholdSpec[] {
  switch (rule.kind) {
    case 'all':
      return [];
    case 'top':
      return [{ source: rule.source, fraction: rule.fraction }];
    case 'mix':
      return [{ source: 'raw', fraction: rule.fraction }];
  }
}

export function thresholdKey(t: ThresholdSpec): string {
  return `${t.source}@${t.fraction}`;
}
