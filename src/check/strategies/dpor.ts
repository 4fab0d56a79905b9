// Source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, POPL'14), run
// stateless. Every step of the explored phase is an event; two events of different
// tasks are dependent iff they touch the same object (lock, rwsem, completion, wait
// queue, kref, atomic, work item, task) or one of them is "global": a sched_point
// (an unlocked shared access) or a wait_event (its condition reads arbitrary state)
// — unless its wait queue is strict (its condition state changes only in steps on
// the queue or after a plain sched_point, which the kernel checks), then it is keyed by the
// queue; a sched_point_on is keyed by its object. A kfree depends on the steps that
// touched the freed object: the kernel logs which heap objects (kzalloc) each step
// reads or writes (a touch after the kfree is a use-after-free, reported as such),
// and on global steps. First steps and msleep are local.
//
// Happens-before is tracked with vector clocks (including spawn edges). For each new
// event e' the latest earlier dependent event e of another task that is not already
// ordered before e' through e's task's own history is a race; the reversal is
// scheduled at the state before e by adding an *initial* of notdep(e).e' to its
// backtrack set (source sets). A release (unlock, up, complete) never races with a
// later blocking acquire of the same object: they cannot be co-enabled in the other
// order. Sleep sets prune schedules equivalent to explored ones; an execution whose
// every enabled task sleeps is abandoned (Redundant).
import { Op, READS, type Task, type WaitQueue } from '../../kernel/index.js';
import { Redundant, enabledFingerprint, notDeterministic, type Explorer } from './explorer.js';

const NONE = -1;
const GLOBAL = -2;
/**
 * A kfree's key. Races are found from the access log (record), but what the pending
 * step of a sleeping task will touch is unknown — even a first step or an msleep
 * (otherwise local) may read the object — so for sleep sets a kfree is dependent
 * with every event, local ones included.
 */
const FREE = -3;
/**
 * Keys at or above this are read sections (mutex_lock(m, READS) and its unlock) of
 * the object with key `k - READ`: two read sections commute, a read section and any
 * other operation on the object do not.
 */
const READ = 1 << 24;

const enum Flag {
  RELEASE = 1,
  BLOCKING = 2,
}

interface Node {
  /** Enabled task ids and their pending event keys. */
  readonly enabled: Map<number, number>;
  /** enabledFingerprint() at the first visit (replays must match it). */
  readonly fp: number;
  readonly backtrack: Set<number>;
  readonly done: Set<number>;
  /** Sleep set on arrival: task id -> event key. */
  readonly sleep: Map<number, number>;
  chosen: number;
}

interface Ev {
  readonly task: number;
  readonly key: number;
  readonly flags: number;
  /** 1-based position within its task. */
  readonly seq: number;
  clock: number[];
}

function flagsOf(op: Op): number {
  switch (op) {
    case Op.UNLOCK:
    case Op.UP_READ:
    case Op.UP_WRITE:
    case Op.COMPLETE:
    case Op.COMPLETE_ALL:
    case Op.WAKE_UP:
      return Flag.RELEASE;
    case Op.LOCK:
    case Op.DOWN_READ:
    case Op.DOWN_WRITE:
    case Op.WAIT_COMPLETION:
    case Op.JOIN:
    case Op.FLUSH_WORK:
    case Op.WAIT_WORK_IDLE:
    case Op.FLUSH_WORKQUEUE:
      return Flag.BLOCKING;
    default:
      return 0;
  }
}

function dependent(a: number, b: number): boolean {
  if (a === FREE || b === FREE) return true;
  if (a === NONE || b === NONE) return false;
  if (a === GLOBAL || b === GLOBAL) return true;
  if (a >= READ) {
    if (b >= READ) return false;
    a -= READ;
  } else if (b >= READ) b -= READ;
  return a === b;
}

export class DporExplorer implements Explorer {
  readonly name = 'dpor';
  readonly seeded = false;
  readonly tracksAccesses = true;
  /** Choice nodes by explored-phase step index. */
  private nodes: (Node | undefined)[] = [];
  /** Steps of the prefix to replay. */
  private prefix = 0;
  private started = false;
  // Per-execution state.
  private keys = new Map<object, number>();
  private events: Ev[] = [];
  private lastOfTask: (number | undefined)[] = [];
  private seqOfTask: number[] = [];
  private spawnClock: (number[] | undefined)[] = [];
  private byKey = new Map<number, number[]>();
  private lastGlobal = -1;
  /** Heap object -> per task id, the latest event that touched it (kernel access log). */
  private accessedBy = new Map<object, number[]>();
  /** Object key -> per task id, its read-section events on the object, in order. */
  private readsOf = new Map<number, number[][]>();
  private sleep = new Map<number, number>();
  private seenTasks = 0;
  /** Executions abandoned by sleep sets. */
  redundant = 0;

