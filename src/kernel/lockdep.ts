// Lockdep: the kernel's lock-order validator, modelled on
// Documentation/locking/lockdep-design.rst.
//
// - Locks belong to classes by name; the dependency graph is between classes and is
//   kept across every execution of a run (a Lockdep object outlives Kernels), so an
//   inversion seen in two separate executions is still reported.
// - Acquisitions are checked when the lock is *called*, before the task blocks, so a
//   report is printed even in the execution that then deadlocks.
// - Edges carry read/write types (EN, ER, SN, SR); a cycle is reported only when it is
//   strong (no -(xR)-> immediately followed by -(Sx)->), which makes rwsems exact.
// - Trylock acquisitions add no edges into the trylocked lock; locks taken after it
//   still depend on it.
// - A chain cache (a trie over held-lock stacks) validates each distinct stack once.
// - Unlike the kernel, lockdep never switches itself off: reports are deduplicated
//   by cycle.
import { markShared } from './snapshot.js';
import type { Task, HeldLock } from './task.js';

/** Edge type bits: first letter = how the earlier lock is held, second = the later. */
export const EN = 1;
export const ER = 2;
export const SN = 4;
export const SR = 8;
const STARTS_S = SN | SR;
const ENDS_R = ER | SR;

export function edgeType(prevRead: number, nextRead: number): number {
  if (prevRead === 0) return nextRead === 2 ? ER : EN;
  return nextRead === 2 ? SR : SN;
}

export function edgeTypeName(bit: number): string {
  return bit === EN ? 'EN' : bit === ER ? 'ER' : bit === SN ? 'SN' : 'SR';
}

/** Where a dependency was first seen: the task and its operation stack. */
export interface Site {
  readonly comm: string;
  readonly pid: number;
  /** The lock primitive called (mutex_lock, down_write, ...). */
  readonly call: string;
  /** Operation stack, outermost first. */
  readonly ops: readonly string[];
}

export class LockClass {
  /** Dependencies this class -> other class, keyed by the other class's id. */
  readonly out = new Map<number, Dep>();
  usedWrite = false;
  usedRead = false;
  /**
   * lockdep_set_novalidate_class(): acquisitions are not checked and add no
   * dependencies either way (the driver core does this for &dev->mutex).
   */
  novalidate = false;
  /** Position in the declared lock order (Lockdep.declareOrder), -1 when not in it. */
  rank = -1;
  constructor(
    readonly id: number,
    readonly name: string,
    /** 'mutex' | 'rwsem' | 'map' (pseudo-lock such as a work item's completion map). */
    readonly kind: string,
  ) {}

  /** The kernel's usage string for a process-context-only lock. */
  usage(): string {
    return this.usedRead ? '{++++}' : '{+.+.}';
  }

  /** The kernel's "{wait_type_outer:wait_type_inner}" (sleeping locks are 3:3). */
  waitType(): string {
    return this.kind === 'map' ? '{0:0}' : '{3:3}';
  }
}

export class Dep {
  types = 0;
  /** Site of the first acquisition that created each type of this edge. */
  readonly sites: (Site | undefined)[] = [];
  constructor(
    readonly from: LockClass,
    readonly to: LockClass,
  ) {}
  /** The site of the first-seen type (the kernel keeps one trace per lock_list). */
  firstSite(): Site | undefined {
    for (const s of this.sites) if (s) return s;
    return undefined;
  }
}

/** A node of the chain cache: one distinct stack of held locks. */
export class ChainNode {
  children: Map<number, ChainNode> | null = null;
  validated = false;
  constructor(
    readonly parent: ChainNode | null,
    readonly code: number,
    readonly depth: number,
  ) {}

  child(code: number): ChainNode {
    let m = this.children;
    if (m === null) m = this.children = new Map();
    let c = m.get(code);
    if (c === undefined) {
      c = new ChainNode(this, code, this.depth + 1);
      m.set(code, c);
    }
    return c;
  }
}

export interface LockdepReport {
  readonly kind: 'circular' | 'recursive' | 'bad-unlock' | 'held-at-exit' | 'assert-held';
  /** Dedup key: the canonical cycle (class ids). */
  readonly signature: string;
  /** Classes involved, in cycle order starting at the lock being acquired. */
  readonly classes: readonly string[];
  /** The kernel-format report, one line per array element. */
  readonly lines: readonly string[];
  readonly task: string;
}

