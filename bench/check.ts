// npm run bench -- check
// (a) the synthetic 5-task lock scenario shaped like the Promela model of
//     checker-anchors §3 (locks5), default strategy; (b) a real scenario with 5 tasks
//     of the real vfio_ap driver (vfio-ap:ioctls-vs-cdoms: VFIO_DEVICE_RESET, SET_IRQS,
//     control domain assign/unassign and an ap_config write with guest 1 attached), with
//     world snapshots (default), split across one worker thread per CPU, and with
//     --fresh-setup (a boot per execution); (c) for every
//     mutant, executions and milliseconds to detection with the default strategy;
//     (d) the execution in which lockdep reports the seed-003 inversion; (e) DPOR proofs
//     of the exhaustive scenarios; (f) checker-anchors T10: 10^6 steps of 8 tasks over
//     50 mutexes in one campaign. One JSON object on the last line.
//     Arguments: seconds measured per throughput figure (2), seconds of warm-up (2).
import { availableParallelism } from 'node:os';
import { getScenario, listMutants, listScenarios, locks5, registerBuiltins, runCampaign, type AnyScenario } from '../src/check/index.js';
import { mergeResults, runInWorker, splitRange } from '../src/check/workers.js';
import { WorldSnapshot, type KGen, type Mutex } from '../src/kernel/index.js';
import type { Scenario, World } from '../src/check/index.js';

registerBuiltins();
const seconds = Number(process.argv[2] ?? 2);
/** Warm-up seconds per throughput figure (argv[3]). */
const warmup = Number(process.argv[3] ?? 2);

/**
 * Steady-state throughput of the default strategy on one scenario. Warm-up first, by
 * time: V8 keeps compiling this code for the first few thousand executions (measured:
 * TurboFan compiles go on until ~6,000 executions of (b)), and a checker campaign runs
 * far longer than that. Then campaigns of 5,000 executions — `apsim check --time` runs
 * one campaign per scenario — so the fixed cost of a campaign (boot, PCT's calibration
 * run, snapshot capture; reported separately as campaign_setup_ms) is spread as it is
 * in a real run.
 */
function throughput(
  s: AnyScenario,
  snapshot = true,
): { steps_per_sec: number; executions_per_sec: number; steps_per_execution: number; executions: number; campaign_setup_ms: number } {
  const tw = process.hrtime.bigint();
  for (let seed = 1000; Number(process.hrtime.bigint() - tw) / 1e9 < warmup; seed++) runCampaign({ scenario: s, strategy: 'portfolio', seed, executions: snapshot ? 1000 : 100, snapshot });
  const batch = snapshot ? 5000 : 500;
  let steps = 0;
  let execs = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(Math.round(seconds * 1e9));
  let seed = 1;
  while (process.hrtime.bigint() - t0 < limit) {
    const r = runCampaign({ scenario: s, strategy: 'portfolio', seed: seed++, executions: batch, snapshot });
    if (r.failure) throw new Error(r.failure.report);
    steps += r.coverage.steps;
    execs += r.coverage.executions;
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  // One-execution campaigns: what every campaign pays before its executions.
  const tc = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) runCampaign({ scenario: s, strategy: 'portfolio', seed: i, executions: 1, snapshot });
  const setupMs = Number(process.hrtime.bigint() - tc) / 1e6 / 20;
  return {
    steps_per_sec: Math.round(steps / sec),
    executions_per_sec: Math.round(execs / sec),
    steps_per_execution: Math.round((steps / execs) * 10) / 10,
    executions: execs,
    campaign_setup_ms: Math.round(setupMs * 10) / 10,
  };
}

const synthetic = throughput(locks5(10, 'locks5-flat', true));
const syntheticFrames = throughput(getScenario('locks5')!);
const real = throughput(getScenario('vfio-ap:ioctls-vs-cdoms')!);

/**
 * Where an execution of (b) goes: the world restore and the scenario's end-of-run
 * checks timed in place (a wrapper around each, bench-only), the rest is the explored
 * phase itself (driver, scheduler, strategy, lockdep).
 */
