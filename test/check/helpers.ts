// Small lock programs for the checker's tests: each task runs critical sections over
// a few mutexes; the world logs the order in which each lock was acquired.
import type { KGen, Mutex } from '../../src/kernel/index.js';
import { Lockdep } from '../../src/kernel/index.js';
import assert from 'node:assert/strict';
import { runExecution, type ExecResult, type Explorer, type Scenario, type World } from '../../src/check/index.js';
import { main } from '../../src/cli/main.js';

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

/**
 * Runs an explorer over a scenario until it has nothing left (or `max` executions),
 * lockdep off, each result to `visit`; returns the number of executions.
 */
export function exploreAll<W extends World>(s: Scenario<W>, ex: Explorer, visit: (r: ExecResult) => void, max = 1_000_000): number {
  let executions = 0;
  while (executions < max && ex.begin(executions)) {
    visit(runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) }));
    executions++;
  }
  return executions;
}

/** Runs an explorer to exhaustion; returns executions, redundant ones and distinct lock-order classes. */
export function exhaust(s: Scenario<LockWorld>, ex: Explorer, max = 1_000_000): { executions: number; redundant: number; classes: Set<string> } {
  const classes = new Set<string>();
  let redundant = 0;
  const executions = exploreAll(
    s,
    ex,
    (r) => {
      if (r.status === 'redundant') {
        redundant++;
        return;
      }
      const per: Record<string, string[]> = {};
      for (const e of (r.world as LockWorld).log) {
        const [t, l] = e.split(':');
        (per[l!] ??= []).push(t!);
      }
      classes.add(JSON.stringify(per) + r.status);
    },
    max,
  );
  return { executions, redundant, classes };
}

/** `apsim check ARGS` in-process: exit code and the captured stdout/stderr. */
export async function checkCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return checkCliOn(false, ...args);
}

/** The same, on a terminal or not (progress bar). */
export async function checkCliOn(tty: boolean, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['check', ...args], (s) => (out += s), (s) => (err += s), tty);
  return { code, out, err };
}

/** `apsim check --mutant NAME` fails (exit 1) and its --replay token reproduces the report byte for byte. */
export async function assertMutantReplays(mutant: string): Promise<void> {
  const r = await checkCli('--mutant', mutant);
  assert.equal(r.code, 1);
  const report = r.out.slice(r.out.indexOf('apsim check: '));
  const token = /--replay (apsim1-[A-Za-z0-9_-]+)/.exec(report)![1]!;
  const again = await checkCli('--replay', token);
  assert.equal(again.code, 1);
  assert.equal(again.out, report);
}