  begin(): boolean {
    if (this.started && !this.advance()) return false;
    this.started = true;
    this.keys = new Map();
    this.events = [];
    this.lastOfTask = [];
    this.seqOfTask = [];
    this.spawnClock = [];
    this.byKey = new Map();
    this.lastGlobal = -1;
    this.accessedBy = new Map();
    this.readsOf = new Map();
    this.sleep = new Map();
    this.seenTasks = -1;
    this.reachedPrefix = this.prefix === 0;
    return true;
  }
  /** Did this execution reach the last choice point of its prefix? */
  private reachedPrefix = true;

  private advance(): boolean {
    const nodes = this.nodes;
    for (let s = nodes.length - 1; s >= 0; s--) {
      const n = nodes[s];
      if (!n) continue;
      for (const p of n.backtrack)
        if (!n.done.has(p) && !n.sleep.has(p)) {
          n.done.add(p);
          n.chosen = p;
          nodes.length = s + 1;
          this.prefix = s + 1;
          return true;
        }
    }
    return false;
  }

  /** The dependency key of a task's pending operation. */
  private keyOf(t: Task): number {
    switch (t.op) {
      case Op.START:
      case Op.SLEEP:
      case Op.NONE:
        return NONE;
      case Op.SCHED:
        // A plain sched_point: an unlocked access to anything; sched_point_on: keyed.
        return t.obj === null ? GLOBAL : this.objKey(t.obj as object);
      case Op.FREE:
        return t.obj === null ? NONE : FREE;
      case Op.WAIT_EVENT:
        // Its condition reads arbitrary state, unless the queue is strict: then every
        // write to that state is a step on the queue or a plain sched_point (checked), and
        // the wait is keyed by the queue like any other op on it.
        return (t.obj as WaitQueue).strict ? this.objKey(t.obj as object) : GLOBAL;
      case Op.LOCK:
        return t.arg === READS ? READ + this.objKey(t.obj as object) : this.objKey(t.obj as object);
      case Op.UNLOCK:
        return t.readSection === t.obj ? READ + this.objKey(t.obj as object) : this.objKey(t.obj as object);
      default: {
        const o = t.obj as object | null;
        if (o === null || typeof o !== 'object') return NONE;
        return this.objKey(o);
      }
    }
  }

  private objKey(o: object): number {
    let k = this.keys.get(o);
    if (k === undefined) this.keys.set(o, (k = this.keys.size));
    return k;
  }

  pick(tasks: readonly Task[], n: number, step: number): number {
    let node = this.nodes[step];
    if (step < this.prefix && node) {
      // Keys are numbered in order of first sight; scanning the enabled tasks exactly
      // as the first visit did keeps them identical across replays of a prefix — and
      // in a deterministic scenario the same tasks are enabled with the same pending
      // operations. Anything else would make the "proof" a proof of something else.
      if (n !== node.enabled.size) throw diverged(step, `${n} tasks enabled, ${node.enabled.size} the first time`);
      if (enabledFingerprint(tasks, n) !== node.fp) throw diverged(step, 'the enabled tasks are about to do other things than the first time');
      for (let i = 0; i < n; i++) {
        const t = tasks[i]!;
        if (node.enabled.get(t.id) !== this.keyOf(t)) throw diverged(step, `task #${t.id} (${t.name}) is not about to do what it was the first time`);
      }
      if (step === this.prefix - 1) this.reachedPrefix = true;
      this.sleep = new Map(node.sleep);
      for (let i = 0; i < n; i++) if (tasks[i]!.id === node.chosen) return this.choose(node, tasks[i]!, i);
      throw diverged(step, `task #${node.chosen} is not enabled`);
    }
    const enabled = new Map<number, number>();
    for (let i = 0; i < n; i++) enabled.set(tasks[i]!.id, this.keyOf(tasks[i]!));
    node = { enabled, fp: enabledFingerprint(tasks, n), backtrack: new Set(), done: new Set(), sleep: new Map(this.sleep), chosen: -1 };
    this.nodes[step] = node;
    this.nodes.length = step + 1;
    for (let i = 0; i < n; i++) {
      const id = tasks[i]!.id;
      if (!this.sleep.has(id)) {
        node.backtrack.add(id);
        node.done.add(id);
        node.chosen = id;
        return this.choose(node, tasks[i]!, i);
      }
    }
    throw new Redundant();
  }

