// One execution of a scenario: setup (sequential, first-come) then the explored
// phase, where every choice between two or more enabled tasks goes to an Explorer.
import {
  FirstComeStrategy,
  Lockdep,
  RunStatus,
  buildDeadlockReport,
  type Bug,
  type Kernel,
  type PickContext,
  type Strategy,
  type Task,
} from '../kernel/index.js';
import { ReplayDivergence, WorldSnapshot } from '../kernel/index.js';
import { makeEnv, type AnyScenario, type PieceOverrides, type TaskResult, type World } from './scenario.js';
import { Redundant, isPreemption, type Explorer } from './strategies/explorer.js';

export interface ExecOptions {
  readonly scenario: AnyScenario;
  readonly pieces: PieceOverrides;
  readonly profile: string;
  readonly explorer: Explorer;
  readonly lockdep: Lockdep;
  /** Record the kernel's trace lines of the explored phase. */
  readonly trace?: boolean;
  /** Keep going after a bug (report replays); default false: stop at the first. */
  readonly continueAfterBug?: boolean;
  /** Record held locks per step (for involvedTasks). */
  readonly record?: boolean;
  /**
   * The campaign's setup cache: the first execution boots and captures the world
   * after setup; later ones restore it in place instead of booting (same scenario,
   * profile, pieces and lockdep for every execution that shares the cache).
   */
  readonly setupCache?: SetupCache;
}

/** A world booted once per campaign and restored before each execution (see WorldSnapshot). */
export class SetupCache {
  world: World | null = null;
  snapshot: WorldSnapshot | null = null;
  /** Why the world could not be captured (then every execution boots). */
  unusable: string | null = null;
  /** Executions that ran on a restored world. */
  restores = 0;
}

export type ExecStatus = 'done' | 'deadlock' | 'bug' | 'livelock' | 'redundant' | 'idle';

export interface ExecResult {
  readonly status: ExecStatus;
  /** Bugs of the explored phase and the end-of-run properties, in order. */
  readonly bugs: readonly Bug[];
  /** Steps of the explored phase. */
  readonly steps: number;
  /** Task id chosen at each choice point of the explored phase. */
  readonly choices: number[];
  /** For each choice point: was it a preemption? */
  readonly preempted: boolean[];
  readonly preemptions: number;
  /** Task id of each explored step (recording runs only, like the next four). */
  readonly stepTasks: number[];
  /** Name of each task id that ran in the explored phase ('' for the others). */
  readonly taskNames: string[];
  /** Tasks spawned by the end of the execution, setup included (PCT's n). */
  readonly spawned: number;
  /** Explored-phase trace lines (when options.trace). */
  readonly trace: string[];
  /** Tasks in the deadlock cycle (or blocked forever), when the run deadlocked. */
  readonly deadlocked: readonly string[];
  /** Names of the lock/object each step touched ('' if none), per step. */
  readonly stepObjects: string[];
  /** Per explored step: was it a choice point? */
  readonly stepChoice: boolean[];
  readonly stepHeld: string[][];
  /** Kernel step count when the explored phase began (bug.step - stepBase = explored step). */
  readonly stepBase: number;
  readonly world: World | null;
}

/** The kernel Strategy for one execution: first-come during setup, then the explorer. */
class Control implements Strategy {
  readonly name = 'check';
  running = false;
  base = 0;
  k: Kernel | null = null;
  readonly choices: number[] = [];
  readonly preempted: boolean[] = [];
  preemptions = 0;
  readonly stepTasks: number[] = [];
  readonly stepObjects: string[] = [];
  readonly stepChoice: boolean[] = [];
  /** Held lock classes at each step (only when recording: minimisation, reports). */
  readonly stepHeld: string[][] = [];
  /** Names by task id of the tasks that stepped (recording runs). */
  readonly names: string[] = [];
  record = false;
  private pickedAt = -1;
  private readonly fc = new FirstComeStrategy();
  /** The explorer wants the heap objects each step touches (DPOR). */
  readonly tracks: boolean;
  constructor(readonly explorer: Explorer) {
    this.tracks = explorer.tracksAccesses === true;
  }
  pick(runnable: readonly Task[], n: number, ctx: PickContext): number {
    if (!this.running) return this.fc.pick(runnable, n, ctx);
    const i = this.explorer.pick(runnable, n, ctx.steps - this.base, ctx.previous);
    const t = runnable[i]!;
    const p = isPreemption(runnable, n, t, ctx.previous);
    if (p) this.preemptions++;
    this.preempted.push(p);
    this.choices.push(t.id);
    this.pickedAt = ctx.steps;
    return i;
  }
  readonly onStep = (t: Task): void => {
    if (!this.running || (!this.record && this.explorer.onStep === undefined)) return;
    const k = this.k!;
    if (this.record) {
      // Per-step detail for reports and minimisation only: campaigns skip it.
      this.stepTasks.push(t.id);
      this.names[t.id] = t.name;
      this.stepChoice.push(this.pickedAt === k.steps - 1);
      this.stepHeld.push(t.held.map((h) => h.cls.name));
      const o = t.obj as { cls?: { name: string }; name?: string } | null;
      this.stepObjects.push(o && typeof o === 'object' ? (o.cls?.name ?? (typeof o.name === 'string' ? o.name : '')) : '');
    }
    this.explorer.onStep?.(t, k.steps - this.base - 1, k.spawned, this.tracks ? k.takeAccesses() : null);
  };
}