/**
 * A documented lock order (e.g. Documentation/arch/s390/vfio-ap-locking.rst): classes
 * named in `order` must be acquired in that order, and each of `nestings` (an outer
 * class held while the inner one is acquired) is a documented path that a campaign is
 * expected to exercise. Lockdep records acquisitions against it: the LockDoc lesson
 * (checker-anchors §3) is that documented rules are checked, not trusted.
 */
export interface LockOrder {
  readonly name: string;
  /** Where the rules come from (printed with violations). */
  readonly source: string;
  readonly order: readonly string[];
  readonly nestings: ReadonlyArray<readonly [string, string]>;
}

/** What is wrong with a LockOrder (it may come from a user's scenario file), or null. */
export function lockOrderProblem(x: unknown): string | null {
  const r = x as Partial<LockOrder> | null;
  if (!r || typeof r !== 'object') return 'a lock order must be an object { name, source, order, nestings }';
  if (typeof r.name !== 'string' || r.name === '') return 'a lock order needs a name';
  const where = `lock order "${r.name}"`;
  if (typeof r.source !== 'string') return `${where}: source must be a string`;
  if (!Array.isArray(r.order) || r.order.length < 2 || !r.order.every((n) => typeof n === 'string' && n !== '')) return `${where}: order must list at least two lock class names`;
  const seen = new Set<string>();
  for (const n of r.order) {
    if (seen.has(n)) return `${where}: ${n} is listed twice`;
    seen.add(n);
  }
  if (!Array.isArray(r.nestings)) return `${where}: nestings must be an array of [outer, inner] pairs`;
  for (const p of r.nestings) {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || typeof p[1] !== 'string') return `${where}: nestings must be an array of [outer, inner] pairs`;
    const [a, b] = p as unknown as readonly [string, string];
    if (!seen.has(a) || !seen.has(b) || r.order.indexOf(a) >= r.order.indexOf(b)) return `${where}: nesting ${a} -> ${b} does not follow the order`;
  }
  return null;
}

/** An acquisition against the declared order: `inner` taken while `outer` was held. */
export interface OrderViolation {
  readonly outer: string;
  readonly inner: string;
  /** The first acquisition that did it. */
  readonly site: Site;
}

export interface LockdepStats {
  classes: number;
  dependencies: number;
  chains: number;
  chainLookups: number;
  validations: number;
  reports: number;
}

/** Encodes (class, read, trylock) into one small integer for the chain trie. */
export function chainCode(cls: LockClass, read: number, trylock: boolean): number {
  return cls.id * 8 + read * 2 + (trylock ? 1 : 0);
}

export class Lockdep {
  enabled: boolean;
  /** Kernel release printed in report headers. */
  release = '6.12.0-apsim';
  readonly root = new ChainNode(null, -1, 0);
  private readonly classes: LockClass[] = [];
  private readonly byName = new Map<string, LockClass>();
  private readonly seen = new Set<string>();
  readonly reports: LockdepReport[] = [];
  private deps = 0;
  private chains = 0;
  private chainLookups = 0;
  private validations = 0;
  /** Called for every new (deduplicated) report; the Kernel prints and records it. */
  onReport: ((r: LockdepReport) => void) | null = null;
  private order: LockOrder | null = null;
  private readonly violations: OrderViolation[] = [];

  constructor(enabled = true) {
    this.enabled = enabled;
  }

  /**
   * Declares the documented lock order. From then on every newly seen chain is
   * checked against it (on the first acquisition of each distinct held-lock stack, so
   * a campaign pays nothing per step); see orderViolations() and orderCoverage().
   * Declaring the same rules again is a no-op; other rules are refused.
   */
  declareOrder(rules: LockOrder): void {
    if (this.order === rules) return;
    if (this.order !== null) throw new Error(`lockdep: lock order "${this.order.name}" is already declared (not "${rules.name}")`);
    const bad = lockOrderProblem(rules);
    if (bad !== null) throw new Error(bad);
    this.order = rules;
    for (const c of this.classes) c.rank = rules.order.indexOf(c.name);
  }