function breakdown(s: AnyScenario): { restore: number; end_of_run_checks: number; explored_phase_and_rest: number; total: number } {
  const restore = WorldSnapshot.prototype.restore;
  let tr = 0n;
  let tc = 0n;
  WorldSnapshot.prototype.restore = function (this: WorldSnapshot): void {
    const t = process.hrtime.bigint();
    restore.call(this);
    tr += process.hrtime.bigint() - t;
  };
  const check = s.check!;
  const timed: AnyScenario = {
    ...s,
    check: (w, r) => {
      const t = process.hrtime.bigint();
      const out = check(w, r);
      tc += process.hrtime.bigint() - t;
      return out;
    },
  };
  try {
    let execs = 0;
    const t0 = process.hrtime.bigint();
    for (let seed = 1; seed <= 8; seed++) execs += runCampaign({ scenario: timed, strategy: 'portfolio', seed, executions: 500 }).coverage.executions;
    const all = Number(process.hrtime.bigint() - t0) / 1e3 / execs;
    const us = (x: bigint) => Math.round((Number(x) / 1e3 / execs) * 10) / 10;
    return { restore: us(tr), end_of_run_checks: us(tc), explored_phase_and_rest: Math.round((all - us(tr) - us(tc)) * 10) / 10, total: Math.round(all * 10) / 10 };
  } finally {
    WorldSnapshot.prototype.restore = restore;
  }
}
const realBreakdown = breakdown(getScenario('vfio-ap:ioctls-vs-cdoms')!);

/**
 * checker-anchors T10 (scale): 8 tasks over 50 mutexes, 20 critical sections each, a
 * section two of the mutexes taken in index order (so no deadlock) around a local
 * step; one default-strategy campaign of at least 10^6 steps, timed whole (setup and
 * PCT's calibration run included).
 */
function scale8x50(): Scenario<World & { readonly locks: Mutex[] }> {
  return {
    name: 'scale-8x50',
    description: 'synthetic: 8 tasks x 20 sections over 50 mutexes (T10)',
    leakCheck: false,
    setup(env) {
      const k = env.kernelOnly();
      return { k, locks: Array.from({ length: 50 }, (_, i) => k.mutex_init(`obj${i}`)) };
    },
    tasks: (w) =>
      Array.from({ length: 8 }, (_, t) => [
        `t${t}`,
        (function* (): KGen<void> {
          const k = w.k;
          for (let i = 0; i < 20; i++) {
            const a = (t * 7 + i * 13) % 50;
            const b = (a + 1 + ((t * 11 + i * 17) % 49)) % 50; // never a
            const [lo, hi] = a < b ? [a, b] : [b, a];
            yield k.mutex_lock(w.locks[lo]!);
            yield k.mutex_lock(w.locks[hi]!);
            yield k.atomic_read(k.atomic_init(0, 'local'));
            yield k.mutex_unlock(w.locks[hi]!);
            yield k.mutex_unlock(w.locks[lo]!);
          }
        })(),
      ] as const),
  };
}
const t10 = (() => {
  const s = scale8x50();
  const probe = runCampaign({ scenario: s, strategy: 'portfolio', seed: 99, executions: 50 });
  const perExec = probe.coverage.steps / probe.coverage.executions;
  const executions = Math.ceil(1e6 / perExec);
  const t0 = process.hrtime.bigint();
  const r = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions });
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.failure) throw new Error(r.failure.report);
  return { executions, steps: r.coverage.steps, seconds: Math.round(sec * 100) / 100, steps_per_sec: Math.round(r.coverage.steps / sec), lock_classes: r.coverage.lockClasses, lockdep_edges: r.coverage.lockEdges, targets: { seconds_per_million_steps: 5 } };
})();
const realFresh = throughput(getScenario('vfio-ap:ioctls-vs-cdoms')!, false);

// The same campaign split across worker threads (--workers N, one per CPU), wall
// clock including worker start-up and each worker's boot.
const workers = availableParallelism();
const workerExecs = Math.max(4000, Math.round(real.executions_per_sec * seconds * 2));
const tw = process.hrtime.bigint();
const merged = mergeResults(
  await Promise.all(splitRange(0, workerExecs, workers).map(([from, executions]) => runInWorker({ scenario: 'vfio-ap:ioctls-vs-cdoms', strategy: 'portfolio', seed: 7, from, executions, deadline: 0 }))),
);
if (merged.failure) throw new Error(merged.failure.report);
const realWorkers = { workers, executions: merged.coverage.executions, executions_per_sec: Math.round(merged.coverage.executions / (Number(process.hrtime.bigint() - tw) / 1e9)) };

