// npm run bench -- runtime
// Scheduler throughput on the synthetic lock scenario of issue 2 / checker-anchors §4:
// 5 tasks x 10 critical sections, each section taking 2 of 4 mutexes (in a global
// order, so no execution deadlocks), seeded random strategy, lockdep off and on.
import { Kernel, Lockdep, RandomStrategy, Prng, type KGen, type Mutex } from '../src/kernel/index.js';

const TASKS = 5;
const SECTIONS = 10;
const LOCKS = 4;

/** Lock pairs per (task, section), fixed for the whole benchmark. */
function plan(seed: number): number[][][] {
  const rng = new Prng(seed);
  return Array.from({ length: TASKS }, () =>
    Array.from({ length: SECTIONS }, () => {
      const a = rng.nextInt(LOCKS);
      let b = rng.nextInt(LOCKS - 1);
      if (b >= a) b++;
      return a < b ? [a, b] : [b, a];
    }),
  );
}

function* worker(k: Kernel, locks: Mutex[], sections: number[][]): KGen<void> {
  for (const [a, b] of sections) {
    yield k.mutex_lock(locks[a!]!);
    yield k.mutex_lock(locks[b!]!);
    yield k.mutex_unlock(locks[b!]!);
    yield k.mutex_unlock(locks[a!]!);
  }
}

function execution(p: number[][][], strategy: RandomStrategy, lockdep: Lockdep): number {
  const k = new Kernel({ strategy, lockdep });
  const locks = Array.from({ length: LOCKS }, (_, i) => k.mutex_init(`lock${i}`));
  for (let t = 0; t < TASKS; t++) k.spawn(`t${t}`, worker(k, locks, p[t]!));
  k.run();
  if (k.bugs.length) throw new Error(k.bugs[0]!.text);
  return k.steps;
}

function measure(lockdepOn: boolean, seconds: number): { steps_per_sec: number; executions_per_sec: number; steps_per_execution: number; executions: number } {
  const p = plan(42);
  const lockdep = new Lockdep(lockdepOn);
  const strategy = new RandomStrategy(1);
  // warm-up
  for (let i = 0; i < 2000; i++) execution(p, strategy, lockdep);
  let steps = 0;
  let execs = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < limit) {
    for (let i = 0; i < 500; i++) {
      steps += execution(p, strategy, lockdep);
      execs++;
    }
    elapsed = process.hrtime.bigint() - t0;
  }
  const s = Number(elapsed) / 1e9;
  return { steps_per_sec: Math.round(steps / s), executions_per_sec: Math.round(execs / s), steps_per_execution: steps / execs, executions: execs };
}

// Alternate the two configurations and keep each one's median round, so JIT warm-up
// order does not favour whichever runs second.
const seconds = Number(process.argv[2] ?? 1);
const rounds = 5;
const offs: ReturnType<typeof measure>[] = [];
const ons: ReturnType<typeof measure>[] = [];
for (let r = 0; r < rounds; r++) {
  offs.push(measure(false, seconds));
  ons.push(measure(true, seconds));
}
const median = (xs: ReturnType<typeof measure>[]) => [...xs].sort((a, b) => a.steps_per_sec - b.steps_per_sec)[xs.length >> 1]!;
const off = median(offs);
const on = median(ons);
const result = {
  benchmark: 'runtime',
  scenario: `${TASKS} tasks x ${SECTIONS} critical sections, 2 of ${LOCKS} mutexes each, seeded random`,
  node: process.version,
  lockdep_off: off,
  lockdep_on: on,
  steps_per_sec: off.steps_per_sec,
  executions_per_sec: off.executions_per_sec,
  steps_per_sec_lockdep: on.steps_per_sec,
  executions_per_sec_lockdep: on.executions_per_sec,
  lockdep_overhead_pct: Math.round((1 - on.steps_per_sec / off.steps_per_sec) * 1000) / 10,
  targets: { steps_per_sec: 3_000_000, steps_per_sec_lockdep: 2_500_000 },
};
console.log(JSON.stringify(result));
