// Sleeping locks: struct mutex and struct rw_semaphore (state only; the scheduler
// in kernel.ts executes the operations).
import type { LockClass } from './lockdep.js';
import type { Task, LockInstance } from './task.js';
import { fakeAddr } from './lifetime.js';

export class Mutex implements LockInstance {
  owner: Task | null = null;
  constructor(
    readonly cls: LockClass,
    private readonly addrNum: number,
    /**
     * The state the mutex protects, as text: compared before and after every read
     * section (mutex_lock(m, READS)), which must leave it unchanged.
     */
    readonly digest: (() => string) | null = null,
  ) {}
  /** The kernel-looking address lockdep prints. */
  get addr(): string {
    return fakeAddr(this.addrNum);
  }
  get name(): string {
    return this.cls.name;
  }
  /** mutex_is_locked() */
  is_locked(): boolean {
    return this.owner !== null;
  }
}

/**
 * rw_semaphore with the kernel's fairness: a waiter queue in FIFO order; a new
 * reader queues behind any waiter (so a waiting writer blocks new readers), and on
 * release the head of the queue is granted (a writer alone, or the readers at the
 * front).
 */
export class RwSemaphore implements LockInstance {
  writer: Task | null = null;
  /** Tasks holding it for read (a task appears once per read hold). */
  readonly readers: Task[] = [];
  /** Queued waiters in arrival order. */
  readonly waiters: Task[] = [];
  constructor(
    readonly cls: LockClass,
    private readonly addrNum: number,
  ) {}
  get addr(): string {
    return fakeAddr(this.addrNum);
  }
  get name(): string {
    return this.cls.name;
  }
  /** rwsem_is_locked() */
  is_locked(): boolean {
    return this.writer !== null || this.readers.length > 0;
  }
}

/** A lockdep-only map (e.g. a work item's "(work_completion)" pseudo-lock). */
export class LockMap implements LockInstance {
  constructor(
    readonly cls: LockClass,
    private readonly addrNum: number,
  ) {}
  get addr(): string {
    return fakeAddr(this.addrNum);
  }
}
