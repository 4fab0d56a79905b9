// The simulated kernel: one execution of a deterministic world in which tasks
// (generator functions) interleave only at the operations they yield.
//
// A task calls an op method (k.mutex_lock(m), k.kref_put(r, release), ...), which
// records the pending operation on the task and returns the OP token; the task
// yields it. When the strategy picks the task, the scheduler executes the op
// atomically and resumes the generator with the op's result; the generator then
// runs (without any interleaving) up to its next op. A task whose pending op cannot
// proceed (a held mutex, an incomplete completion, ...) is simply not enabled.
//
// Time is virtual (nanoseconds). In 'discrete' mode (the checker) it advances only
// when no task is enabled, straight to the next deadline; in 'external' mode (the
// live host) the owner advances it with advanceTo().
import { Op, OP, READS, opName, type KGen, type OpToken } from './ops.js';
import { Task, TaskError, TaskState, type HeldLock } from './task.js';
import { Lockdep, heldLines, type LockdepReport, type ChainNode } from './lockdep.js';
import { Mutex, RwSemaphore, LockMap } from './locks.js';
import { Completion, WaitQueue, Atomic, AtomicOp, Kref, type Release } from './sync.js';
import { Work, WorkQueue, DelayedWork, type WorkFn } from './workqueue.js';
import { Lifetime, KernelOops, type AllocSite, type ObjMeta } from './lifetime.js';
import { PrintkRing, KERN_ERR, KERN_INFO, KERN_WARNING, KERN_DEBUG, KERN_NOTICE } from './printk.js';
import { FirstComeStrategy, type Strategy, type PickContext } from './strategy.js';
import { Prng } from './prng.js';
import { BugError, type Bug, type BugKind } from './bugs.js';
import { buildDeadlockReport, findWaitCycle } from './deadlock.js';

export type TimeMode = 'discrete' | 'external';

export interface KernelOptions {
  /** Who runs next when several tasks can; default first-come (live behaviour). */
  strategy?: Strategy;
  /** A Lockdep shared by all executions of a run; true (default) = a fresh one, false = off. */
  lockdep?: Lockdep | boolean;
  /** Record a human-readable trace line per step (replay and tests; costs time). */
  trace?: boolean;
  /** Steps after which an execution is reported as a livelock (default 10 million). */
  maxSteps?: number;
  /** Stop the execution at the first bug (checker) or keep going (live host). Default true. */
  stopOnBug?: boolean;
  /** Throw a BugError out of run() for the first bug (handy in unit tests). */
  throwOnBug?: boolean;
  time?: TimeMode;
  /** Seed of the run's PRNG (model randomness, not scheduling). */
  seed?: number;
  /** Kernel release string for reports. */
  release?: string;
  /** First pid handed out. */
  pidBase?: number;
  printk?: PrintkRing;
  /**
   * Called before each step executes, with the task about to run (its pending op in
   * t.op / t.obj). For checkers that need every step, not only choice points (DPOR).
   */
  onStep?: (t: Task) => void;
  /** Keep every spawned task in allTasks (default true; the live host says false). */
  retainTasks?: boolean;
  /**
   * Record the task chosen at every choice point in `choices` (default true: replays
   * and determinism checks use them; the live host, which schedules for weeks, says false).
   */
  recordChoices?: boolean;
}

export const enum RunStatus {
  RUNNING = 'running',
  /** No live task is left. */
  DONE = 'done',
  /** Live tasks exist but none is enabled and no deadline can wake one (external time). */
  IDLE = 'idle',
  DEADLOCK = 'deadlock',
  /** Stopped at a bug (stopOnBug). */
  BUG = 'bug',
  LIVELOCK = 'livelock',
}

/** A device as dev_printk sees it: "<driver> <name>: message". */
export interface DevLike {
  readonly driver: string;
  readonly devName: string;
}

/**
 * Something outside the kernel with its own timeline (the simulated machine): the
 * clock stops at its next event, and due events are processed like timers.
 */
export interface EventSource {
  /** Next instant something happens; may be <= now for events not yet processed. */
  nextEventTime(): number | undefined;
  /** Delivers everything due at the current time (in atomic context). */
  processEvents(): void;
}

export interface Timer {
  expires: number;
  readonly fn: () => void;
  readonly seq: number;
  active: boolean;
  readonly name: string;
}

const INF = Infinity;
const NO_OPS: readonly string[] = Object.freeze([]);
const NO_GENS = Object.freeze([]) as unknown as KGen<any>[];
const NO_FRAMES = Object.freeze([]) as unknown as number[];

export class Kernel implements PickContext {
  /** Virtual time in nanoseconds. */
  private nowNs = 0;
  readonly timeMode: TimeMode;
  strategy: Strategy;
  readonly lockdep: Lockdep;
  private readonly ld: boolean;
  readonly lifetime = new Lifetime();
  /** The printk ring buffer (dmesg). */
  readonly log: PrintkRing;
  /** The run's PRNG for model randomness (fault injection etc.). */
  readonly rng: Prng;
  readonly release: string;

  /** Live tasks in spawn order. */
  private readonly tasks: Task[] = [];
  /**
   * Every task ever spawned in this execution, by id (the checker's names, traces
   * and reports). Empty when the kernel does not retain tasks (a long-running live
   * host spawns a task per sysfs write and must not keep them all).
   */
  readonly allTasks: Task[] = [];
  private readonly retainTasks: boolean;
  private taskSeq = 0;
  /** Strict wait queues created (the per-step promise check runs only if there are any). */
  private strictQueues = 0;
  private readonly runBuf: Task[] = [];
  private nextPid: number;
  private lockAddr = 0;

  /** The task being executed (the one whose generator is running), or null. */
  current: Task | null = null;
  /** The task that ran the last step (PickContext). */
  previous: Task | null = null;
  steps = 0;
  /** Task ids chosen at every point where two or more tasks were enabled (if recorded). */
  readonly choices: number[] = [];
  /** Choice points so far, recorded or not. */
  private nChoices = 0;
  private readonly recordChoices: boolean;
  readonly bugs: Bug[] = [];
  status: RunStatus = RunStatus.RUNNING;
  private maxSteps: number;
  private stopOnBug: boolean;
  private readonly throwOnBug: boolean;
  private tracing: boolean;
  readonly trace: string[] = [];
  private readonly timers: Timer[] = [];
  private timerSeq = 0;
  private readonly sources: EventSource[] = [];
  /** Result of the last op executed outside any task (atomic context). */
  lastDirectResult: unknown = undefined;
  private readonly workqueues = new Map<string, WorkQueue>();
  private workerSeq = 0;
  /** Observers of task exits (the live host uses this to complete sysfs writes). */
  private readonly exitHooks = new Map<Task, Array<(t: Task) => void>>();
  private onStep: ((t: Task) => void) | null;

  constructor(opts: KernelOptions = {}) {
    this.strategy = opts.strategy ?? new FirstComeStrategy();
    this.strategy.begin?.();
    this.lockdep = opts.lockdep instanceof Lockdep ? opts.lockdep : new Lockdep(opts.lockdep !== false);
    this.ld = this.lockdep.enabled;
    this.release = opts.release ?? this.lockdep.release;
    this.lockdep.release = this.release;
    this.tracing = opts.trace ?? false;
    this.maxSteps = opts.maxSteps ?? 10_000_000;
    this.stopOnBug = opts.stopOnBug ?? true;
    this.throwOnBug = opts.throwOnBug ?? false;
    this.timeMode = opts.time ?? 'discrete';
    this.rng = new Prng(opts.seed ?? 1);
    this.nextPid = opts.pidBase ?? 100;
    this.log = opts.printk ?? new PrintkRing();
    this.onStep = opts.onStep ?? null;
    this.retainTasks = opts.retainTasks ?? true;
    this.recordChoices = opts.recordChoices ?? true;
    this.lifetime.onUseAfterFree = (m, prop, write) => this.useAfterFree(m, prop, write);
    this.lockdep.onReport = (r) => this.lockdepReport(r);
  }

  /**
   * New per-execution options for a kernel whose world was restored from a snapshot
   * (WorldSnapshot): the scheduling strategy, step hook, tracing and bug policy of
   * the next execution. The lockdep graph must be the one the world was booted with.
   */
  rebind(opts: Pick<KernelOptions, 'strategy' | 'onStep' | 'trace' | 'stopOnBug' | 'maxSteps' | 'lockdep'>): void {
    if (opts.lockdep instanceof Lockdep && opts.lockdep !== this.lockdep) throw new Error('Kernel.rebind: a restored world keeps its lockdep');
    this.strategy = opts.strategy ?? new FirstComeStrategy();
    this.strategy.begin?.();
    this.tracing = opts.trace ?? false;
    this.maxSteps = opts.maxSteps ?? 10_000_000;
    this.stopOnBug = opts.stopOnBug ?? true;
    this.onStep = opts.onStep ?? null;
    this.lockdep.onReport = (r) => this.lockdepReport(r);
  }

