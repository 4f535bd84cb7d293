/**
 * The paper's table rows as named presets (Nguyen et al. 2023, Tables 1-2 and Fig. 2). Each preset is data:
 * which pool-wide thresholds it needs and how one sample is decided given them.
 */

export const CAPTION_SOURCES = ['raw', 'synthetic'] as const;
export type CaptionSource = (typeof CAPTION_SOURCES)[number];

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
  | { kind: 'mix'; fraction: number; filterSynthetic: boolean }
  /** A user rule from the YAML config: a gate per allowed caption source, and which source wins. */
  | { kind: 'custom'; gates: Partial<Record<CaptionSource, Gate>>; prefer: CaptionSource };

/**
 * When a source's caption may be used: its score in the pool's top `fraction`; at least an absolute `min`; at
 * least the threshold of the other source (`sameAs`, like the paper's filtered mix); or always (`all`).
 */
export type Gate = { fraction: number } | { min: number } | { sameAs: CaptionSource } | { all: true };

export interface Preset {
  name: string;
  description: string;
  rule: (fraction?: number) => Rule;
  /** The preset intersects its rule with DataComp's image-cluster filter (needs filters.imageCluster). */
  imageCluster?: boolean;
}

export function presetNeedsImageCluster(name: string): boolean {
  return PRESETS.find((p) => p.name === name)?.imageCluster === true;
}

export const PRESETS: readonly Preset[] = [
  { name: 'raw', description: 'keep all, raw caption (no filtering baseline)', rule: () => ({ kind: 'all', source: 'raw' }) },
  {
    name: 'raw-top30',
    description: 'keep if s_raw >= tau_raw(0.3), raw caption (DataComp CLIP-score filter)',
    rule: () => ({ kind: 'top', source: 'raw', fraction: 0.3 }),
  },
  {
    name: 'raw-top30-in1k',
    description: 'raw-top30 ∩ image-cluster filter (filters.imageCluster: nearest centroid in the ImageNet-1k target set)',
    rule: () => ({ kind: 'top', source: 'raw', fraction: 0.3 }),
    imageCluster: true,
  },
  { name: 'synthetic', description: 'keep all, synthetic caption', rule: () => ({ kind: 'all', source: 'synthetic' }) },
  {
    name: 'synthetic-top50',
    description: 'keep if s_syn >= tau_syn(0.5), synthetic caption',
    rule: () => ({ kind: 'top', source: 'synthetic', fraction: 0.5 }),
  },
  {
    name: 'synthetic-top75-in1k',
    description: 'keep if s_syn >= tau_syn(0.75) ∩ image-cluster filter, synthetic caption',
    rule: () => ({ kind: 'top', source: 'synthetic', fraction: 0.75 }),
    imageCluster: true,
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

export const CUSTOM_PRESET = 'custom';

export function resolveRule(preset: string, fraction?: number, custom?: Extract<Rule, { kind: 'custom' }>): Rule {
  if (preset === CUSTOM_PRESET) {
    if (!custom) throw new Error('preset "custom" needs strategy.custom');
    return custom;
  }
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
    case 'custom': {
      const out: ThresholdSpec[] = [];
      for (const src of ['raw', 'synthetic'] as const) {
        const g = rule.gates[src];
        if (g && 'fraction' in g) out.push({ source: src, fraction: g.fraction });
      }
      return out;
    }
  }
}

/** What a rule reads per sample: whether it may choose the synthetic caption, and whose CLIP scores it compares. */
export function ruleInputs(rule: Rule): { synthetic: boolean; scores: Set<CaptionSource> } {
  const scores = new Set<CaptionSource>(thresholdsNeeded(rule).map((t) => t.source));
  switch (rule.kind) {
    case 'all':
      return { synthetic: rule.source === 'synthetic', scores };
    case 'top':
      return { synthetic: rule.source === 'synthetic', scores: scores.add(rule.source) };
    case 'mix':
      if (rule.filterSynthetic) scores.add('synthetic');
      return { synthetic: true, scores: scores.add('raw') };
    case 'custom':
      for (const [src, g] of Object.entries(rule.gates) as Array<[CaptionSource, Gate]>) if (!('all' in g)) scores.add(src);
      return { synthetic: rule.gates.synthetic !== undefined, scores };
  }
}

export function thresholdKey(t: ThresholdSpec): string {
  return `${t.source}@${t.fraction}`;
}

/** The rule of a run config's strategy section (preset, fraction, custom rule). */
export function ruleOf(strategy: { preset: string; fraction?: number; custom?: { raw?: Gate; synthetic?: Gate; prefer: CaptionSource } }): Rule {
  const custom = strategy.custom ? { kind: 'custom' as const, gates: { ...(strategy.custom.raw ? { raw: strategy.custom.raw } : {}), ...(strategy.custom.synthetic ? { synthetic: strategy.custom.synthetic } : {}) }, prefer: strategy.custom.prefer } : undefined;
  return resolveRule(strategy.preset, strategy.fraction, custom);
}
