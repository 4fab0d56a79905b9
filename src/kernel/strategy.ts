// Scheduling strategies. The scheduler consults a strategy only when two or more
// tasks are enabled; `runnable` is always in spawn order, so a strategy's choice is
// a pure function of its own state and the run's history (determinism).
import type { Task } from './task.js';
import { Prng } from './prng.js';

export interface PickContext {
  /** Scheduler steps so far in this execution. */
  readonly steps: number;
  /** The task that ran the previous step (null at the start). */
  readonly previous: Task | null;
  /** Choices recorded so far in this execution. */
  readonly choiceCount: number;
}

export interface Strategy {
  readonly name: string;
  /**
   * Choose one of runnable[0..n) (n >= 2) and return its index. The buffer is
   * reused by the scheduler: do not keep it.
   */
  pick(runnable: readonly Task[], n: number, ctx: PickContext): number;
  /** Called by a Kernel when an execution begins (strategies are reusable). */
  begin?(): void;
}

/**
 * Live mode: non-preemptive; the running task continues while it can, otherwise the
 * task that has waited longest (least recently run) goes next.
 */
export class FirstComeStrategy implements Strategy {
  readonly name = 'first-come';
  pick(runnable: readonly Task[], n: number, ctx: PickContext): number {
    let best = 0;
    for (let i = 0; i < n; i++) {
      const t = runnable[i]!;
      if (t === ctx.previous) return i;
      if (t.lastRun < runnable[best]!.lastRun) best = i;
    }
    return best;
  }
}

/** Uniform random choice at every point, from a seeded PRNG. */
export class RandomStrategy implements Strategy {
  readonly name = 'random';
  rng: Prng;
  constructor(readonly seed: number) {
    this.rng = new Prng(seed);
  }
  begin(): void {}
  pick(_runnable: readonly Task[], n: number): number {
    return this.rng.nextInt(n);
  }
}

/** Thrown when a replayed choice list does not fit the execution. */
export class ReplayDivergence extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayDivergence';
  }
}

/**
 * Replays a recorded list of task ids (one per choice point). After the list is
 * exhausted it continues like first-come, so a prefix can be replayed and the rest
 * run deterministically.
 */
export class ReplayStrategy implements Strategy {
  readonly name = 'replay';
  private i = 0;
  private readonly fallback = new FirstComeStrategy();
  constructor(
    readonly choices: readonly number[],
    readonly strict = true,
  ) {}
  begin(): void {
    this.i = 0;
  }
  pick(runnable: readonly Task[], n: number, ctx: PickContext): number {
    if (this.i >= this.choices.length) {
      if (this.strict) throw new ReplayDivergence(`replay exhausted after ${this.i} choices but the execution continues`);
      return this.fallback.pick(runnable, n, ctx);
    }
    const want = this.choices[this.i++]!;
    for (let k = 0; k < n; k++) if (runnable[k]!.id === want) return k;
    throw new ReplayDivergence(
      `replay diverged at choice ${this.i - 1}: task #${want} is not runnable (runnable: ${Array.from({ length: n }, (_, k) => '#' + runnable[k]!.id).join(' ')})`,
    );
  }
  /** Choices consumed so far. */
  get position(): number {
    return this.i;
  }
}

/** Preempts at every choice point: the least recently run task goes next. */
export class RoundRobinStrategy implements Strategy {
  readonly name = 'round-robin';
  pick(runnable: readonly Task[], n: number): number {
    let best = 0;
    for (let i = 1; i < n; i++) if (runnable[i]!.lastRun < runnable[best]!.lastRun) best = i;
    return best;
  }
}