  // ---------------------------------------------------------------- time

  /** Current virtual time in nanoseconds. */
  now(): number {
    return this.nowNs;
  }

  /** External time mode: move the clock forward (never backwards) and fire due timers. */
  advanceTo(ns: number): void {
    if (ns > this.nowNs) this.nowNs = ns;
    this.fireTimers();
  }

  /** Earliest virtual time at which something (a timer, a sleeping task) is due. */
  nextDeadline(): number {
    let d = INF;
    for (const t of this.timers) if (t.active && t.expires < d) d = t.expires;
    for (const s of this.sources) {
      const e = s.nextEventTime();
      if (e !== undefined && e < d) d = e;
    }
    for (const t of this.tasks) if (t.deadline < d) d = t.deadline;
    return d;
  }

  /** Registers an external event source (see EventSource). */
  addEventSource(src: EventSource): void {
    this.sources.push(src);
  }

  /** add_timer(): fn runs in atomic context (it may complete, wake_up, queue work). */
  add_timer(expires: number, fn: () => void, name = 'timer'): Timer {
    const t: Timer = { expires, fn, seq: this.timerSeq++, active: true, name };
    this.timers.push(t);
    return t;
  }

  /** mod_timer() */
  mod_timer(t: Timer, expires: number): void {
    t.expires = expires;
    if (!t.active) {
      t.active = true;
      this.timers.push(t);
    }
  }

  /** del_timer(): true if the timer was pending. */
  del_timer(t: Timer): boolean {
    const was = t.active;
    t.active = false;
    const i = this.timers.indexOf(t);
    if (i >= 0) this.timers.splice(i, 1);
    return was;
  }

  private fireTimers(): void {
    for (const s of this.sources) {
      const e = s.nextEventTime();
      if (e !== undefined && e <= this.nowNs) {
        const saved = this.current;
        this.current = null;
        try {
          s.processEvents();
        } finally {
          this.current = saved;
        }
      }
    }
    for (;;) {
      let best: Timer | null = null;
      for (const t of this.timers)
        if (t.active && t.expires <= this.nowNs && (best === null || t.expires < best.expires || (t.expires === best.expires && t.seq < best.seq)))
          best = t;
      if (best === null) return;
      this.del_timer(best);
      const saved = this.current;
      this.current = null;
      try {
        best.fn();
      } finally {
        this.current = saved;
      }
    }
  }

  // ---------------------------------------------------------------- tasks

  /** kthread_run(): a new task; its first step runs when the strategy picks it. */
  spawn<T>(name: string, body: KGen<T>): Task {
    const t = new Task(this.taskSeq++, this.nextPid++, name, body);
    this.tasks.push(t);
    if (this.retainTasks) this.allTasks.push(t);
    return t;
  }

  /** Tasks spawned so far (their ids are 0 .. spawned - 1), retained or not. */
  get spawned(): number {
    return this.taskSeq;
  }

  /** Calls fn when task t exits (normally or with an error). */
  onExit(t: Task, fn: (t: Task) => void): void {
    if (t.done) {
      fn(t);
      return;
    }
    let l = this.exitHooks.get(t);
    if (!l) this.exitHooks.set(t, (l = []));
    l.push(fn);
  }

  /** Live tasks in spawn order. */
  liveTasks(): readonly Task[] {
    return this.tasks;
  }

  /**
   * Runs a named operation with its name on the task's operation stack:
   * `yield* k.fn('assign_adapter', assign_adapter_body(...))`. An error thrown
   * through it leaves the stack at the innermost point, which is what error and
   * lifetime reports show; code that catches an error and carries on restores the
   * stack with opsDepth()/opsRestore() (the runtime's own catch sites do). There is
   * no try/catch here on purpose: it sits on every hot path.
   */
  *fn<T>(name: string, body: KGen<T>): KGen<T> {
    return (yield this.call(body, name)) as T;
  }

  /**
   * `yield k.call(body)` resumes with body's return value, like `yield* body`, but body
   * runs as a frame of its own on the task's generator stack: its steps resume body
   * directly instead of through every generator of the caller's chain (resuming a
   * generator through a yield* chain costs each level again, at every step). Not a
   * step. With a name, the frame is on the operation stack too (see fn).
   */
  call(body: KGen<any>, name: string | null = null): OpToken {
    const t = this.needTask('call');
    t.op = Op.CALL;
    t.obj = body;
    t.arg = name;
    return OP;
  }

  /** Depth of the current task's operation stack (see fn). */
  opsDepth(): number {
    return this.current?.ops.length ?? 0;
  }

  /** Truncates the current task's operation stack after a caught error (see fn). */
  opsRestore(depth: number): void {
    const t = this.current;
    if (t && t.ops.length > depth) t.ops.length = depth;
  }

  // ---------------------------------------------------------------- op submission

  private submit(op: Op, obj: unknown, arg: unknown): OpToken {
    const t = this.current;
    if (t === null) {
      this.execDirect(op, obj, arg);
      return OP;
    }
    if (t.op !== Op.NONE) this.notYielded(t, op);
    t.op = op;
    t.obj = obj;
    t.arg = arg;
    return OP;
  }

  private notYielded(t: Task, next: Op | string): never {
    throw new Error(`task "${t.name}": ${opName(t.op)} was called but not yielded before ${typeof next === 'string' ? next : opName(next)} (write \`yield k.${opName(t.op)}(...)\`)`);
  }

  private needTask(what: string): Task {
    const t = this.current;
    if (t === null) throw new Error(`${what} may sleep and cannot be called outside a task (atomic context)`);
    if (t.op !== Op.NONE) this.notYielded(t, what);
    return t;
  }

  /** sched_point(): a preemption point before an unlocked access to shared state. */
  sched_point(label = ''): OpToken {
    return this.schedOp(null, label);
  }

  /**
   * A preemption point before an access to state that only ops on `obj` read (a
   * work item's running/inflight bookkeeping): the checker relates it to those ops
   * alone, where a plain sched_point is related to every step. It must not change
   * the condition of a strict wait (checked like any keyed step).
   */
  sched_point_on(obj: object, label = ''): OpToken {
    return this.schedOp(obj, label);
  }

  private schedOp(obj: object | null, label: string): OpToken {
    const t = this.needTask('sched_point');
    t.op = Op.SCHED;
    t.obj = obj;
    t.arg = label;
    return OP;
  }

  // ---------------------------------------------------------------- mutex

  /** mutex_init() with the lockdep class name, e.g. "&matrix_dev->guests_lock". */
  mutex_init(className: string, opts: { digest?: () => string } = {}): Mutex {
    return new Mutex(this.lockdep.classFor(className, 'mutex'), this.nextLockAddr(), opts.digest ?? null);
  }

  /** Lock "addresses" are numbers; reports format them (fakeAddr) only when needed. */
  private nextLockAddr(): number {
    return 0x8881_0000_0000 + this.lockAddr++ * 0x40;
  }

  /** lockdep_set_novalidate_class(): lockdep ignores this lock's class entirely. */
  lockdep_set_novalidate_class(lock: { cls: { novalidate: boolean } }): void {
    lock.cls.novalidate = true;
  }

  /**
   * A blocking lock call: the pending op, and lockdep's check at the call, before the
   * task can block (read: 0 exclusive, 1 non-recursive reader).
   */
  private lockOp(call: string, op: Op, lock: Mutex | RwSemaphore, read: 0 | 1, interruptible: boolean): OpToken {
    const t = this.needTask(call);
    t.op = op;
    t.obj = lock;
    t.arg = null;
    t.interruptible = interruptible;
    t.node = this.ld ? this.lockdep.acquire(t, lock.cls, read, false, call, lock) : this.lockdep.root;
    return OP;
  }

  /** A trylock call: no lockdep check until it succeeds (then without dependencies). */
  private trylockOp(call: string, op: Op, lock: Mutex | RwSemaphore): OpToken {
    const t = this.needTask(call);
    t.op = op;
    t.obj = lock;
    return OP;
  }

  /**
   * mutex_lock(). With READS the critical section only reads what m protects and is a
   * leaf: its next op is the matching mutex_unlock, and m's digest (if any) is the same
   * at both ends — the kernel checks both. The checker's DPOR lets two read sections
   * of one mutex commute, as they do (lockdep sees an ordinary mutex_lock).
   */
  mutex_lock(m: Mutex, section?: typeof READS): OpToken {
    this.lockOp('mutex_lock', Op.LOCK, m, 0, false);
    if (section === READS) this.current!.arg = READS; // lockOp cleared it
    return OP;
  }

  /** Resumes with 0, or -EINTR (-4) if a signal arrives while waiting. */
  mutex_lock_interruptible(m: Mutex): OpToken {
    return this.lockOp('mutex_lock_interruptible', Op.LOCK, m, 0, true);
  }

  /** Resumes with true if acquired. Adds no lockdep dependency. */
  mutex_trylock(m: Mutex): OpToken {
    return this.trylockOp('mutex_trylock', Op.TRYLOCK, m);
  }

