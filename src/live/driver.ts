// The live loop: drives a Kernel in external time so that virtual time follows real
// time. Whenever work arrives (a FUSE write, an HTTP request, an HMC change) the
// owner calls kick(): the clock is advanced to "now" (firing due timers and machine
// events) and the scheduler runs every task that can run. When only timed waits are
// left, run() returns IDLE and a single setTimeout is armed for nextDeadline().
//
// Virtual time = vt0 + (real monotonic time since start). vt0 is the virtual time at
// which the live phase began (after boot and journal replay ran in fast-forward).
import { RunStatus, type Kernel, type KGen, type Task } from '../kernel/index.js';

/** Longest single timer sleep; longer deadlines are re-checked (keeps clock drift small). */
const MAX_SLEEP_MS = 60_000;

export class LiveDriver {
  private readonly t0 = process.hrtime.bigint();
  private readonly vt0: number;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private running = false;
  private again = false;
  private stopped = false;
  /** Number of kicks (scheduler runs) so far. */
  kicks = 0;
  /** Last status returned by the scheduler. */
  lastStatus: RunStatus = RunStatus.IDLE;
  /** Called after every kick's scheduler run (the guests poll QEMU's notification counters). */
  readonly afterRun: Array<() => void> = [];

  constructor(
    readonly k: Kernel,
    private readonly onError: (e: unknown) => void = (e) => process.stderr.write(`apsim: live loop: ${String(e)}\n`),
  ) {
    this.vt0 = k.now();
  }

  /** The virtual time that corresponds to the real present. */
  virtualNow(): number {
    return this.vt0 + Number(process.hrtime.bigint() - this.t0);
  }

  /**
   * Advances the clock to the present and runs every runnable task (synchronously).
   * Re-entrant calls (from a task's exit hook) are folded into the running loop.
   */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        this.kicks++;
        this.k.advanceTo(this.virtualNow());
        this.lastStatus = this.k.run();
      } while (this.again && !this.stopped);
      for (const f of this.afterRun) f();
    } catch (e) {
      this.onError(e);
    } finally {
      this.running = false;
    }
    this.arm();
  }

  /** Spawns a task and runs the scheduler; resolves with its exit value. */
  spawn<T>(comm: string, body: KGen<T>, onTask?: (t: Task) => void): Promise<T> {
    const t = this.k.spawn(comm, body);
    onTask?.(t);
    const p = new Promise<T>((resolve, reject) => {
      this.k.onExit(t, (u) => (u.error ? reject(u.error) : resolve(u.exitValue as T)));
    });
    this.kick();
    return p;
  }

  /**
   * Spawns a task and runs the scheduler once, synchronously: the task's value if it
   * finished within this run, otherwise undefined (it keeps running).
   */
  runNow<T>(comm: string, body: KGen<T>): { done: true; value: T } | { done: false } {
    const t = this.k.spawn(comm, body);
    this.k.onExit(t, () => {});
    this.kick();
    if (!t.done) return { done: false };
    if (t.error) throw t.error;
    return { done: true, value: t.exitValue as T };
  }

  /** Arms the timer for the next deadline (one timer at a time). */
  private arm(): void {
    if (this.stopped) return;
    const d = this.k.nextDeadline();
    if (d === Infinity) {
      this.clearTimer();
      return;
    }
    if (this.timer !== null && this.timerAt <= d) return;
    this.clearTimer();
    const ms = Math.min(MAX_SLEEP_MS, Math.max(0, (d - this.virtualNow()) / 1e6));
    this.timerAt = d;
    // Do not keep the process alive for kernel timers alone: the HTTP server and the
    // FUSE session do that, and shutdown must not wait for the next poll.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.kick();
    }, Math.ceil(ms));
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }
}

/**
 * Fast-forward (not real time): runs the kernel until its clock reaches `ns`, firing
 * timers on the way. For boot and journal replay before the live phase starts.
 */
export function fastForward(k: Kernel, ns: number): RunStatus {
  for (;;) {
    const s = k.run();
    if (s !== RunStatus.DONE && s !== RunStatus.IDLE) return s;
    const d = k.nextDeadline();
    if (d > ns) {
      k.advanceTo(ns);
      return k.run();
    }
    k.advanceTo(d);
  }
}

/** Runs a task to completion in fast-forward time (boot and replay). */
export function runTaskFast<T>(k: Kernel, comm: string, body: KGen<T>, limitNs = 60e9): T {
  const t = k.spawn(comm, body);
  k.onExit(t, () => {});
  const deadline = k.now() + limitNs;
  for (;;) {
    const s = k.run();
    if (t.done) break;
    if (s !== RunStatus.DONE && s !== RunStatus.IDLE) throw new Error(`${comm}: scheduler stopped (${s})`);
    const d = k.nextDeadline();
    if (d === Infinity || d > deadline) throw new Error(`${comm}: task cannot finish (${t.name} is blocked)`);
    k.advanceTo(d);
  }
  if (t.error) throw t.error;
  return t.exitValue as T;
}
