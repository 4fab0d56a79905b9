// Deadlock analysis when no task can run: the wait-for graph (task -> lock -> owner
// -> ...), its cycle if there is one, and every blocked task's held locks.
import { Op, opName } from './ops.js';
import type { Task } from './task.js';
import type { Mutex, RwSemaphore } from './locks.js';
import type { Work, WorkQueue } from './workqueue.js';
import { heldLines } from './lockdep.js';

export interface DeadlockReport {
  /** True when the blocked tasks wait for each other in a cycle. */
  readonly cycle: boolean;
  readonly title: string;
  readonly text: string;
  readonly signature: string;
  /** Names of the tasks in the cycle (or all blocked tasks when there is none). */
  readonly tasks: readonly string[];
}

interface Wait {
  /** What the task waits on, e.g. "mutex_lock(&kvm->lock)". */
  what: string;
  /** Tasks that must act before it can proceed ("owners"). */
  on: Task[];
  /** Short description of the owner relation. */
  rel: string;
}

function waitOf(t: Task): Wait {
  const name = (o: any): string => o?.cls?.name ?? o?.name ?? '?';
  switch (t.op) {
    case Op.LOCK: {
      const m = t.obj as Mutex;
      return { what: `mutex_lock(${m.cls.name})`, on: m.owner ? [m.owner] : [], rel: 'held by' };
    }
    case Op.DOWN_READ:
    case Op.DOWN_WRITE: {
      const s = t.obj as RwSemaphore;
      let on: Task[];
      let rel: string;
      if (s.writer) {
        on = [s.writer];
        rel = 'held for write by';
      } else if (t.op === Op.DOWN_WRITE && s.readers.length) {
        on = [...new Set(s.readers)];
        rel = 'held for read by';
      } else {
        // Queued behind an earlier waiter (a waiting writer blocks new readers).
        const i = s.waiters.indexOf(t);
        on = i > 0 ? [s.waiters[0]!] : [...new Set(s.readers)];
        rel = i > 0 ? 'queued behind' : 'held for read by';
      }
      return { what: `${opName(t.op)}(${s.cls.name})`, on, rel };
    }
    case Op.JOIN:
      return { what: `kthread_stop(${(t.obj as Task).name})`, on: [t.obj as Task], rel: 'waiting for exit of' };
    case Op.FLUSH_WORK:
    case Op.WAIT_WORK_IDLE: {
      const w = t.obj as Work;
      return { what: `${opName(t.op)}(${w.name})`, on: w.running ? [w.running] : [], rel: 'running in' };
    }
    case Op.FLUSH_WORKQUEUE: {
      const on: Task[] = [];
      for (const [w] of t.arg as Array<readonly [Work, number]>) if (w.running) on.push(w.running);
      return { what: `flush_workqueue(${(t.obj as WorkQueue).name})`, on, rel: 'running in' };
    }
    default:
      return { what: `${opName(t.op)}(${name(t.obj)})`, on: [], rel: '' };
  }
}

/**
 * The tasks of a wait-for cycle among the blocked tasks, or null. It runs at every
 * point where nothing can run (each msleep of a reset loop, say), so it builds no
 * strings, and when no waiter waits on another waiter it allocates nothing.
 */
export function findWaitCycle(blocked: readonly Task[]): Task[] | null {
  // Mostly every waiter has at most one owner (a mutex, a worker): then a cycle is
  // found by following owners from each task, without allocating. The full search
  // runs only for several owners (rwsem readers, a flushed queue) or a real cycle,
  // and picks the reported cycle (DFS in spawn order).
  let full = false;
  for (let i = 0; i < blocked.length && !full; i++) {
    const start = blocked[i]!;
    let u: Task | null | undefined = start;
    for (let n = 0; n <= blocked.length; n++) {
      u = soleOwner(u);
      if (u === undefined || u === start) full = true;
      if (u === null || u === undefined || u === start || !blocked.includes(u)) break;
    }
  }
  if (!full) return null;
  const onOf = new Map<Task, Task[]>();
  for (const t of blocked) onOf.set(t, ownersOf(t));
  return cycleIn(blocked, (t) => onOf.get(t) ?? []);
}