const mutants = listMutants().flatMap((m) =>
  m.scenarios.map((name) => {
    const s = getScenario(name)!;
    const t0 = process.hrtime.bigint();
    // minimise: false is the time to detection; a report render may oops (see README).
    const r = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: s.executions ?? 2000, mutant: m.name, minimise: false });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { mutant: m.name, scenario: name, found: r.failure !== null, kind: r.failure?.bug.kind ?? null, executions: r.failure ? r.failure.execution + 1 : r.coverage.executions, ms_to_detection: Math.round(ms * 10) / 10, preemptions: r.failure?.preemptions ?? null };
  }),
);

const seed003 = runCampaign({ scenario: getScenario('locks5')!, strategy: 'portfolio', seed: 1, executions: 100, mutant: 'seed003-assign-guests-first', minimise: false });
const seed003VfioAp = runCampaign({ scenario: getScenario('vfio-ap:assign-vs-apmask')!, strategy: 'portfolio', seed: 1, executions: 100, mutant: 'seed003-in-use-blocking-abba', minimise: false });

const proofs = listScenarios()
  .filter((s) => s.exhaustive)
  .map((s) => {
    const t0 = process.hrtime.bigint();
    const r = runCampaign({ scenario: s, strategy: 'dpor', seed: 1, executions: 10_000, minimise: false });
    return { scenario: s.name, complete: r.complete, clean: r.failure === null, executions: r.coverage.executions, ms: Math.round(Number(process.hrtime.bigint() - t0) / 1e6) };
  });

for (const p of proofs) console.log(`proof ${p.scenario}: ${p.complete && p.clean ? 'proven' : 'NOT proven (budget)'} in ${p.executions} executions (${p.ms} ms)`);
const result = {
  benchmark: 'check',
  node: process.version,
  synthetic_locks5: { scenario: 'locks5 (flat bodies): 5 tasks x 10 iterations, Promela shape (checker-anchors §3), portfolio, lockdep on', ...synthetic, targets: { steps_per_sec: 3_000_000 } },
  synthetic_locks5_with_function_frames: { scenario: 'locks5 as registered (k.fn frames per driver function)', ...syntheticFrames },
  real_vfio_ap5: {
    scenario: 'vfio-ap:ioctls-vs-cdoms: 5 vfio_ap tasks on the minimal host with guest 1 attached, portfolio; setup (host boot, mdevs, QEMU start) once, the world restored from its snapshot per execution',
    ...real,
    us_per_execution: realBreakdown,
    targets: { executions_per_sec: 10_000 },
  },
  scale_8x50_t10: { scenario: '8 tasks x 20 sections over 50 mutexes, one portfolio campaign of >= 10^6 steps (checker-anchors T10)', ...t10 },
  real_vfio_ap5_workers: { scenario: `the same campaign with --workers ${workers} (one per CPU), wall clock including worker start-up`, ...realWorkers },
  real_vfio_ap5_fresh_setup: { scenario: 'the same with --fresh-setup: host boot + QEMU start per execution', ...realFresh, snapshot_speedup: Math.round((real.executions_per_sec / realFresh.executions_per_sec) * 100) / 100 },
  mutants,
  seed003_lockdep_execution: seed003.failure ? seed003.failure.execution + 1 : null,
  seed003_vfio_ap_lockdep_execution: seed003VfioAp.failure ? seed003VfioAp.failure.execution + 1 : null,
  proofs_summary: {
    scenarios: proofs.length,
    proven: proofs.filter((p) => p.complete && p.clean).length,
    executions: proofs.reduce((a, p) => a + p.executions, 0),
    seconds: Math.round(proofs.reduce((a, p) => a + p.ms, 0) / 100) / 10,
  },
  proofs,
};
console.log(JSON.stringify(result));
