// A simulated kernel thread: a generator body plus the scheduler's bookkeeping.
import type { Mutex } from './locks.js';
import { Op, type KGen } from './ops.js';
import type { LockClass, ChainNode } from './lockdep.js';

export const enum TaskState {
  LIVE = 0,
  DONE = 1,
  FAILED = 2,
}

/** A lock the task holds (lockdep's held_lock). */
export interface HeldLock {
  readonly lock: LockInstance;
  readonly cls: LockClass;
  /** 0 = exclusive, 1 = non-recursive read (down_read), 2 = recursive read. */
  readonly read: 0 | 1 | 2;
  readonly trylock: boolean;
  node: ChainNode;
  /** Operation (function) in which it was acquired, for reports. */
  readonly site: string;
}

/** Anything lockdep can track: mutexes, rwsems and pseudo-locks (work completion maps). */
export interface LockInstance {
  readonly cls: LockClass;
  readonly addr: string;
}

export class Task {
  op: Op = Op.START;
  /** Operand of the pending op (the lock, completion, ...). */
  obj: any = null;
  /** Extra operand (condition function, value, ...). */
  arg: any = null;
  /** Lockdep chain node prepared at call time for a lock op. */
  node: ChainNode | null = null;
  /** Absolute virtual time at which a timed wait gives up (Infinity: never). */
  deadline = Infinity;
  /** For two-phase ops (rwsem, wait_event): the task is queued as a waiter. */
  queued = false;
  /** Set by wake_up for a queued wait_event waiter. */
  woken = false;
  /** For mutex_lock_interruptible / *_interruptible waits. */
  interruptible = false;
  /** The mutex of the read section this task is in (mutex_lock(m, READS)), and the protected state's digest at entry. */
  readSection: Mutex | null = null;
  readDigest = '';
  sigpending = false;
  /** Value to resume the generator with. */
  result: any = undefined;
  /** Error to throw into the generator instead of resuming it. */
  resumeError: unknown = undefined;
  /** Generator call stack managed by the scheduler (Kernel.call frames, release callbacks). */
  gens: KGen<any>[];
  /** Per frame of gens: the ops depth to go back to when it returns (-1: leave ops alone). */
  frames: number[] = [-1];
  readonly held: HeldLock[] = [];
  /** Task-level stack of named operations (driver functions), innermost last. */
  readonly ops: string[] = [];
  state: TaskState = TaskState.LIVE;
  exitValue: unknown = undefined;
  error: TaskError | undefined = undefined;
  /** Step at which this task last ran (first-come strategy, traces). */
  lastRun = -1;
  /** Last label passed to sched_point (traces). */
  label = '';
  joined = false;

  constructor(
    /** Spawn order within the execution: stable across replays. */
    readonly id: number,
    readonly pid: number,
    /** Full name, used in traces. */
    readonly name: string,
    body: KGen<any>,
  ) {
    this.gens = [body];
  }

  /** The kernel's comm: at most 15 characters. */
  get comm(): string {
    return this.name.length > 15 ? this.name.slice(0, 15) : this.name;
  }

  get done(): boolean {
    return this.state !== TaskState.LIVE;
  }

  /** The innermost named operation, or the task name. */
  get site(): string {
    return this.ops.length ? this.ops[this.ops.length - 1]! : this.name;
  }
}

/** An error that escaped a task body, annotated with where it happened. */
export class TaskError extends Error {
  constructor(
    readonly task: string,
    readonly opStack: readonly string[],
    override readonly cause: unknown,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(`task "${task}" failed${opStack.length ? ` in ${opStack.join(' > ')}` : ''}: ${msg}`);
    this.name = 'TaskError';
  }
}
