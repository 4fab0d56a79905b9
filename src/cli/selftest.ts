// `apsim selftest`: a quick end-to-end check of the runtime a user can run on any
// machine: lockdep must report the classic ABBA in execution 1, seeded random
// exploration must reach the real deadlock, and its replay must be identical.
import { Kernel, Lockdep, RandomStrategy, ReplayStrategy, type KGen, type Mutex } from '../kernel/index.js';

function* path(k: Kernel, name: string, first: Mutex, second: Mutex): KGen {
  yield* k.fn(name, (function* (): KGen {
    yield k.mutex_lock(first);
    yield k.sched_point('between');
    yield k.mutex_lock(second);
    yield k.mutex_unlock(second);
    yield k.mutex_unlock(first);
  })());
}

function execution(strategy: RandomStrategy | ReplayStrategy, lockdep: Lockdep): Kernel {
  const k = new Kernel({ strategy, lockdep, trace: true });
  const a = k.mutex_init('&selftest->a');
  const b = k.mutex_init('&selftest->b');
  k.spawn('path_ab', path(k, 'take_a_then_b', a, b));
  k.spawn('path_ba', path(k, 'take_b_then_a', b, a));
  k.run();
  return k;
}

export function runSelftest(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  let seed = 1;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seed' && i + 1 < args.length && /^\d+$/.test(args[i + 1]!)) seed = Number(args[++i]);
    else {
      err(`apsim selftest: bad argument '${args[i]}' (usage: apsim selftest [--seed N], N a non-negative integer)\n`);
      return 2;
    }
  }
  const lockdep = new Lockdep();
  let lockdepAt = 0;
  let deadlockAt = 0;
  let found: Kernel | null = null;
  for (let e = 1; e <= 1000 && !found; e++) {
    const k = execution(new RandomStrategy(seed * 1000 + e), lockdep);
    if (!lockdepAt && k.bugs.some((b) => b.kind === 'lockdep')) lockdepAt = e;
    if (k.bugs.some((b) => b.kind === 'deadlock')) {
      deadlockAt = e;
      found = k;
    }
  }
  const results: Array<[string, boolean, string]> = [];
  results.push(['lockdep reports the ABBA inversion in execution 1', lockdepAt === 1, `execution ${lockdepAt || 'never'}`]);
  results.push(['random exploration reaches the real deadlock', found !== null, `execution ${deadlockAt || 'none of 1000'}`]);
  if (found) {
    const replay = execution(new ReplayStrategy(found.choices), new Lockdep());
    results.push(['replay of the recorded choices is byte-identical', replay.trace.join('\n') === found.trace.join('\n'), `${found.choices.length} choices`]);
  }
  for (const [what, ok, detail] of results) out(`${ok ? 'ok  ' : 'FAIL'} ${what} (${detail})\n`);
  if (found) out('\n' + found.bugs.find((b) => b.kind === 'deadlock')!.text + '\n');
  return results.every((r) => r[1]) ? 0 : 1;
}