  get declaredOrder(): LockOrder | null {
    return this.order;
  }

  /** Acquisitions seen against the declared order, first site each, in the order found. */
  orderViolations(): readonly OrderViolation[] {
    return this.violations;
  }

  /** Each documented nesting and whether the graph has that edge (any read/write type). */
  orderCoverage(): Array<{ outer: string; inner: string; observed: boolean }> {
    if (this.order === null) return [];
    return this.order.nestings.map(([outer, inner]) => {
      const a = this.byName.get(outer);
      const b = this.byName.get(inner);
      return { outer, inner, observed: a !== undefined && b !== undefined && (a.out.get(b.id)?.types ?? 0) !== 0 };
    });
  }

  /** The class for a name (one class per name, as lockdep keys are per static site). */
  classFor(name: string, kind: string): LockClass {
    let c = this.byName.get(name);
    if (c === undefined) {
      c = new LockClass(this.classes.length, name, kind);
      if (this.order !== null) c.rank = this.order.order.indexOf(name);
      this.classes.push(c);
      this.byName.set(name, c);
    }
    return c;
  }

  getClass(name: string): LockClass | undefined {
    return this.byName.get(name);
  }

  allClasses(): readonly LockClass[] {
    return this.classes;
  }

  stats(): LockdepStats {
    return {
      classes: this.classes.length,
      dependencies: this.deps,
      chains: this.chains,
      chainLookups: this.chainLookups,
      validations: this.validations,
      reports: this.reports.length,
    };
  }

  /** All edges of the graph as [from, to, types]. */
  dependencies(): Array<[string, string, string[]]> {
    const out: Array<[string, string, string[]]> = [];
    for (const c of this.classes)
      for (const d of c.out.values()) {
        const t: string[] = [];
        for (const b of [EN, ER, SN, SR]) if (d.types & b) t.push(edgeTypeName(b));
        out.push([c.name, d.to.name, t]);
      }
    return out;
  }

