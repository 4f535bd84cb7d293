/**
 * Seeded random numbers. A seed string (e.g. `${runSeed}:${uid}`) is hashed with SHA-256 into the full 128-bit
 * state of a xoroshiro128+ generator (pure-rand), so distinct seeds get independent streams and the same seed
 * always reproduces the same numbers on any machine.
 */
import { createHash } from 'node:crypto';
import { xoroshiro128plus, type RandomGenerator } from 'pure-rand';

export class SeededRng {
  private readonly gen: RandomGenerator;

  constructor(seed: string) {
    const digest = createHash('sha256').update(seed, 'utf8').digest();
    // Four signed 32-bit words; an all-zero state is impossible in practice for SHA-256 output.
    const state = [0, 4, 8, 12].map((o) => digest.readInt32LE(o));
    this.gen = xoroshiro128plus.fromState(state);
  }

  /** Uniform in [0, 1) with 53 random bits (high bits of two draws; xoroshiro's low bits are the weak ones). */
  nextDouble(): number {
    const hi = this.gen.unsafeNext() >>> 5; // 27 bits
    const lo = this.gen.unsafeNext() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}
