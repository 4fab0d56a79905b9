// Small lock programs for the checker's tests: each task runs critical sections over
// a few mutexes; the world logs the order in which each lock was acquired.
import type { KGen, Mutex } from '../../src/kernel/index.js';
import { Lockdep } from '../../src/kernel/index.js';
import { runExecution, type Explorer, type Scenario, type World } from '../../src/check/index.js';

export interface LockWorld extends World {
  readonly locks: Mutex[];
  readonly log: string[];
}

/** plan[task] = list of sections, each the locks it takes in order. */
export function lockProgram(plan: number[][][], name = 'prog', opts: { trylockSecond?: boolean; local?: boolean } = {}): Scenario<LockWorld> {
  return {
    name,
    description: 'test lock program',
    setup(env) {
      const k = env.kernelOnly();
      return { k, locks: [0, 1, 2, 3].map((i) => k.mutex_init(`L${i}`)), log: [] };
    },
    tasks: (w) =>
      plan.map((secs, ti) => [
        `t${ti}`,
        (function* (): KGen<void> {
          const k = w.k;
          for (const sec of secs) {
            const got: Mutex[] = [];
            for (let i = 0; i < sec.length; i++) {
              const m = w.locks[sec[i]!]!;
              if (i > 0 && opts.trylockSecond) {
                if (!(yield k.mutex_trylock(m))) continue;
              } else yield k.mutex_lock(m);
              got.push(m);
              w.log.push(`${ti}:${sec[i]}`);
            }
            if (opts.local) yield k.atomic_read(k.atomic_init(0, 'local'));
            for (let i = got.length - 1; i >= 0; i--) yield k.mutex_unlock(got[i]!);
          }
        })(),
      ] as const),
  };
}

/** Runs an explorer to exhaustion; returns executions, redundant ones and distinct lock-order classes. */
export function exhaust(s: Scenario<LockWorld>, ex: Explorer, max = 1_000_000): { executions: number; redundant: number; classes: Set<string> } {
  const classes = new Set<string>();
  let executions = 0;
  let redundant = 0;
  while (executions < max && ex.begin(executions)) {
    const r = runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) });
    executions++;
    if (r.status === 'redundant') {
      redundant++;
      continue;
    }
    const per: Record<string, string[]> = {};
    for (const e of (r.world as LockWorld).log) {
      const [t, l] = e.split(':');
      (per[l!] ??= []).push(t!);
    }
    classes.add(JSON.stringify(per) + r.status);
  }
  return { executions, redundant, classes };
}
