// The checker's strategy interface. A kernel Strategy decides one execution; an
// Explorer decides a whole campaign: it is told when each execution begins (by
// index, so seeded strategies can be split across workers by index range) and sees
// every choice point and, if it wants, every step of the explored phase.
import { Op, ReplayDivergence, type Task } from '../../kernel/index.js';

export interface Explorer {
  readonly name: string;
  /**
   * Prepares execution `index` of the campaign. Returns false when a systematic
   * explorer has nothing left to explore (the campaign is complete).
   */
  begin(index: number): boolean;
  /**
   * Chooses one of tasks[0..n) (n >= 2, spawn order); `step` is the index of the
   * step about to run within the explored phase, `prev` the task that ran the last one.
   */
  pick(tasks: readonly Task[], n: number, step: number, prev: Task | null): number;
  /**
   * Every step of the explored phase, before it executes (t.op / t.obj pending).
   * `accessed`: with tracksAccesses, the heap objects the previous step touched.
   */
  onStep?(t: Task, step: number, spawned: number, accessed?: readonly object[] | null): void;
  /** Wants the heap objects each step touches (the kernel then watches them). */
  readonly tracksAccesses?: boolean;
  /** The execution ended (normally, at a bug, or aborted); `pending`: tasks still live; `accessed` as for onStep. */
  end?(pending?: readonly Task[], accessed?: readonly object[] | null): void;
  /** Seeded explorers with a step count to learn (PCT): called after a calibration run. */
  calibrate?(steps: number, tasks: number): void;
  /** Whether executions are independent given their index (can be split by range). */
  readonly seeded: boolean;
}

/** Thrown by an explorer to abandon an execution that can only repeat explored ones. */
export class Redundant extends Error {
  constructor() {
    super('redundant execution (sleep-set blocked)');
    this.name = 'Redundant';
  }
}

/** The seed of execution `index` of a campaign seeded with `seed` (splitmix-style). */
export function executionSeed(seed: number, index: number): number {
  let z = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** A preemption: switching away from a task that could have continued. */
export function isPreemption(tasks: readonly Task[], n: number, chosen: Task, prev: Task | null): boolean {
  if (prev === null || chosen === prev) return false;
  for (let i = 0; i < n; i++) if (tasks[i] === prev) return true;
  return false;
}

/**
 * The enabled tasks at a choice point with what each is about to do (op, and the lock
 * class for lock operations), as one number. Systematic explorers replay prefixes from scratch:
 * in a deterministic scenario a replayed choice point has the same fingerprint, so a
 * different one means the scenario is not deterministic (and a "proof" would not be one).
 */
export function enabledFingerprint(tasks: readonly Task[], n: number): number {
  let h = n;
  for (let i = 0; i < n; i++) {
    const t = tasks[i]!;
    h = (Math.imul(h, 31) + t.id) | 0;
    const op = t.op;
    h = (Math.imul(h, 31) + op) | 0;
    // Only locks are looked into: other operands may be freed (poisoned) heap objects.
    if (op >= Op.LOCK && op <= Op.UP_WRITE) h = (Math.imul(h, 31) + (t.obj as { cls: { id: number } }).cls.id) | 0;
  }
  return h;
}

/** A replayed prefix that did not behave as its first visit: `where` names the explorer and the point. */
export function notDeterministic(where: string, what: string): ReplayDivergence {
  return new ReplayDivergence(`${where}: ${what} (the scenario is not deterministic: module state, Math.random, Date.now or I/O?)`);
}
