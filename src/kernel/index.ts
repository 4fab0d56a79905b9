// The simulated kernel runtime: tasks, scheduler, virtual time, locks, lockdep,
// object lifetime, workqueues, printk and errno.
export { Kernel, RunStatus, type KernelOptions, type TimeMode, type DevLike, type Timer, type EventSource } from './kernel.js';
export { Op, OP, READS, opName, type KGen, type OpToken } from './ops.js';
export { Task, TaskError, TaskState, type HeldLock, type LockInstance } from './task.js';
export { Mutex, RwSemaphore, LockMap } from './locks.js';
export { Completion, WaitQueue, Atomic, Kref, type Release } from './sync.js';
export { Work, WorkQueue, DelayedWork, type WorkFn } from './workqueue.js';
export { Lockdep, LockClass, lockOrderProblem, type LockdepReport, type LockdepStats, type LockOrder, type OrderViolation, EN, ER, SN, SR } from './lockdep.js';
export { Lifetime, KernelOops, type ObjMeta, type AllocSite } from './lifetime.js';
export * from './printk.js';
export { FirstComeStrategy, RandomStrategy, ReplayStrategy, RoundRobinStrategy, ReplayDivergence, type Strategy, type PickContext } from './strategy.js';
export { Prng, hashString } from './prng.js';
export { type Bug, type BugKind, BugError } from './bugs.js';
export { buildDeadlockReport, type DeadlockReport } from './deadlock.js';
export * from './errno.js';
export { WorldSnapshot, markShared, markWriteLogged, noteWrite, snapshotLogSizes, SNAPSHOT_SHARED } from './snapshot.js';
export { SideTable } from './sidetable.js';