  /**
   * Called when task t calls a lock primitive on a lock of class cls, before it
   * blocks. Returns the chain node the acquisition will occupy.
   */
  acquire(t: Task, cls: LockClass, read: 0 | 1 | 2, trylock: boolean, call: string, instance: { addr: string }): ChainNode {
    const held = t.held;
    const top = held.length === 0 ? this.root : held[held.length - 1]!.node;
    const node = top.child(chainCode(cls, read, trylock));
    this.chainLookups++;
    if (node.validated) return node;
    node.validated = true;
    this.chains++;
    if (read) cls.usedRead = true;
    else cls.usedWrite = true;
    if (trylock || !this.enabled || cls.novalidate) return node;
    this.validations++;
    // Recursive locking: the same class already held (a non-recursive reader also
    // deadlocks against itself once a writer queues in between).
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      if (h.cls === cls && !(read === 2 && h.read === 2) && !cls.novalidate) {
        this.reportRecursive(t, h, cls, read, call, instance);
        return node;
      }
    }
    if (cls.rank >= 0) this.checkOrder(t, cls, call);
    // Dependencies from the relevant held locks: every trylock-acquired lock on top
    // of the stack and the first non-trylock one below them (lockdep's
    // check_prevs_add); transitivity covers the rest.
    let site: Site | undefined;
    for (let i = held.length - 1; i >= 0; i--) {
      const h = held[i]!;
      if (h.cls.novalidate) continue; // invisible to lockdep, as if not held
      const type = edgeType(h.read, read);
      let dep = h.cls.out.get(cls.id);
      if (dep === undefined) {
        dep = new Dep(h.cls, cls);
        h.cls.out.set(cls.id, dep);
        this.deps++;
      }
      if ((dep.types & type) === 0) {
        site ??= { comm: t.comm, pid: t.pid, call, ops: t.ops.slice() };
        // Check before adding: a cycle through the new edge is a possible deadlock.
        const path = this.findStrongPath(cls, h.cls, type);
        dep.types |= type;
        dep.sites[bitIndex(type)] = site;
        if (path !== null) this.reportCircular(t, h, cls, read, type, path, call, instance);
      }
      if (!h.trylock) break;
    }
    return node;
  }

  /** Records every held lock that the declared order puts after cls (once per pair). */
  private checkOrder(t: Task, cls: LockClass, call: string): void {
    const held = t.held;
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!.cls;
      if (h.rank <= cls.rank || h.novalidate) continue;
      const key = `order:${h.id}:${cls.id}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.violations.push({ outer: h.name, inner: cls.name, site: { comm: t.comm, pid: t.pid, call, ops: t.ops.slice() } });
    }
  }

  /**
   * BFS for a path next -> ... -> prev that closes a strong cycle with the new edge
   * prev -(t0)-> next. Returns the path as a list of dependencies, or null.
   */
  private findStrongPath(next: LockClass, prev: LockClass, t0: number): Dep[] | null {
    // State = (class, did the last edge end in a recursive reader?).
    const start = next.id * 2 + (t0 & ENDS_R ? 1 : 0);
    const parent = new Map<number, { state: number; dep: Dep } | null>();
    parent.set(start, null);
    const queue: number[] = [start];
    for (let qi = 0; qi < queue.length; qi++) {
      const st = queue[qi]!;
      const cls = this.classes[st >> 1]!;
      const lastR = (st & 1) === 1;
      for (const dep of cls.out.values()) {
        for (let b = 1; b <= 8; b <<= 1) {
          if ((dep.types & b) === 0) continue;
          if (lastR && b & STARTS_S) continue;
          const endsR = b & ENDS_R ? 1 : 0;
          const ns = dep.to.id * 2 + endsR;
          if (parent.has(ns)) continue;
          parent.set(ns, { state: st, dep });
          if (dep.to === prev && !(endsR && t0 & STARTS_S)) {
            const path: Dep[] = [];
            let cur: number | undefined = ns;
            while (cur !== undefined) {
              const p: { state: number; dep: Dep } | null | undefined = parent.get(cur);
              if (!p) break;
              path.push(p.dep);
              cur = p.state;
            }
            return path.reverse();
          }
          queue.push(ns);
        }
      }
    }
    return null;
  }

  private emit(r: LockdepReport): void {
    if (this.seen.has(r.signature)) return;
    this.seen.add(r.signature);
    this.reports.push(r);
    this.onReport?.(r);
  }

  /** Reports that are not about ordering (bad unlock, locks held at exit). */
  reportMisuse(kind: 'bad-unlock' | 'held-at-exit' | 'assert-held', signature: string, task: string, classes: string[], lines: string[]): void {
    this.emit({ kind, signature: `${kind}:${signature}`, classes, lines, task });
  }

  private reportRecursive(t: Task, h: HeldLock, cls: LockClass, read: number, call: string, instance: { addr: string }): void {
    const title = 'WARNING: possible recursive locking detected';
    const lines = [
      '='.repeat(title.length),
      title,
      `${this.release} #1 Not tainted`,
      '-'.repeat(title.length),
      `${t.comm}/${t.pid} is trying to acquire lock:`,
      `${instance.addr} (${cls.name})${cls.usage()}-${cls.waitType()}, at: ${t.site}`,
      '',
      'but task is already holding lock:',
      `${h.lock.addr} (${h.cls.name})${h.cls.usage()}-${h.cls.waitType()}, at: ${h.site}`,
      '',
      'other info that might help us debug this:',
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0',
      '       ----',
      `  ${h.read ? 'rlock' : 'lock'}(${h.cls.name});`,
      `  ${read ? 'rlock' : 'lock'}(${cls.name});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ' May be due to missing lock nesting notation',
      '',
      ...heldLines(t),
      '',
      ...backtrace(t, call, this.release),
    ];
    this.emit({ kind: 'recursive', signature: `recursive:${cls.id}`, classes: [cls.name], lines, task: t.name });
  }

  private reportCircular(
    t: Task,
    h: HeldLock,
    next: LockClass,
    nextRead: number,
    _t0: number,
    path: Dep[],
    call: string,
    instance: { addr: string },
  ): void {
    // Cycle: h.cls -> next -> path... -> h.cls. Signature: class ids rotated to start
    // at the smallest, so the same cycle found from either end dedups.
    const cycle = [next.id, ...path.map((d) => d.to.id)];
    cycle.pop(); // last is h.cls, already first-from-the-other-side
    const ids = [h.cls.id, ...cycle];
    let minAt = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i]! < ids[minAt]!) minAt = i;
    const canon = [...ids.slice(minAt), ...ids.slice(0, minAt)];
    const signature = `circular:${canon.join('>')}`;
    if (this.seen.has(signature)) return;

    const title = 'WARNING: possible circular locking dependency detected';
    const lines: string[] = [
      '='.repeat(title.length),
      title,
      `${this.release} #1 Not tainted`,
      '-'.repeat(title.length),
      `${t.comm}/${t.pid} is trying to acquire lock:`,
      `${instance.addr} (${next.name})${next.usage()}-${next.waitType()}, at: ${t.site}`,
      '',
      'but task is already holding lock:',
      `${h.lock.addr} (${h.cls.name})${h.cls.usage()}-${h.cls.waitType()}, at: ${h.site}`,
      '',
      'which lock already depends on the new lock.',
      '',
      '',
      'the existing dependency chain (in reverse order) is:',
    ];
    // path[i] is the edge into path[i].to; print from the held lock back to the new one.
    for (let i = path.length - 1; i >= 0; i--) {
      const d = path[i]!;
      lines.push('', `-> #${i + 1} (${d.to.name})${d.to.usage()}-${d.to.waitType()}:`);
      lines.push(...frames(d.firstSite()));
    }
    lines.push('', `-> #0 (${next.name})${next.usage()}-${next.waitType()}:`);
    lines.push(...frames({ comm: t.comm, pid: t.pid, call, ops: t.ops }));
    lines.push('', 'other info that might help us debug this:', '');
    // The lock right before the held one on the path (lockdep's "parent").
    const parent = path[path.length - 1]!.from;
    if (parent !== next) {
      lines.push('Chain exists of:', `  ${next.name} --> ${parent.name} --> ${h.cls.name}`, '');
    }
    lines.push(
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  ${h.read ? 'rlock' : 'lock'}(${h.cls.name});`,
      `                               lock(${parent.name});`,
      `                               lock(${h.cls.name});`,
      `  ${nextRead ? 'rlock' : 'lock'}(${next.name});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ...heldLines(t),
      '',
      ...backtrace(t, call, this.release),
    );
    const classes = [next.name, ...path.map((d) => d.to.name)];
    this.emit({ kind: 'circular', signature, classes, lines, task: t.name });
  }
}

