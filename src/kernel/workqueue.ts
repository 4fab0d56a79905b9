// Workqueues (state only). Each dispatched work item runs in a worker task; a work
// item never runs concurrently with itself (non-reentrant, as since Linux 3.7), and
// an ordered workqueue (max_active 1) runs its items one at a time in FIFO order.
import type { KGen } from './ops.js';
import type { LockMap } from './locks.js';
import type { Task } from './task.js';

export type WorkFn = (work: Work) => KGen<unknown>;

export class Work {
  pending = false;
  /** The worker task currently running this item, if any. */
  running: Task | null = null;
  /** Incremented on every successful queue_work. */
  queuedGen = 0;
  /** The queuedGen of the last execution that finished. */
  doneGen = 0;
  /** The queuedGen the current/next execution serves. */
  startedGen = 0;
  wq: WorkQueue | null = null;
  /** Lockdep pseudo-lock held while the function runs ("(work_completion)(&name)"). */
  map: LockMap | null = null;
  constructor(
    readonly name: string,
    readonly fn: WorkFn,
  ) {}
}

export class DelayedWork {
  /** Absolute virtual time of the pending timer, or Infinity. */
  expires = Infinity;
  timerWq: WorkQueue | null = null;
  constructor(readonly work: Work) {}
}

export class WorkQueue {
  /** Items queued but not yet picked up by a worker (ordered queues only). */
  readonly backlog: Work[] = [];
  /** Number of items currently running. */
  active = 0;
  /** Items queued or running, for flush_workqueue. */
  readonly inflight = new Set<Work>();
  map: LockMap | null = null;
  constructor(
    readonly name: string,
    /** 1 for alloc_ordered_workqueue; 0 means unbounded (system_wq-like). */
    readonly maxActive: number,
  ) {}
}
