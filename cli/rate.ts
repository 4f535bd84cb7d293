/**
 * Throughput and ETA of a running run's current shard phase, as `recaption status` states them. Honest by
 * construction: only what THIS execution processed in the current phase counts (shards found committed are
 * skipped in no time and would flatter the rate), over the time since the phase began; the ETA assumes every
 * remaining shard needs the same work, so it is an upper bound when some of them turn out committed.
 */
import { PHASE_STAGES, type ShardPhase, type ShardStage } from '../lib/run/stages';
import type { LiveProgress } from './runs';

export interface PhaseRate {
  phase: ShardPhase;
  /** Seconds since this execution began the phase. */
  elapsedSeconds: number;
  /** Shards this execution processed through the phase (not found committed). */
  processedShards: number;
  /** Samples the phase's first stage read in those shards. */
  processedSamples: number;
  samplesPerSecond: number;
  shardsPerSecond: number;
  /** Shards of the phase not handled yet. */
  remainingShards: number;
  /** null until a shard has been processed. */
  etaSeconds: number | null;
}

export function phaseRate(p: LiveProgress, nowMs: number): PhaseRate | null {
  if ((p.phase !== 'annotate' && p.phase !== 'select') || p.phaseStartedAt === undefined || p.shards === 0) return null;
  const stages = PHASE_STAGES[p.phase];
  const first = stages[0]!;
  const last = stages[stages.length - 1]!;
  const s = p.stages;
  const elapsedSeconds = Math.max((nowMs - p.phaseStartedAt) / 1000, 1e-3);
  const processedShards = s[last].done - s[last].skipped;
  const failedInPhase = stages.reduce((n, st: ShardStage) => n + s[st].failed, 0);
  // Shards that never reach this phase's stages: failed in an earlier execution (kept), or in this execution's annotate phase.
  const outOfPhase = (p.failedBefore ?? 0) + (p.phase === 'select' ? s.annotate.failed : 0);
  const remainingShards = Math.max(0, p.shards - s[last].done - failedInPhase - outOfPhase);
  const shardsPerSecond = processedShards / elapsedSeconds;
  return {
    phase: p.phase,
    elapsedSeconds,
    processedShards,
    processedSamples: s[first].samples,
    samplesPerSecond: s[first].samples / elapsedSeconds,
    shardsPerSecond,
    remainingShards,
    etaSeconds: processedShards > 0 ? remainingShards / shardsPerSecond : remainingShards === 0 ? 0 : null,
  };
}

/** 3725 → "1h02m", 75 → "1m15s", 8.2 → "8s". */
export function formatDuration(seconds: number): string {
  const t = Math.round(seconds);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  const h = Math.floor(t / 3600);
  return h < 48 ? `${h}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}