function bitIndex(b: number): number {
  return b === EN ? 0 : b === ER ? 1 : b === SN ? 2 : 3;
}

/** Stack-trace-like lines for a site: the lock call, then the op stack innermost first. */
function frames(site: Site | undefined): string[] {
  if (!site) return ['       (no trace recorded)'];
  const out = [`       ${site.call}`];
  for (let i = site.ops.length - 1; i >= 0; i--) out.push(`       ${site.ops[i]}`);
  return out;
}

export function heldLines(t: Task): string[] {
  const n = t.held.length;
  if (n === 0) return [`no locks held by ${t.comm}/${t.pid}.`];
  const out = [`${n} lock${n === 1 ? '' : 's'} held by ${t.comm}/${t.pid}:`];
  t.held.forEach((h, i) => out.push(` #${i}: ${h.lock.addr} (${h.cls.name})${h.cls.usage()}-${h.cls.waitType()}, at: ${h.site}`));
  return out;
}

/** The machine lockdep reports name (an IBM z16 LPAR). */
export const HARDWARE_NAME = 'IBM 3931 A01 701 (LPAR)';

function backtrace(t: Task, call: string, release: string): string[] {
  return [
    'stack backtrace:',
    `CPU: 0 PID: ${t.pid} Comm: ${t.comm} Not tainted ${release} #1`,
    `Hardware name: ${HARDWARE_NAME}`,
    'Call Trace:',
    ...frames({ comm: t.comm, pid: t.pid, call, ops: t.ops }),
  ];
}

// The dependency graph is kept across all executions of a campaign: world snapshots
// (snapshot.ts) must neither save nor roll it back.
markShared(Lockdep);
markShared(LockClass);
markShared(Dep);
markShared(ChainNode);