  mutex_unlock(m: Mutex): OpToken {
    return this.submit(Op.UNLOCK, m, null);
  }

  // ---------------------------------------------------------------- rwsem

  init_rwsem(className: string): RwSemaphore {
    return new RwSemaphore(this.lockdep.classFor(className, 'rwsem'), this.nextLockAddr());
  }

  down_read(s: RwSemaphore): OpToken {
    return this.lockOp('down_read', Op.DOWN_READ, s, 1, false);
  }

  down_write(s: RwSemaphore): OpToken {
    return this.lockOp('down_write', Op.DOWN_WRITE, s, 0, false);
  }

  /** Resumes with true if acquired. */
  down_read_trylock(s: RwSemaphore): OpToken {
    return this.trylockOp('down_read_trylock', Op.DOWN_READ_TRYLOCK, s);
  }

  /** Resumes with true if acquired. */
  down_write_trylock(s: RwSemaphore): OpToken {
    return this.trylockOp('down_write_trylock', Op.DOWN_WRITE_TRYLOCK, s);
  }

  up_read(s: RwSemaphore): OpToken {
    return this.submit(Op.UP_READ, s, null);
  }

  up_write(s: RwSemaphore): OpToken {
    return this.submit(Op.UP_WRITE, s, null);
  }

  // ---------------------------------------------------------------- lockdep assertions

  /** lockdep_assert_held(): reports a WARNING if the current task does not hold lock. */
  lockdep_assert_held(lock: Mutex | RwSemaphore, mode: 'any' | 'read' | 'write' = 'any'): void {
    const t = this.current;
    const h = t?.held.find((x) => x.lock === lock);
    const ok = h !== undefined && (mode === 'any' || (mode === 'read' ? h.read !== 0 : h.read === 0));
    if (ok) return;
    const who = t ? `${t.comm}/${t.pid}` : 'atomic context';
    const where = t?.site ?? '?';
    const fn = mode === 'any' ? 'lockdep_assert_held' : `lockdep_assert_held_${mode}`;
    this.report('assert', `${fn}(${lock.cls.name}) failed in ${where}`, [
      `WARNING: CPU: 0 PID: ${t?.pid ?? 0} at ${where}`,
      `${fn}(${lock.cls.name}) failed: ${who} ${h ? 'holds it in the wrong mode' : 'does not hold it'}`,
      ...(t ? heldLines(t) : []),
    ].join('\n'), `assert:${fn}:${lock.cls.name}:${where}`);
  }

  // ---------------------------------------------------------------- completion / waitqueue

  init_completion(name = 'completion'): Completion {
    return new Completion(name);
  }

  reinit_completion(c: Completion): void {
    c.done = 0;
  }

  completion_done(c: Completion): boolean {
    return c.done > 0;
  }

  wait_for_completion(c: Completion): OpToken {
    const t = this.needTask('wait_for_completion');
    t.op = Op.WAIT_COMPLETION;
    t.obj = c;
    t.deadline = INF;
    t.interruptible = false;
    return OP;
  }

  /** Resumes with the remaining time in ns (>= 1) or 0 on timeout. */
  wait_for_completion_timeout(c: Completion, timeoutNs: number): OpToken {
    const t = this.needTask('wait_for_completion_timeout');
    t.op = Op.WAIT_COMPLETION;
    t.obj = c;
    t.deadline = this.nowNs + timeoutNs;
    t.interruptible = false;
    return OP;
  }

  complete(c: Completion): OpToken {
    return this.submit(Op.COMPLETE, c, null);
  }

  complete_all(c: Completion): OpToken {
    return this.submit(Op.COMPLETE_ALL, c, null);
  }

  init_waitqueue_head(name = 'wait_queue', opts: { strict?: boolean } = {}): WaitQueue {
    if (opts.strict) this.strictQueues++;
    return new WaitQueue(name, opts.strict ?? false);
  }

  /** wait_event(wq, cond): sleeps until cond() holds, re-checking after each wake_up. */
  wait_event(wq: WaitQueue, cond: () => boolean): OpToken {
    const t = this.needTask('wait_event');
    t.op = Op.WAIT_EVENT;
    t.obj = wq;
    t.arg = cond;
    t.deadline = INF;
    t.interruptible = false;
    return OP;
  }

  /** Resumes with remaining ns (>= 1) if cond became true, else 0 after the timeout. */
  wait_event_timeout(wq: WaitQueue, cond: () => boolean, timeoutNs: number): OpToken {
    const t = this.needTask('wait_event_timeout');
    t.op = Op.WAIT_EVENT;
    t.obj = wq;
    t.arg = cond;
    t.deadline = this.nowNs + timeoutNs;
    t.interruptible = false;
    return OP;
  }

  /** Resumes with 0, or -ERESTARTSYS (-512) when a signal is pending. */
  wait_event_interruptible(wq: WaitQueue, cond: () => boolean): OpToken {
    const t = this.needTask('wait_event_interruptible');
    t.op = Op.WAIT_EVENT;
    t.obj = wq;
    t.arg = cond;
    t.deadline = INF;
    t.interruptible = true;
    return OP;
  }

  /**
   * wake_up(wq); `action` runs first, in the same step: the write that makes the
   * waiters' condition true (what a strict queue requires, see WaitQueue.strict).
   */
  wake_up(wq: WaitQueue, action?: () => void): OpToken {
    return this.submit(Op.WAKE_UP, wq, action ?? null);
  }

  /** Sends a signal: interruptible waits of t return -EINTR / -ERESTARTSYS. */
  send_sig(t: Task): void {
    t.sigpending = true;
  }

  // ---------------------------------------------------------------- sleeping / joining

  msleep(ms: number): OpToken {
    return this.sleep_ns(ms * 1_000_000);
  }

  sleep_ns(ns: number): OpToken {
    const t = this.needTask('msleep');
    t.op = Op.SLEEP;
    t.deadline = this.nowNs + Math.max(0, ns);
    return OP;
  }

  /** Waits for task u to exit; resumes with its exit value or throws its TaskError. */
  join(u: Task): OpToken {
    const t = this.needTask('join');
    t.op = Op.JOIN;
    t.obj = u;
    u.joined = true;
    return OP;
  }

  // ---------------------------------------------------------------- kref / refcount

  /** kref_init(): count 1. The kref remembers its object for release and reports. */
  kref_init<T>(obj: T, name: string, initial = 1): Kref<T> {
    return new Kref(obj, name, initial);
  }

  kref_get(r: Kref): OpToken {
    return this.submit(Op.KREF_GET, r, null);
  }

  /** Resumes with true if a reference was taken (count was not zero). */
  kref_get_unless_zero(r: Kref): OpToken {
    return this.submit(Op.KREF_GET_UNLESS_ZERO, r, null);
  }

  /**
   * Drops a reference; on the last put runs release(obj) in this task (a generator
   * release may take locks and sleep). Resumes with true if released.
   */
  kref_put<T>(r: Kref<T>, release: Release<T>): OpToken {
    return this.submit(Op.KREF_PUT, r, release);
  }

  // ---------------------------------------------------------------- atomics

  atomic_init(v = 0, name = 'atomic'): Atomic {
    return new Atomic(v, name);
  }

