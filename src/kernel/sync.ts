// Completions, wait queues, atomics and kref (state only).
import type { KGen } from './ops.js';
import type { Task } from './task.js';

export class Completion {
  /** Number of pending completions; Infinity after complete_all(). */
  done = 0;
  constructor(readonly name: string) {}
}

export class WaitQueue {
  readonly waiters: Task[] = [];
  constructor(
    readonly name: string,
    /**
     * The state its waiters' conditions read is written only in a wake_up(wq, action)
     * step, in a step that ends a wait_event on this queue, or after a plain sched_point.
     * DPOR then treats a wait_event on it as touching the queue only (not all state);
     * the kernel checks the promise at every step while someone waits on it.
     */
    readonly strict = false,
  ) {}
}

export class Atomic {
  constructor(
    public value: number,
    readonly name = 'atomic',
  ) {}
}

/** Atomic operation codes for Op.ATOMIC. */
export const enum AtomicOp {
  READ,
  SET,
  ADD_RETURN,
  FETCH_ADD,
  CMPXCHG,
  XCHG,
  INC_NOT_ZERO,
  DEC_AND_TEST,
}

/** Release callback of a kref: a plain function or a generator (it may take locks). */
export type Release<T> = (obj: T) => KGen<unknown> | void;

/** struct kref / refcount_t with saturation checks. */
export class Kref<T = unknown> {
  refcount: number;
  /** Set once the count reached zero: later gets are refcount_t addition-on-0 bugs. */
  dead = false;
  constructor(
    readonly obj: T,
    readonly name: string,
    initial = 1,
  ) {
    this.refcount = initial;
  }
  /** kref_read() */
  read(): number {
    return this.refcount;
  }
}
