// Shared test fixtures: a manual virtual clock and machines built from (edited) builtin profiles.
import { Machine, builtinProfile, parseProfile, type HostProfile } from '../../src/hw/index.js';
import { Prng } from '../../src/kernel/prng.js';

export class ManualClock {
  t = 0;
  now = (): number => this.t;
  advance(ns: number): void {
    this.t += ns;
  }
}

export const MS = 1_000_000;

export function makeMachine(name = 'minimal', edit?: (p: HostProfile) => void): { m: Machine; clock: ManualClock } {
  const p = builtinProfile(name);
  edit?.(p);
  const clock = new ManualClock();
  const m = new Machine(parseProfile(p), { now: clock.now, rng: new Prng(42) });
  return { m, clock };
}