export function runExecution(o: ExecOptions): ExecResult {
  const ctl = new Control(o.explorer);
  ctl.record = o.record ?? false;
  const kernelOpts = {
    strategy: ctl,
    lockdep: o.lockdep,
    onStep: ctl.onStep,
    trace: o.trace ?? false,
    // Finished tasks are garbage: the checker names tasks from its own step records,
    // and a world snapshot then holds none of setup's tasks.
    retainTasks: false,
    // The explorer records the explored phase's choices itself (ctl.choices).
    recordChoices: false,
    stopOnBug: !o.continueAfterBug,
    ...(o.scenario.maxSteps ? { maxSteps: o.scenario.maxSteps } : {}),
  };
  // Before setup: boot acquisitions are held to the documented order too.
  if (o.scenario.lockOrder) o.lockdep.declareOrder(o.scenario.lockOrder);
  const cache = o.setupCache;
  let w: World;
  if (cache?.snapshot) {
    cache.snapshot.restore();
    cache.restores++;
    w = cache.world!;
    w.k.rebind(kernelOpts);
  } else {
    const env = makeEnv(kernelOpts, o.scenario.profile ?? o.profile, o.pieces);
    w = o.scenario.setup(env) as World;
    const k0 = w.k;
    if (k0.bugs.length > 0) throw new Error(`scenario ${o.scenario.name}: setup reported a bug:\n${k0.bugs[0]!.text}`);
    // Objects that exist before the explored phase are not leaks of it.
    if (o.scenario.leakCheck) for (const [obj] of k0.lifetime.liveObjects()) k0.kmemleak_not_leak(obj);
    if (cache && cache.unusable === null) {
      // Suspended generators cannot be rolled back: only a quiescent world is captured.
      if (k0.liveTasks().length > 0) cache.unusable = `setup left tasks running: ${k0.liveTasks().map((t) => t.name).join(', ')}`;
      else {
        cache.snapshot = WorldSnapshot.capture([w], new Set<object>([ctl, o.explorer, o.lockdep]));
        cache.world = w;
      }
    }
  }
  const k = w.k;
  const traceBase = k.trace.length;
  const bugBase = k.bugs.length;
  ctl.k = k;
  ctl.base = k.steps;
  ctl.running = true;
  // DPOR relates a kfree to the steps that touched the object: the kernel logs them.
  if (ctl.tracks) k.trackAccesses(true);
  const spawned: Task[] = [];
  for (const [name, body] of o.scenario.tasks(w)) spawned.push(k.spawn(name, body));
  let status: ExecStatus;
  try {
    const st = k.run();
    status = st === RunStatus.DONE ? 'done' : st === RunStatus.DEADLOCK ? 'deadlock' : st === RunStatus.LIVELOCK ? 'livelock' : st === RunStatus.IDLE ? 'idle' : 'bug';
  } catch (e) {
    if (e instanceof Redundant) status = 'redundant';
    else if (e instanceof ReplayDivergence) throw e;
    else throw e;
  }
  ctl.running = false;
  const accessed = ctl.tracks ? k.takeAccesses() : null;
  k.trackAccesses(false);
  o.explorer.end?.(status === 'redundant' ? [] : k.liveTasks(), accessed);
  let deadlocked: readonly string[] = [];
  if (status === 'deadlock' || (status === 'idle' && k.liveTasks().length > 0)) deadlocked = buildDeadlockReport(k.liveTasks(), k.release).tasks;
  const allDone = spawned.every((t) => t.done);
  if (allDone && status !== 'redundant' && (k.bugs.length === bugBase || o.continueAfterBug)) {
    // End-of-run properties: leaks, then the scenario's own checks.
    if (o.scenario.leakCheck) k.kmemleak_scan();
    if (o.scenario.check) {
      const results = new Map<string, TaskResult>();
      for (const t of spawned) results.set(t.name, { name: t.name, done: t.done, value: t.exitValue, error: t.error });
      const r = o.scenario.check(w, results);
      const msgs = r === undefined ? [] : typeof r === 'string' ? [r] : r;
      for (const m of msgs) k.invariant(o.scenario.name, m);
    }
    if (k.bugs.length > bugBase && status === 'done') status = 'bug';
  }
  // (A plain loop: Array.from over an array-like cost ~4 µs per execution.)
  const taskNames: string[] = [];
  for (let i = 0; i < k.spawned; i++) taskNames.push(ctl.names[i] ?? '');
  return {
    status,
    bugs: k.bugs.slice(bugBase),
    steps: k.steps - ctl.base,
    choices: ctl.choices,
    preempted: ctl.preempted,
    preemptions: ctl.preemptions,
    stepTasks: ctl.stepTasks,
    taskNames,
    spawned: k.spawned,
    trace: o.trace ? k.trace.slice(traceBase) : [],
    deadlocked,
    stepObjects: ctl.stepObjects,
    stepChoice: ctl.stepChoice,
    stepHeld: ctl.stepHeld,
    stepBase: ctl.base,
    world: w,
  };
}

/**
 * The bug a failing execution is about: the first one that is not a lockdep report
 * (a real deadlock, a use-after-free, ...), else the first lockdep report.
 */
export function primaryBug(r: ExecResult): Bug | null {
  return r.bugs.find((b) => b.kind !== 'lockdep') ?? r.bugs[0] ?? null;
}

/** A fresh lockdep for single-execution runs (minimisation, replay). */
export function freshLockdep(on = true): Lockdep {
  return new Lockdep(on);
}