  /** Sleep set after choosing `t` at `node`: sleepers and explored siblings independent of t's event. */
  private choose(node: Node, t: Task, i: number): number {
    const ev = node.enabled.get(t.id)!;
    const next = new Map<number, number>();
    for (const [q, k] of node.sleep) if (q !== t.id && !dependent(k, ev)) next.set(q, k);
    for (const q of node.done) if (q !== t.id && !dependent(node.enabled.get(q)!, ev)) next.set(q, node.enabled.get(q)!);
    // The sleep set applies after the event; onStep filters with the event itself again (harmless).
    this.pendingSleep = next;
    return i;
  }
  private pendingSleep: Map<number, number> | null = null;

  onStep(t: Task, step: number, spawned: number, accessed?: readonly object[] | null): void {
    this.noteAccesses(accessed);
    const key = this.keyOf(t);
    // Tasks spawned by the previous step happen after it.
    if (this.seenTasks < 0) this.seenTasks = spawned;
    else if (spawned > this.seenTasks) {
      const last = this.events[this.events.length - 1];
      for (let id = this.seenTasks; id < spawned; id++) this.spawnClock[id] = last ? last.clock : [];
      this.seenTasks = spawned;
    }
    if (this.pendingSleep !== null) {
      this.sleep = this.pendingSleep;
      this.pendingSleep = null;
    } else if (this.sleep.has(t.id)) throw new Redundant();
    else if (this.sleep.size > 0) for (const [q, k] of this.sleep) if (dependent(k, key)) this.sleep.delete(q);
    void step;
    this.record(t, key, true);
  }

  /**
   * Operations still pending when the execution ended (tasks blocked in a deadlock)
   * never become events, but they race like one: t1 blocked on B held by t0 must be
   * able to take B before t0 did.
   */
  end(pending?: readonly Task[], accessed?: readonly object[] | null): void {
    // The prefix ends in the choice point whose choice changed: an execution that never
    // got there is not the one the search asked for.
    if (!this.reachedPrefix) throw diverged(this.prefix - 1, 'the execution ended before it');
    this.noteAccesses(accessed);
    if (!pending) return;
    for (const t of pending) if (t.op !== Op.NONE) this.record(t, this.keyOf(t), false);
  }

  /** The heap objects the last recorded event touched while it ran. */
  private noteAccesses(accessed: readonly object[] | null | undefined): void {
    if (!accessed || accessed.length === 0) return;
    const j = this.events.length - 1;
    if (j < 0) return;
    const p = this.events[j]!.task;
    for (const o of accessed) {
      let a = this.accessedBy.get(o);
      if (a === undefined) this.accessedBy.set(o, (a = []));
      a[p] = j;
    }
  }