  atomic_read(a: Atomic): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.READ]);
  }
  atomic_set(a: Atomic, v: number): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.SET, v]);
  }
  /** Resumes with the new value. */
  atomic_add_return(a: Atomic, v: number): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.ADD_RETURN, v]);
  }
  /** Resumes with the old value. */
  atomic_fetch_add(a: Atomic, v: number): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.FETCH_ADD, v]);
  }
  /** Resumes with the old value; stores nv if it equalled old. */
  atomic_cmpxchg(a: Atomic, old: number, nv: number): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.CMPXCHG, old, nv]);
  }
  atomic_xchg(a: Atomic, v: number): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.XCHG, v]);
  }
  atomic_inc_not_zero(a: Atomic): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.INC_NOT_ZERO]);
  }
  atomic_dec_and_test(a: Atomic): OpToken {
    return this.submit(Op.ATOMIC, a, [AtomicOp.DEC_AND_TEST]);
  }

  // ---------------------------------------------------------------- object lifetime

  private siteOf(t: Task | null): AllocSite {
    // Immutable once taken (frozen: world snapshots skip it).
    return Object.freeze(t ? { task: t.comm, pid: t.pid, ops: Object.freeze(t.ops.slice()), step: this.steps } : { task: 'swapper/0', pid: 0, ops: NO_OPS, step: this.steps });
  }

  /** kzalloc(): registers obj as a heap object with a lifetime; returns it. */
  kzalloc<T extends object>(type: string, obj: T): T {
    this.lifetime.register(obj, type, this.siteOf(this.current));
    if (this.accessLog !== null) this.watchObject(obj);
    return obj;
  }

  /**
   * Heap objects touched by tasks since the last takeAccesses(), while access
   * tracking is on (null: off). Each object appears at most once per step.
   */
  private accessLog: object[] | null = null;

  /**
   * Access tracking (the checker's DPOR, for a precise kfree dependency): from now on
   * every task step that reads or writes a field of a live heap object (kzalloc) is
   * logged. Off again with trackAccesses(false); the watched objects keep working
   * (their fields are accessors until a world snapshot restores them).
   */
  trackAccesses(on: boolean): void {
    if (!on) {
      this.accessLog = null;
      return;
    }
    this.accessLog = [];
    for (const [obj] of this.lifetime.liveObjects()) this.watchObject(obj);
  }

  /** The objects logged since the last call, in first-touch order; the log restarts empty. */
  takeAccesses(): object[] | null {
    const log = this.accessLog;
    if (log === null || log.length === 0) return log;
    this.accessLog = [];
    return log;
  }

  private watchObject(obj: object): void {
    let stamp = -1;
    this.lifetime.watch(obj, (o) => {
      const log = this.accessLog;
      if (log === null || this.current === null || stamp === this.steps) return;
      stamp = this.steps;
      log.push(o);
    });
  }

  /** kmemleak_not_leak(): obj lives for the whole run. */
  kmemleak_not_leak(obj: object): void {
    const m = this.lifetime.metaOf(obj);
    if (m) m.notLeak = true;
  }

  /** kfree(): frees and poisons obj. kfree(null) is a no-op, as in C. */
  kfree(obj: object | null | undefined): OpToken {
    return this.submit(Op.FREE, obj ?? null, null);
  }

  /**
   * An explicit dereference check for code that uses a pointer without touching a
   * field (e.g. passing it on). Reports a use-after-free if obj was freed.
   */
  check_alive(obj: object, what = 'access'): void {
    const m = this.lifetime.metaOf(obj);
    if (m?.free) throw this.useAfterFree(m, what, false);
  }

  /** kmemleak scan: reports every registered object that is still live. */
  kmemleak_scan(): number {
    const leaks = this.lifetime.liveObjects().filter(([, m]) => !m.notLeak);
    if (leaks.length === 0) return 0;
    const lines: string[] = [`kmemleak: ${leaks.length} new suspected memory leaks (see /sys/kernel/debug/kmemleak)`];
    for (const [, m] of leaks) {
      lines.push(`unreferenced object 0x${m.addr} (type ${m.type}):`);
      lines.push(`  comm "${m.alloc.task}", pid ${m.alloc.pid}, step ${m.alloc.step}`);
      lines.push('  backtrace:');
      lines.push('    kzalloc');
      for (let i = m.alloc.ops.length - 1; i >= 0; i--) lines.push(`    ${m.alloc.ops[i]}`);
    }
    this.report('leak', `${leaks.length} leaked object(s): ${leaks.map(([, m]) => m.type).join(', ')}`, lines.join('\n'), `leak:${leaks.map(([, m]) => m.type + '@' + m.alloc.ops.join('>')).join(',')}`);
    return leaks.length;
  }

  private useAfterFree(m: ObjMeta, prop: string, write: boolean): KernelOops {
    const t = this.current;
    const where = t?.site ?? 'atomic context';
    const title = `BUG: KASAN: slab-use-after-free in ${where}`;
    const lines = [
      '='.repeat(66),
      title,
      `${write ? 'Write' : 'Read'} of ${m.type}.${prop} at addr ${m.addr} by task ${t ? `${t.comm}/${t.pid}` : 'swapper/0'}`,
      '',
      ...this.stackLines(t),
      '',
      `Allocated by task ${m.alloc.pid} (${m.alloc.task}):`,
      ...frameLines(m.alloc.ops, 'kzalloc'),
      '',
      `Freed by task ${m.free!.pid} (${m.free!.task}):`,
      ...frameLines(m.free!.ops, 'kfree'),
      '',
      `The buggy address belongs to the object at ${m.addr} which belongs to the cache ${m.type}`,
      '='.repeat(66),
    ];
    this.report('use-after-free', `use-after-free of ${m.type} (${prop}) in ${where}`, lines.join('\n'), `uaf:${m.type}:${where}:${m.free!.ops.join('>')}`);
    return new KernelOops(title);
  }

  private stackLines(t: Task | null): string[] {
    if (!t) return ['CPU: 0 PID: 0 Comm: swapper/0'];
    return [`CPU: 0 PID: ${t.pid} Comm: ${t.comm} Not tainted ${this.release}`, 'Call Trace:', ...frameLines(t.ops, null)];
  }

  // ---------------------------------------------------------------- workqueues

  /** alloc_workqueue(name, max_active); 1 gives an ordered workqueue. */
  alloc_workqueue(name: string, maxActive = 0): WorkQueue {
    const wq = new WorkQueue(name, maxActive);
    wq.map = new LockMap(this.lockdep.classFor(`(wq_completion)${name}`, 'map'), this.nextLockAddr());
    this.workqueues.set(name, wq);
    return wq;
  }

  /** system_wq */
  get system_wq(): WorkQueue {
    return this.workqueues.get('events') ?? this.alloc_workqueue('events');
  }

  /** INIT_WORK() */
  INIT_WORK(name: string, fn: WorkFn): Work {
    const w = new Work(name, fn);
    w.map = new LockMap(this.lockdep.classFor(`(work_completion)(&${name})`, 'map'), this.nextLockAddr());
    return w;
  }

  INIT_DELAYED_WORK(name: string, fn: WorkFn): DelayedWork {
    return new DelayedWork(this.INIT_WORK(name, fn));
  }

  /** Resumes with false if the work was already pending. */
  queue_work(wq: WorkQueue, w: Work): OpToken {
    return this.submit(Op.QUEUE_WORK, w, wq);
  }

  schedule_work(w: Work): OpToken {
    return this.queue_work(this.system_wq, w);
  }

  /** Arms a timer that queues the work after delayNs (not a scheduling point). */
  queue_delayed_work(wq: WorkQueue, dw: DelayedWork, delayNs: number): boolean {
    if (dw.work.pending || dw.expires !== INF) return false;
    if (delayNs <= 0) {
      this.doQueueWork(wq, dw.work);
      return true;
    }
    dw.expires = this.nowNs + delayNs;
    dw.timerWq = wq;
    this.add_timer(dw.expires, () => {
      if (dw.expires === INF) return; // cancelled
      dw.expires = INF;
      this.doQueueWork(wq, dw.work);
    }, `delayed:${dw.work.name}`);
    return true;
  }

  /** Resumes with true if it waited for an execution to finish. */
  flush_work(w: Work): OpToken {
    const t = this.needTask('flush_work');
    // lockdep: flushing under a lock the work item takes is a deadlock.
    if (this.ld && w.map) this.lockdep.acquire(t, w.map.cls, 0, false, 'flush_work', w.map);
    t.op = Op.FLUSH_WORK;
    t.obj = w;
    t.arg = w.pending || w.running ? w.queuedGen : -1;
    return OP;
  }

  /** Resumes with true if the work was pending (and is now cancelled). */
  cancel_work_sync(w: Work): OpToken {
    const t = this.needTask('cancel_work_sync');
    if (this.ld && w.map) this.lockdep.acquire(t, w.map.cls, 0, false, 'cancel_work_sync', w.map);
    t.op = Op.CANCEL_WORK;
    t.obj = w;
    return OP;
  }

  cancel_delayed_work_sync(dw: DelayedWork): OpToken {
    const wasTimer = dw.expires !== INF;
    dw.expires = INF;
    const tok: OpToken = this.cancel_work_sync(dw.work);
    if (wasTimer) this.current!.arg = 'timer';
    return tok;
  }

  flush_workqueue(wq: WorkQueue): OpToken {
    const t = this.needTask('flush_workqueue');
    if (this.ld && wq.map) this.lockdep.acquire(t, wq.map.cls, 0, false, 'flush_workqueue', wq.map);
    t.op = Op.FLUSH_WORKQUEUE;
    t.obj = wq;
    t.arg = [...wq.inflight].map((w) => [w, w.queuedGen] as const);
    return OP;
  }

  private doQueueWork(wq: WorkQueue, w: Work): boolean {
    if (w.pending) return false;
    w.pending = true;
    w.queuedGen++;
    w.wq = wq;
    wq.inflight.add(w);
    if (w.running) return true; // the running worker picks it up again when it finishes
    if (wq.maxActive === 1) {
      wq.backlog.push(w);
      if (wq.active === 0) this.startWorker(wq, wq.backlog.shift()!);
    } else {
      this.startWorker(wq, w);
    }
    return true;
  }

  private startWorker(wq: WorkQueue, first: Work): void {
    wq.active++;
    first.running = this.spawn(`kworker/0:${this.workerSeq++}`, this.worker(wq, first));
    // The worker is now responsible; pending is cleared when it starts running fn.
  }

  private *worker(wq: WorkQueue, first: Work): KGen<void> {
    let w: Work | undefined = first;
    const me = this.current!;
    while (w) {
      w.running = me;
      while (w.pending) {
        w.pending = false;
        w.startedGen = w.queuedGen;
        if (w.map) this.pushPseudoLock(me, w.map);
        yield* this.fn(w.name, w.fn(w));
        if (w.map) this.popPseudoLock(me, w.map);
        w.doneGen = w.startedGen;
        // What follows touches this item's running/inflight state only (queue_work,
        // flush_work and cancel_work read it; wq.active matters to ordered queues).
        yield wq.maxActive === 1 ? this.sched_point(`${w.name} done`) : this.sched_point_on(w, `${w.name} done`);
      }
      w.running = null;
      wq.inflight.delete(w);
      w = wq.maxActive === 1 ? wq.backlog.shift() : undefined;
    }
    wq.active--;
  }

  private pushPseudoLock(t: Task, map: LockMap): void {
    const node = this.ld ? this.lockdep.acquire(t, map.cls, 0, false, 'process_one_work', map) : this.lockdep.root;
    t.held.push({ lock: map, cls: map.cls, read: 0, trylock: false, node, site: 'process_one_work' });
  }

  private popPseudoLock(t: Task, map: LockMap): void {
    const i = t.held.findIndex((h) => h.lock === map);
    if (i >= 0) this.removeHeld(t, i);
  }

  // ---------------------------------------------------------------- printk

  printk(level: number, text: string): void {
    this.log.log(this.nowNs, level, text);
  }
  pr_err(text: string): void {
    this.printk(KERN_ERR, text);
  }
  pr_warn(text: string): void {
    this.printk(KERN_WARNING, text);
  }
  pr_notice(text: string): void {
    this.printk(KERN_NOTICE, text);
  }
  pr_info(text: string): void {
    this.printk(KERN_INFO, text);
  }
  pr_debug(text: string): void {
    this.printk(KERN_DEBUG, text);
  }
  /** dev_printk(): "<driver> <device>: text", as the kernel prefixes device messages. */
  dev_printk(level: number, dev: DevLike, text: string): void {
    this.printk(level, `${dev.driver} ${dev.devName}: ${text}`);
  }
  dev_err(dev: DevLike, text: string): void {
    this.dev_printk(KERN_ERR, dev, text);
  }
  dev_warn(dev: DevLike, text: string): void {
    this.dev_printk(KERN_WARNING, dev, text);
  }
  dev_notice(dev: DevLike, text: string): void {
    this.dev_printk(KERN_NOTICE, dev, text);
  }
  dev_info(dev: DevLike, text: string): void {
    this.dev_printk(KERN_INFO, dev, text);
  }
  dev_dbg(dev: DevLike, text: string): void {
    this.dev_printk(KERN_DEBUG, dev, text);
  }

  /** dmesg text of this kernel's ring. */
  dmesg(): string {
    return this.log.dmesg();
  }

  // ---------------------------------------------------------------- bug reports

  /** Records a bug (and prints it); stops the execution if stopOnBug. */
  report(kind: BugKind, title: string, text: string, signature = `${kind}:${title}`): Bug {
    const t = this.current;
    const bug: Bug = { kind, title, text, task: t?.name, step: this.steps, time: this.nowNs, signature };
    this.bugs.push(bug);
    this.printk(kind === 'lockdep' || kind === 'assert' ? KERN_WARNING : KERN_ERR, text);
    if (this.stopOnBug && this.status === RunStatus.RUNNING) this.status = RunStatus.BUG;
    return bug;
  }

  /** WARN_ON(): reports when cond holds; returns cond. */
  WARN_ON(cond: boolean, what = 'WARN_ON'): boolean {
    if (cond) {
      const t = this.current;
      this.report('assert', `${what} in ${t?.site ?? 'atomic context'}`, [`WARNING: CPU: 0 PID: ${t?.pid ?? 0} at ${t?.site ?? '?'}: ${what}`, ...this.stackLines(t)].join('\n'));
    }
    return cond;
  }

  /** An invariant violation found by a checker property. */
  invariant(name: string, detail: string): Bug {
    return this.report('invariant', `invariant ${name} violated: ${detail}`, `apsim: invariant ${name} violated\n${detail}`, `invariant:${name}`);
  }

  private lockdepReport(r: LockdepReport): void {
    const kind: BugKind = r.kind === 'bad-unlock' ? 'bad-unlock' : r.kind === 'assert-held' ? 'assert' : 'lockdep';
    this.report(kind, r.lines[1] ?? r.kind, r.lines.join('\n'), `lockdep:${r.signature}`);
  }

  // ---------------------------------------------------------------- the scheduler

  /** The choice count (PickContext). */
  get choiceCount(): number {
    return this.nChoices;
  }

  /**
   * Runs until no live task is left, a deadlock, a bug (stopOnBug) or the step
   * budget. In external time mode it returns IDLE when only timed waits remain.
   */
  run(): RunStatus {
    const st = this.status;
    if (st === RunStatus.DEADLOCK || st === RunStatus.BUG || st === RunStatus.LIVELOCK) return st;
    this.status = RunStatus.RUNNING;
    const tasks = this.tasks;
    const buf = this.runBuf;
    while (this.status === RunStatus.RUNNING) {
      let n = 0;
      for (let i = 0; i < tasks.length; i++) {
        const t = tasks[i]!;
        if (this.enabled(t)) buf[n++] = t;
      }
      if (n === 0) {
        this.onNothingEnabled();
        continue;
      }
      let t: Task;
      if (n === 1) t = buf[0]!;
      else {
        const i = this.strategy.pick(buf, n, this);
        t = buf[i]!;
        this.nChoices++;
        if (this.recordChoices) this.choices.push(t.id);
      }
      this.step(t);
    }
    if (this.throwOnBug && this.bugs.length) throw new BugError(this.bugs[0]!);
    return this.status;
  }

  /**
   * Runs the scheduler (as run() does, other tasks interleave) until task t has
   * exited; then returns DONE even if other tasks are still live. Returns the
   * stopping status (DEADLOCK, BUG, LIVELOCK, IDLE) if t cannot finish. For
   * synchronous library calls such as a sysfs write; not callable from a task.
   */
  runUntilExit(t: Task): RunStatus {
    if (this.current !== null) throw new Error('runUntilExit() called from inside a task');
    const st = this.status;
    if (st === RunStatus.DEADLOCK || st === RunStatus.BUG || st === RunStatus.LIVELOCK) return t.done ? RunStatus.DONE : st;
    this.status = RunStatus.RUNNING;
    const tasks = this.tasks;
    const buf = this.runBuf;
    while (this.status === RunStatus.RUNNING && !t.done) {
      let n = 0;
      for (let i = 0; i < tasks.length; i++) {
        const u = tasks[i]!;
        if (this.enabled(u)) buf[n++] = u;
      }
      if (n === 0) {
        this.onNothingEnabled();
        continue;
      }
      let u: Task;
      if (n === 1) u = buf[0]!;
      else {
        u = buf[this.strategy.pick(buf, n, this)]!;
        this.nChoices++;
        if (this.recordChoices) this.choices.push(u.id);
      }
      this.step(u);
    }
    if (this.throwOnBug && this.bugs.length) throw new BugError(this.bugs[0]!);
    const end = this.status as RunStatus;
    return t.done && (end === RunStatus.RUNNING || end === RunStatus.DONE) ? RunStatus.DONE : end;
  }

  /** Live mode: run everything that can run now; never advances the clock. */
  runUntilIdle(): RunStatus {
    return this.run();
  }

  /** Discrete time never advances past this instant (runUntil). */
  private timeLimit = INF;

  /**
   * Discrete time: run until the clock reaches `ns` (timers and sleepers fire on the
   * way); returns IDLE there even if tasks still wait on later deadlines.
   */
  runUntil(ns: number): RunStatus {
    const prev = this.timeLimit;
    this.timeLimit = ns;
    try {
      for (;;) {
        const s = this.run();
        if (s !== RunStatus.DONE && s !== RunStatus.IDLE) return s;
        const d = this.nextDeadline();
        if (d > ns) {
          this.nowNs = Math.max(this.nowNs, ns);
          return s;
        }
        this.nowNs = Math.max(this.nowNs, d);
        this.fireTimers();
        this.status = RunStatus.RUNNING;
      }
    } finally {
      this.timeLimit = prev;
    }
  }

  /** Tasks found in a wait-for cycle: nothing can ever run them again. */
  private readonly deadlocked = new Set<Task>();

  private onNothingEnabled(): void {
    const tasks = this.tasks;
    if (tasks.length === 0) {
      this.status = RunStatus.DONE;
      return;
    }
    // A lock cycle is a deadlock even while timers keep other work going: no timer
    // can release a mutex. Look before letting time pass.
    const cycle = findWaitCycle(tasks);
    if (cycle && cycle.some((t) => !this.deadlocked.has(t))) {
      const rep = buildDeadlockReport(tasks, this.release);
      for (const t of cycle) this.deadlocked.add(t);
      if (!this.bugs.some((b) => b.signature === rep.signature)) this.report('deadlock', rep.title, rep.text, rep.signature);
      if (this.stopOnBug) {
        this.status = RunStatus.DEADLOCK;
        return;
      }
    }
    if (tasks.every((t) => this.deadlocked.has(t))) {
      // Only deadlocked tasks are left: in discrete time nothing more can happen to them.
      this.status = this.timeMode === 'external' ? RunStatus.IDLE : RunStatus.DEADLOCK;
      return;
    }
    const d = this.nextDeadline();
    if (d !== INF) {
      if (this.timeMode === 'external' || d > this.timeLimit) {
        this.status = RunStatus.IDLE;
        return;
      }
      if (d > this.nowNs) this.nowNs = d;
      this.fireTimers();
      return;
    }
    const rep = buildDeadlockReport(tasks, this.release);
    if (!this.stopOnBug) {
      // Live host: report each distinct hang once; other tasks keep running.
      if (!this.bugs.some((b) => b.signature === rep.signature)) this.report(rep.cycle ? 'deadlock' : 'blocked-forever', rep.title, rep.text, rep.signature);
      this.status = RunStatus.IDLE;
      return;
    }
    this.report(rep.cycle ? 'deadlock' : 'blocked-forever', rep.title, rep.text, rep.signature);
    this.status = RunStatus.DEADLOCK;
  }

  /** Is t's pending op able to proceed now? */
  private enabled(t: Task): boolean {
    switch (t.op) {
      case Op.LOCK: {
        const m = t.obj as Mutex;
        return m.owner === null || (t.interruptible && t.sigpending);
      }
      case Op.DOWN_READ:
      case Op.DOWN_WRITE:
        return !t.queued || this.rwsemGrantable(t.obj as RwSemaphore, t);
      case Op.WAIT_COMPLETION:
        return (t.obj as Completion).done > 0 || t.deadline <= this.nowNs;
      case Op.WAIT_EVENT:
        return !t.queued || t.woken || t.deadline <= this.nowNs || (t.interruptible && t.sigpending);
      case Op.SLEEP:
        return t.deadline <= this.nowNs;
      case Op.JOIN:
        return (t.obj as Task).done;
      case Op.FLUSH_WORK:
      case Op.WAIT_WORK_IDLE: {
        const w = t.obj as Work;
        return t.arg === -1 || w.doneGen >= (t.arg as number) || (!w.running && !w.pending);
      }
      case Op.FLUSH_WORKQUEUE: {
        for (const [w, gen] of t.arg as Array<readonly [Work, number]>) if (w.doneGen < gen && (w.running || w.pending)) return false;
        return true;
      }
      default:
        return true;
    }
  }

  private rwsemGrantable(s: RwSemaphore, t: Task): boolean {
    if (s.writer !== null) return false;
    const ws = s.waiters;
    if (t.op === Op.DOWN_WRITE) return s.readers.length === 0 && ws[0] === t;
    // A reader is granted with the readers at the head of the queue.
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (w === t) return true;
      if (w.op === Op.DOWN_WRITE) return false;
    }
    return false;
  }

  /** Executes t's pending op and, unless it blocked, resumes t to its next op. */
  private step(t: Task): void {
    if (++this.steps > this.maxSteps) {
      this.current = t;
      this.report('livelock', `step budget of ${this.maxSteps} exceeded`, `apsim: execution exceeded ${this.maxSteps} steps (livelock or unbounded loop); last task ${t.name}`, 'livelock');
      this.current = null;
      this.status = RunStatus.LIVELOCK;
      return;
    }
    if (this.onStep !== null) this.onStep(t);
    this.current = t;
    this.previous = t;
    t.lastRun = this.steps;
    const strict = this.strictWaitsOf(t);
    const proceed = this.exec(t);
    if (this.tracing) this.traceStep(t, proceed);
    if (!proceed) {
      this.current = null;
      if (strict !== null) this.checkStrictWaits(t, strict);
      return;
    }
    this.resume(t);
    this.current = null;
    if (strict !== null) this.checkStrictWaits(t, strict);
  }

  /**
   * Before a step of t that may write arbitrary state (not a sched_point, not an op
   * on a strict queue): the condition values of other tasks' pending wait_events on
   * strict queues, to verify afterwards that the step did not change them.
   */
  private strictWaitsOf(t: Task): Array<[Task, boolean]> | null {
    if (this.strictQueues === 0) return null; // the common case: a per-step scan for nothing
    // Steps DPOR treats as dependent with everything may write anything.
    if ((t.op === Op.SCHED && t.obj === null) || t.op === Op.FREE || (t.op === Op.WAIT_EVENT && !(t.obj as WaitQueue).strict)) return null;
    let out: Array<[Task, boolean]> | null = null;
    for (const w of this.tasks) {
      if (w === t || w.op !== Op.WAIT_EVENT || !(w.obj as WaitQueue).strict) continue;
      if ((t.op === Op.WAKE_UP || t.op === Op.WAIT_EVENT) && t.obj === w.obj) continue;
      (out ??= []).push([w, (w.arg as () => boolean)()]);
    }
    return out;
  }

  private checkStrictWaits(t: Task, before: Array<[Task, boolean]>): void {
    for (const [w, v] of before) {
      if (w.op !== Op.WAIT_EVENT || (w.arg as () => boolean)() === v) continue;
      this.current = t;
      this.invariant(
        'strict wait queue',
        `${t.name} changed the condition ${w.name} waits for on ${(w.obj as WaitQueue).name} outside a wake_up/wait_event step on it or a plain sched_point`,
      );
      this.current = null;
    }
  }

  private resume(t: Task): void {
    let val = t.result;
    let err = t.resumeError;
    t.result = undefined;
    t.resumeError = undefined;
    t.op = Op.NONE;
    t.deadline = INF;
    for (;;) {
      const g = t.gens[t.gens.length - 1]!;
      let r: IteratorResult<OpToken, unknown>;
      try {
        r = err === undefined ? g.next(val) : g.throw(err);
      } catch (e) {
        if (t.gens.length > 1) {
          // As with yield*, the error goes to the caller; the operation stack stays
          // at the throw point (see fn).
          t.gens.pop();
          t.frames.pop();
          err = e;
          val = undefined;
          continue;
        }
        this.taskExit(t, undefined, e);
        return;
      }
      if (r.done) {
        if (t.gens.length > 1) {
          t.gens.pop();
          const depth = t.frames.pop()!;
          if (depth >= 0) t.ops.length = depth;
          val = r.value;
          err = undefined;
          continue;
        }
        this.taskExit(t, r.value, undefined);
        return;
      }
      if ((t.op as Op) === Op.CALL) {
        // k.call(): push the frame and run it now (the same step).
        const body = t.obj as KGen<unknown>;
        const name = t.arg as string | null;
        t.op = Op.NONE;
        t.obj = null;
        t.arg = undefined;
        t.frames.push(t.ops.length);
        if (name !== null) t.ops.push(name);
        t.gens.push(body);
        val = undefined;
        err = undefined;
        continue;
      }
      if (r.value !== OP || t.op === Op.NONE) {
        this.taskExit(t, undefined, new Error(`task "${t.name}" yielded ${describeYield(r.value)} instead of a kernel op (an await or a forgotten op call?)`));
        return;
      }
      return;
    }
  }

  private taskExit(t: Task, value: unknown, error: unknown): void {
    t.op = Op.NONE;
    // The finished generators are garbage (and a world snapshot need not compare them).
    t.gens = NO_GENS;
    t.frames = NO_FRAMES;
    const i = this.tasks.indexOf(t);
    if (i >= 0) this.tasks.splice(i, 1);
    if (error !== undefined) {
      t.state = TaskState.FAILED;
      // fn() leaves the stack at the throw point: exactly where the error came from.
      const stack = t.ops.slice();
      t.error = error instanceof TaskError ? error : new TaskError(t.name, stack, error);
      // An oops was reported when it happened; anything else is reported unless a
      // joiner or exit hook takes responsibility for it.
      if (!(error instanceof KernelOops) && !t.joined && !this.exitHooks.has(t)) {
        this.report('task-error', t.error.message, `${t.error.message}\n${error instanceof Error && error.stack ? error.stack.split('\n').slice(1, 6).join('\n') : ''}`, `task-error:${t.name}:${String((error as any)?.message ?? error)}`);
      }
    } else {
      t.state = TaskState.DONE;
      t.exitValue = value;
    }
    if (t.held.length > 0) {
      const title = 'WARNING: lock held when returning to user space!';
      this.lockdep.reportMisuse('held-at-exit', `${t.name}:${t.held.map((h) => h.cls.id).join(',')}`, t.name, t.held.map((h) => h.cls.name), [
        '='.repeat(title.length),
        title,
        `${this.release} #1 Not tainted`,
        '-'.repeat(title.length),
        `${t.comm}/${t.pid} is leaving the kernel with locks still held!`,
        ...heldLines(t),
      ]);
    }
    const hooks = this.exitHooks.get(t);
    if (hooks) {
      this.exitHooks.delete(t);
      for (const h of hooks) h(t);
    }
  }

  /** Executes t's pending op; returns false if the task stays blocked. */
  private exec(t: Task): boolean {
    // A read section is a leaf: nothing but its unlock may follow the lock.
    if (t.readSection !== null && (t.op !== Op.UNLOCK || t.obj !== t.readSection)) {
      const m = t.readSection;
      t.readSection = null;
      this.invariant('read section', `${t.name} did ${opName(t.op)} inside a read section of ${m.name} (mutex_lock with READS must be followed by its mutex_unlock)`);
    }
    switch (t.op) {
      case Op.START:
      case Op.SCHED:
        return true;
      case Op.LOCK: {
        const m = t.obj as Mutex;
        if (m.owner !== null) {
          t.result = -4; // -EINTR: only reachable for interruptible waits
          return true;
        }
        m.owner = t;
        this.pushHeld(t, m, 0, false, t.node!);
        if (t.arg === READS) {
          t.readSection = m;
          // The digest matters to DPOR, which is when accesses are tracked; the live
          // host's rescans of 65,536 queues need not pay for it.
          t.readDigest = this.accessLog !== null && m.digest !== null ? m.digest() : '';
        }
        t.result = 0;
        return true;
      }
      case Op.TRYLOCK: {
        const m = t.obj as Mutex;
        if (m.owner !== null) {
          t.result = false;
          return true;
        }
        m.owner = t;
        this.pushHeld(t, m, 0, true, this.chainFor(t, m.cls, 0, true, 'mutex_trylock', m));
        t.result = true;
        return true;
      }
      case Op.UNLOCK: {
        const m = t.obj as Mutex;
        const i = this.findHeld(t, m);
        if (m.owner !== t || i < 0) {
          this.badUnlock(t, m, 'mutex_unlock');
          return true;
        }
        m.owner = null;
        this.removeHeld(t, i);
        if (t.readSection === m) {
          t.readSection = null;
          if (this.accessLog !== null && m.digest !== null && m.digest() !== t.readDigest)
            this.invariant('read section', `${t.name} changed the state ${m.name} protects inside a read section (mutex_lock with READS)`);
        }
        return true;
      }
      case Op.DOWN_READ: {
        const s = t.obj as RwSemaphore;
        if (!t.queued) {
          if (s.writer === null && s.waiters.length === 0) {
            s.readers.push(t);
            this.pushHeld(t, s, 1, false, t.node!);
            return true;
          }
          t.queued = true;
          s.waiters.push(t);
          return false;
        }
        s.waiters.splice(s.waiters.indexOf(t), 1);
        t.queued = false;
        s.readers.push(t);
        this.pushHeld(t, s, 1, false, t.node!);
        return true;
      }
      case Op.DOWN_WRITE: {
        const s = t.obj as RwSemaphore;
        if (!t.queued) {
          if (s.writer === null && s.readers.length === 0 && s.waiters.length === 0) {
            s.writer = t;
            this.pushHeld(t, s, 0, false, t.node!);
            return true;
          }
          t.queued = true;
          s.waiters.push(t);
          return false;
        }
        s.waiters.splice(s.waiters.indexOf(t), 1);
        t.queued = false;
        s.writer = t;
        this.pushHeld(t, s, 0, false, t.node!);
        return true;
      }
      case Op.DOWN_READ_TRYLOCK: {
        const s = t.obj as RwSemaphore;
        if (s.writer === null && s.waiters.length === 0) {
          s.readers.push(t);
          this.pushHeld(t, s, 1, true, this.chainFor(t, s.cls, 1, true, 'down_read_trylock', s));
          t.result = true;
        } else t.result = false;
        return true;
      }
      case Op.DOWN_WRITE_TRYLOCK: {
        const s = t.obj as RwSemaphore;
        if (s.writer === null && s.readers.length === 0 && s.waiters.length === 0) {
          s.writer = t;
          this.pushHeld(t, s, 0, true, this.chainFor(t, s.cls, 0, true, 'down_write_trylock', s));
          t.result = true;
        } else t.result = false;
        return true;
      }
      case Op.UP_READ: {
        const s = t.obj as RwSemaphore;
        const r = s.readers.indexOf(t);
        const i = this.findHeld(t, s);
        if (r < 0 || i < 0 || t.held[i]!.read === 0) {
          this.badUnlock(t, s, 'up_read');
          return true;
        }
        s.readers.splice(r, 1);
        this.removeHeld(t, i);
        return true;
      }
      case Op.UP_WRITE: {
        const s = t.obj as RwSemaphore;
        const i = this.findHeld(t, s);
        if (s.writer !== t || i < 0) {
          this.badUnlock(t, s, 'up_write');
          return true;
        }
        s.writer = null;
        this.removeHeld(t, i);
        return true;
      }
      case Op.WAIT_COMPLETION: {
        const c = t.obj as Completion;
        if (c.done > 0) {
          if (c.done !== INF) c.done--;
          t.result = t.deadline === INF ? 0 : Math.max(1, t.deadline - this.nowNs);
        } else t.result = 0; // timed out
        return true;
      }
      case Op.COMPLETE: {
        const c = t.obj as Completion;
        if (c.done !== INF) c.done++;
        return true;
      }
      case Op.COMPLETE_ALL:
        (t.obj as Completion).done = INF;
        return true;
      case Op.WAIT_EVENT: {
        const wq = t.obj as WaitQueue;
        const cond = t.arg as () => boolean;
        const ok = cond();
        if (ok || t.deadline <= this.nowNs || (t.interruptible && t.sigpending)) {
          if (t.queued) {
            wq.waiters.splice(wq.waiters.indexOf(t), 1);
            t.queued = false;
          }
          t.woken = false;
          if (ok) t.result = t.deadline === INF ? 0 : Math.max(1, t.deadline - this.nowNs);
          else t.result = t.interruptible && t.sigpending ? -512 : 0;
          return true;
        }
        t.woken = false;
        if (!t.queued) {
          t.queued = true;
          wq.waiters.push(t);
        }
        return false;
      }
      case Op.WAKE_UP: {
        if (t.arg !== null) (t.arg as () => void)();
        for (const w of (t.obj as WaitQueue).waiters) w.woken = true;
        return true;
      }
      case Op.SLEEP:
        t.result = 0;
        return true;
      case Op.JOIN: {
        const u = t.obj as Task;
        if (u.state === TaskState.FAILED) t.resumeError = u.error;
        else t.result = u.exitValue;
        return true;
      }
      case Op.KREF_GET:
      case Op.KREF_GET_UNLESS_ZERO:
      case Op.KREF_PUT:
        return this.execKref(t, t.op, t.obj as Kref, t.arg);
      case Op.ATOMIC:
        t.result = this.execAtomic(t.obj as Atomic, t.arg as number[]);
        return true;
      case Op.FREE:
        this.execFree(t, t.obj as object | null);
        return true;
      case Op.QUEUE_WORK:
        t.result = this.doQueueWork(t.arg as WorkQueue, t.obj as Work);
        return true;
      case Op.FLUSH_WORK:
      case Op.WAIT_WORK_IDLE:
        t.result = t.op === Op.WAIT_WORK_IDLE ? t.result : t.arg !== -1;
        return true;
      case Op.CANCEL_WORK: {
        const w = t.obj as Work;
        let was = t.arg === 'timer';
        if (w.pending) {
          was = true;
          w.pending = false;
          const wq = w.wq;
          if (wq && !w.running) {
            const b = wq.backlog.indexOf(w);
            if (b >= 0) wq.backlog.splice(b, 1);
            wq.inflight.delete(w);
            // A dispatched-but-not-started worker finds nothing pending and exits.
          }
        }
        if (w.running && w.running !== t) {
          t.op = Op.WAIT_WORK_IDLE;
          t.arg = w.startedGen;
          t.result = was;
          return false;
        }
        t.result = was;
        return true;
      }
      case Op.FLUSH_WORKQUEUE:
        return true;
      default:
        throw new Error(`unknown op ${t.op}`);
    }
  }

  /** Op executed outside any task (timer callbacks, the live host's atomic paths). */
  private execDirect(op: Op, obj: unknown, arg: unknown): void {
    switch (op) {
      case Op.COMPLETE:
        if ((obj as Completion).done !== INF) (obj as Completion).done++;
        return;
      case Op.COMPLETE_ALL:
        (obj as Completion).done = INF;
        return;
      case Op.WAKE_UP:
        if (arg !== null) (arg as () => void)();
        for (const w of (obj as WaitQueue).waiters) w.woken = true;
        return;
      case Op.QUEUE_WORK:
        this.lastDirectResult = this.doQueueWork(arg as WorkQueue, obj as Work);
        return;
      case Op.ATOMIC:
        this.lastDirectResult = this.execAtomic(obj as Atomic, arg as number[]);
        return;
      case Op.KREF_GET:
      case Op.KREF_GET_UNLESS_ZERO: {
        const r = obj as Kref;
        if (op === Op.KREF_GET_UNLESS_ZERO && r.refcount === 0) {
          this.lastDirectResult = false;
          return;
        }
        if (r.refcount === 0) this.refcountBug(null, r, 'addition on 0; use-after-free.');
        else r.refcount++;
        this.lastDirectResult = true;
        return;
      }
      case Op.KREF_PUT: {
        const r = obj as Kref;
        if (r.refcount <= 0) {
          this.refcountBug(null, r, 'underflow; use-after-free.');
          this.lastDirectResult = false;
          return;
        }
        if (--r.refcount === 0) {
          r.dead = true;
          const g = (arg as Release<unknown>)(r.obj);
          if (g && typeof (g as any).next === 'function') throw new Error(`kref_put(${r.name}): a sleeping release cannot run in atomic context`);
          this.lastDirectResult = true;
        } else this.lastDirectResult = false;
        return;
      }
      case Op.FREE:
        this.execFree(null, obj as object | null);
        return;
      default:
        throw new Error(`${opName(op)} may sleep and cannot be called outside a task (atomic context)`);
    }
  }

  private execKref(t: Task, op: Op, r: Kref, release: Release<unknown> | null): boolean {
    if (op === Op.KREF_GET_UNLESS_ZERO) {
      if (r.refcount === 0) {
        t.result = false;
        return true;
      }
      r.refcount++;
      t.result = true;
      return true;
    }
    if (op === Op.KREF_GET) {
      if (r.refcount === 0) this.refcountBug(t, r, 'addition on 0; use-after-free.');
      else r.refcount++;
      return true;
    }
    if (r.refcount <= 0) {
      this.refcountBug(t, r, 'underflow; use-after-free.');
      t.result = false;
      return true;
    }
    if (--r.refcount > 0) {
      t.result = false;
      return true;
    }
    r.dead = true;
    t.result = true;
    const g = release!(r.obj);
    if (g && typeof (g as KGen<unknown>).next === 'function') {
      t.gens.push(releaseThen(g as KGen<unknown>, t, this, r.name));
      t.frames.push(-1);
    }
    return true;
  }

  private refcountBug(t: Task | null, r: Kref, what: string): void {
    const title = `refcount_t: ${what}`;
    this.report('refcount', `${title} (${r.name})`, [`------------[ cut here ]------------`, title, `WARNING: CPU: 0 PID: ${t?.pid ?? 0} at lib/refcount.c refcount_warn_saturate`, `refcount: ${r.name}`, ...this.stackLines(t), `---[ end trace 0000000000000000 ]---`].join('\n'), `refcount:${r.name}:${what}:${t?.site ?? ''}`);
  }

  private execAtomic(a: Atomic, arg: number[]): number | boolean {
    const v = a.value;
    switch (arg[0]) {
      case AtomicOp.READ:
        return v;
      case AtomicOp.SET:
        a.value = arg[1]!;
        return v;
      case AtomicOp.ADD_RETURN:
        return (a.value = v + arg[1]!);
      case AtomicOp.FETCH_ADD:
        a.value = v + arg[1]!;
        return v;
      case AtomicOp.CMPXCHG:
        if (v === arg[1]) a.value = arg[2]!;
        return v;
      case AtomicOp.XCHG:
        a.value = arg[1]!;
        return v;
      case AtomicOp.INC_NOT_ZERO:
        if (v === 0) return false;
        a.value = v + 1;
        return true;
      case AtomicOp.DEC_AND_TEST:
        a.value = v - 1;
        return a.value === 0;
      default:
        throw new Error('bad atomic op');
    }
  }

  private execFree(t: Task | null, obj: object | null): void {
    if (obj === null) return;
    const m = this.lifetime.metaOf(obj);
    const r = this.lifetime.free(obj, this.siteOf(t));
    if (r === false && m) {
      const where = t?.site ?? 'atomic context';
      this.report('double-free', `double-free of ${m.type} in ${where}`, [
        '='.repeat(66),
        `BUG: KASAN: double-free in ${where}`,
        `Free of addr ${m.addr} by task ${t ? `${t.comm}/${t.pid}` : 'swapper/0'}`,
        '',
        ...this.stackLines(t),
        '',
        `Allocated by task ${m.alloc.pid} (${m.alloc.task}):`,
        ...frameLines(m.alloc.ops, 'kzalloc'),
        '',
        `Freed by task ${m.free!.pid} (${m.free!.task}):`,
        ...frameLines(m.free!.ops, 'kfree'),
        '='.repeat(66),
      ].join('\n'), `double-free:${m.type}:${where}`);
    }
  }

  // ---------------------------------------------------------------- held locks

  private chainFor(t: Task, cls: HeldLock['cls'], read: 0 | 1 | 2, trylock: boolean, call: string, lock: { addr: string }): ChainNode {
    return this.ld ? this.lockdep.acquire(t, cls, read, trylock, call, lock) : this.lockdep.root;
  }

  private pushHeld(t: Task, lock: Mutex | RwSemaphore, read: 0 | 1 | 2, trylock: boolean, node: ChainNode): void {
    t.held.push({ lock, cls: lock.cls, read, trylock, node, site: t.ops.length ? t.ops[t.ops.length - 1]! : t.name });
  }

  private findHeld(t: Task, lock: object): number {
    const h = t.held;
    for (let i = h.length - 1; i >= 0; i--) if (h[i]!.lock === lock) return i;
    return -1;
  }

  private removeHeld(t: Task, i: number): void {
    const h = t.held;
    if (i === h.length - 1) {
      h.pop(); // the common, in-order unlock: nothing above it to re-chain
      return;
    }
    h.splice(i, 1);
    if (!this.ld) return;
    // Locks held above the released one now sit on a shorter chain.
    for (let j = i; j < h.length; j++) {
      const e = h[j]!;
      const below = j === 0 ? this.lockdep.root : h[j - 1]!.node;
      e.node = below.child(e.node.code);
    }
  }

  private badUnlock(t: Task, lock: Mutex | RwSemaphore, call: string): void {
    const title = 'WARNING: bad unlock balance detected!';
    this.lockdep.reportMisuse('bad-unlock', `${lock.cls.id}:${t.site}`, t.name, [lock.cls.name], [
      '='.repeat(37),
      title,
      `${this.release} #1 Not tainted`,
      '-'.repeat(37),
      `${t.comm}/${t.pid} is trying to release lock (${lock.cls.name}) at:`,
      `${call}+${t.site}`,
      'but there are no more locks to release!',
      '',
      'other info that might help us debug this:',
      ...heldLines(t),
    ]);
    // Lockdep may be off: make sure the bug is recorded anyway.
    if (!this.ld) this.report('bad-unlock', `${title} ${lock.cls.name} in ${t.site}`, title);
  }

  // ---------------------------------------------------------------- traces

  private traceStep(t: Task, proceeded: boolean): void {
    const op = t.op;
    let desc = opName(op);
    const o = t.obj as { cls?: { name: string }; name?: string } | null;
    if (op === Op.SCHED) desc += t.arg ? `(${t.arg})` : '()';
    else if (op === Op.START) desc = 'start';
    else if (op === Op.SLEEP) desc = 'msleep';
    else if (op === Op.JOIN) desc += `(${(t.obj as Task).name})`;
    else if (o && typeof o === 'object') {
      // The trace only observes: touching a freed (poisoned) object here would
      // report a use-after-free the model never made.
      const freed = this.lifetime.metaOf(o)?.free ? this.lifetime.metaOf(o) : undefined;
      desc += freed ? `(freed ${freed.type} ${freed.addr})` : `(${o.cls?.name ?? o.name ?? ''})`;
    }
    let res = '';
    if (!proceeded) res = ' = blocked';
    else if (t.resumeError !== undefined) res = ' = error';
    else if (t.result !== undefined) res = ` = ${String(t.result)}`;
    const held = t.held.length ? ` held={${t.held.map((h) => (h.read ? 'r:' : '') + h.cls.name).join(', ')}}` : '';
    const where = t.ops.length ? ` in ${t.ops[t.ops.length - 1]}` : '';
    this.trace.push(`#${this.steps} t=${this.nowNs} ${t.name}: ${desc}${res}${where}${held}`);
  }
}

function* releaseThen(g: KGen<unknown>, t: Task, k: Kernel, name: string): KGen<boolean> {
  void t;
  yield* k.fn(`${name} release`, g);
  return true;
}

function frameLines(ops: readonly string[], top: string | null): string[] {
  const out: string[] = [];
  if (top) out.push(` ${top}`);
  for (let i = ops.length - 1; i >= 0; i--) out.push(` ${ops[i]}`);
  return out;
}

function describeYield(v: unknown): string {
  if (v && typeof v === 'object' && typeof (v as any).then === 'function') return 'a Promise';
  return typeof v === 'symbol' ? v.toString() : JSON.stringify(v) ?? String(v);
}