function cycleIn(blocked: readonly Task[], on: (t: Task) => readonly Task[]): Task[] | null {
  const member = new Set(blocked);
  const state = new Map<Task, number>(); // 1 = on stack, 2 = done
  const stack: Task[] = [];
  let cycle: Task[] | null = null;
  const dfs = (t: Task): boolean => {
    state.set(t, 1);
    stack.push(t);
    for (const u of on(t)) {
      if (!member.has(u)) continue; // u is not blocked (e.g. exited holding a lock)
      const s = state.get(u);
      if (s === 1) {
        cycle = stack.slice(stack.indexOf(u));
        return true;
      }
      if (s === undefined && dfs(u)) return true;
    }
    stack.pop();
    state.set(t, 2);
    return false;
  };
  for (const t of blocked) if (!state.has(t) && dfs(t)) break;
  return cycle;
}

/** The tasks t waits for (lock owners, the task it joins, the worker it flushes). */
function ownersOf(t: Task): Task[] {
  return waitOf(t).on;
}

/** The one task t waits for, null for none, undefined when it may be several. */
function soleOwner(t: Task): Task | null | undefined {
  switch (t.op) {
    case Op.LOCK:
      return (t.obj as Mutex).owner;
    case Op.JOIN:
      return t.obj as Task;
    case Op.FLUSH_WORK:
    case Op.WAIT_WORK_IDLE:
      return (t.obj as Work).running;
    case Op.DOWN_READ:
    case Op.DOWN_WRITE:
    case Op.FLUSH_WORKQUEUE:
      return undefined;
    default:
      return null; // nothing a task can do wakes it (waitOf: no owners)
  }
}

export function buildDeadlockReport(blocked: readonly Task[], release: string): DeadlockReport {
  const waits = new Map<Task, Wait>();
  for (const t of blocked) waits.set(t, waitOf(t));

  // Find a cycle by DFS in spawn order (deterministic).
  const cycle: Task[] | null = cycleIn(blocked, (t) => waits.get(t)?.on ?? []);

  const lines: string[] = [];
  const involved = cycle ?? [...blocked];
  if (cycle) {
    const c: Task[] = cycle;
    lines.push('INFO: task deadlock detected: no task can make progress');
    lines.push('Wait-for cycle:');
    c.forEach((t, i) => {
      const w = waits.get(t)!;
      const next = c[(i + 1) % c.length]!;
      lines.push(`  ${t.name}/${t.pid} waits in ${w.what}${t.ops.length ? ` in ${t.ops[t.ops.length - 1]}` : ''}, ${w.rel} ${next.name}/${next.pid}`);
    });
  } else {
    lines.push('INFO: tasks blocked forever: nothing can wake them');
  }
  for (const t of blocked) {
    const w = waits.get(t)!;
    lines.push(`INFO: task ${t.comm}:${t.pid} blocked in ${w.what}${w.on.length ? ` (${w.rel} ${w.on.map((o) => `${o.name}/${o.pid}${o.done ? ' [exited]' : ''}`).join(', ')})` : ' (nobody can signal it)'}`);
    lines.push(`      ops: ${t.ops.length ? t.ops.join(' > ') : t.name}`);
    lines.push(...heldLines(t).map((l) => '      ' + l));
  }
  lines.push(`Kernel: ${release}`);
  const title = cycle
    ? `deadlock: ${(cycle as Task[]).map((t) => `${t.name} [${waits.get(t)!.what}]`).join(' -> ')}`
    : `blocked forever: ${blocked.map((t) => `${t.name} [${waits.get(t)!.what}]`).join(', ')}`;
  const signature = (cycle ? 'deadlock:' : 'blocked:') + involved.map((t) => waits.get(t)!.what).sort().join('|');
  return { cycle: cycle !== null, title, text: lines.join('\n'), signature, tasks: involved.map((t) => t.name) };
}