  private record(t: Task, key: number, push: boolean): void {
    const p = t.id;
    const seq = (this.seqOfTask[p] ?? 0) + 1;
    this.seqOfTask[p] = seq;
    const lp = this.lastOfTask[p];
    const base = lp !== undefined ? this.events[lp]!.clock : (this.spawnClock[p] ?? []);
    const clock = base.slice();
    const flags = flagsOf(t.op);
    const j = this.events.length;
    const ev: Ev = { task: p, key, flags, seq, clock };
    const races: number[] = [];
    /** Orders the new event after event e; a race unless its task's history already did. */
    const after = (e: number): void => {
      const x = this.events[e]!;
      if (!covers(base, x)) races.push(e);
      join(clock, x.clock);
    };
    /** The latest event of `list` (one object's, in order) the new event races with, if any. */
    const latestRace = (list: readonly number[]): void => {
      for (let x = list.length - 1; x >= 0; x--) {
        const e = this.events[list[x]!]!;
        if (e.task === p || covers(base, e)) break;
        // A release never races with a later blocking acquire of the same object.
        if (e.flags & Flag.RELEASE && flags & Flag.BLOCKING) continue;
        races.push(list[x]!);
        break;
      }
    };
    const g = this.lastGlobal;
    const afterGlobal = (): void => {
      if (g >= 0 && this.events[g]!.task !== p) after(g);
    };
    if (key === FREE) {
      // kfree races with the latest step of each other task that touched the object
      // (logged by the kernel; a later touch is a use-after-free, reported) and with
      // the latest global step.
      let a = this.accessedBy.get(t.obj as object);
      if (a !== undefined)
        for (let q = 0; q < a.length; q++) {
          const e = a[q];
          if (q !== p && e !== undefined) after(e);
        }
      afterGlobal();
      if (push) {
        if (a === undefined) this.accessedBy.set(t.obj as object, (a = []));
        a[p] = j; // a second kfree races with this one (double free)
      }
    } else if (key === GLOBAL) {
      for (let q = 0; q < this.lastOfTask.length; q++) {
        const e = this.lastOfTask[q];
        if (q !== p && e !== undefined) after(e);
      }
      if (push) this.lastGlobal = j;
    } else if (key !== NONE) {
      // Read sections of an object are ordered only against its other operations:
      // those are in byKey (a total order), the read events per task in readsOf.
      const isRead = key >= READ;
      const obj = isRead ? key - READ : key;
      const list = this.byKey.get(obj);
      if (list) {
        latestRace(list);
        join(clock, this.events[list[list.length - 1]!]!.clock);
      }
      const reads = this.readsOf.get(obj);
      if (isRead) {
        if (push) {
          let r = reads;
          if (r === undefined) this.readsOf.set(obj, (r = []));
          (r[p] ??= []).push(j);
        }
      } else {
        if (reads !== undefined)
          for (let q = 0; q < reads.length; q++) {
            const rq = reads[q];
            if (q === p || rq === undefined) continue;
            latestRace(rq);
            join(clock, this.events[rq[rq.length - 1]!]!.clock);
          }
        if (push) {
          if (list) list.push(j);
          else this.byKey.set(obj, [j]);
        }
      }
      afterGlobal();
    }
    clock[p] = seq;
    if (push) {
      this.events.push(ev);
      this.lastOfTask[p] = j;
    } else this.seqOfTask[p] = seq - 1;
    for (const i of races) this.race(i, j, ev);
  }

  /** Event i races with the new event j: schedule an initial of notdep(i).j before i. */
  private race(i: number, j: number, ej: Ev): void {
    const node = this.nodes[i];
    if (!node) return; // only one task could run there: nothing to reverse at that state
    const ei = this.events[i]!;
    // v = events after i that do not happen after ei, then ej. Initials: tasks whose
    // first event in v has no predecessor in v.
    const first = new Map<number, Ev>();
    for (let x = i + 1; x < j; x++) {
      const e = this.events[x]!;
      if (covers(e.clock, ei)) continue;
      if (!first.has(e.task)) first.set(e.task, e);
    }
    if (!first.has(ej.task)) first.set(ej.task, ej);
    const initials: number[] = [];
    for (const [q, e] of first) {
      let isInitial = true;
      for (const [r, f] of first)
        if (r !== q && f !== e && covers(e.clock, f)) {
          isInitial = false;
          break;
        }
      if (isInitial) initials.push(q);
    }
    for (const q of initials) if (node.backtrack.has(q) || node.sleep.has(q)) return;
    for (const q of initials)
      if (node.enabled.has(q)) {
        node.backtrack.add(q);
        return;
      }
    // No initial is enabled there (blocking semantics): fall back to every enabled task.
    for (const q of node.enabled.keys()) if (!node.sleep.has(q)) node.backtrack.add(q);
  }
}

/** Does clock c include event e? */
function covers(c: number[], e: Ev): boolean {
  return (c[e.task] ?? 0) >= e.seq;
}

function join(into: number[], c: number[]): void {
  for (let i = 0; i < c.length; i++) {
    const v = c[i];
    if (v !== undefined && (into[i] ?? 0) < v) into[i] = v;
  }
  for (let i = 0; i < into.length; i++) if (into[i] === undefined) into[i] = 0;
}

function diverged(step: number, what: string) {
  return notDeterministic(`dpor: replaying a prefix, at step ${step}`, what);
}
