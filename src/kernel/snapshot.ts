// World snapshots for the checker: the state of a booted world is captured once
// after a scenario's setup and put back in place before each later execution, so
// an execution costs its explored phase instead of a boot (snapshot fuzzers do the
// same with VM snapshots).
//
// Restore is *in place*: the same objects get their saved property values, Map and
// Set contents, array elements and prototypes back. Closures in the model (sysfs
// ops, notifiers, timer callbacks) keep pointing at the objects they captured, and
// those objects are exactly the restored ones — which is why this works where a copy
// of the graph could not. Objects created after the capture become unreachable.
//
// What the capture cannot see, and the rules that follow from it:
// - state held only in closure variables or module globals: model code keeps state
//   in objects (side tables live on their key objects, see SideTable);
// - suspended generators: the capture refuses a kernel with live tasks;
// - objects shared by all worlds of a campaign (lockdep's graph): their classes are
//   marked with markShared() and are neither saved nor walked.
// Tests run every built-in scenario on fresh and on restored worlds under the same
// schedules and compare traces and final state byte for byte.

/** Instances of classes whose prototype carries this belong to the campaign, not to a world. */
export const SNAPSHOT_SHARED: unique symbol = Symbol('apsim.snapshot.shared');

/** Marks a class whose instances outlive worlds (e.g. lockdep classes): never saved or restored. */
export function markShared(ctor: { prototype: object }): void {
  Object.defineProperty(ctor.prototype, SNAPSHOT_SHARED, { value: true });
}

/**
 * Captured Maps and Sets (and write-logged objects, see markWriteLogged) written since
 * the last capture or restore. Capture gives
 * every plain Map and Set a prototype whose mutators add it here (a write barrier,
 * free for reads), so restore visits only these instead of comparing every entry of
 * every one. The classes carry the built-in names: dumps and reports look the same.
 */
const dirtied = new Set<object>();

/**
 * Every object some snapshot recorded. The write and reshape logs keep only these:
 * a world that is never captured (the live host, library users, --fresh-setup
 * campaigns) would otherwise have every object it ever wrote pinned by the logs,
 * dead worlds included. Weak: it is bookkeeping about worlds, not world state.
 */
// eslint-disable-next-line no-restricted-globals -- membership only; never captured
const captured = new WeakSet<object>();

class TrackedMap<K, V> extends Map<K, V> {
  override set(k: K, v: V): this {
    dirtied.add(this);
    return super.set(k, v);
  }
  override delete(k: K): boolean {
    dirtied.add(this);
    return super.delete(k);
  }
  override clear(): void {
    dirtied.add(this);
    super.clear();
  }
}
Object.defineProperty(TrackedMap, 'name', { value: 'Map' });

class TrackedSet<T> extends Set<T> {
  override add(v: T): this {
    dirtied.add(this);
    return super.add(v);
  }
  override delete(v: T): boolean {
    dirtied.add(this);
    return super.delete(v);
  }
  override clear(): void {
    dirtied.add(this);
    super.clear();
  }
}
Object.defineProperty(TrackedSet, 'name', { value: 'Set' });

const isTracked = (proto: object | null): boolean => proto === TrackedMap.prototype || proto === TrackedSet.prototype;

/** Instances of classes whose prototype carries this log their own writes (noteWrite). */
const SNAPSHOT_WRITE_LOGGED: unique symbol = Symbol('apsim.snapshot.writeLogged');

/**
 * Marks a class whose instances call noteWrite(this) before every change of an own
 * property (setters over backing fields): restore then visits only the logged ones.
 * For classes with many instances and few writes (sysfs nodes). An unlogged write
 * would survive a restore — the snapshot-equivalence tests (fresh vs restored worlds,
 * every built-in scenario, final world dumps compared) are what catch one.
 */
export function markWriteLogged(ctor: { prototype: object }): void {
  Object.defineProperty(ctor.prototype, SNAPSHOT_WRITE_LOGGED, { value: true });
}

/**
 * Objects the write and reshape logs hold right now (tests and diagnostics): at most
 * the recorded objects changed since the last capture or restore, never more.
 */
export function snapshotLogSizes(): { written: number; reshaped: number } {
  return { written: dirtied.size, reshaped: reshaped.size };
}

/** The write barrier of markWriteLogged classes: obj is about to change. */
export function noteWrite(obj: object): void {
  if (captured.has(obj)) dirtied.add(obj);
}

const enum Kind {
  OBJECT = 0,
  ARRAY = 1,
  MAP = 2,
  SET = 3,
  BYTES = 4,
}

/** A property that is not a plain writable data property (accessor, read-only). */
class Special {
  constructor(readonly desc: PropertyDescriptor) {}
}

/** A non-writable, non-configurable data property: skipped on restore. */
const IMMUTABLE = new Special({});

interface Saved {
  readonly obj: any;
  readonly kind: Kind;
  readonly proto: object | null;
  /** OBJECT: own keys; ARRAY: extra (non-index) keys are not supported. */
  readonly keys: (string | symbol)[];
  /** OBJECT: values per key (Special for non-writable/accessor); ARRAY: elements; MAP: k,v,k,v; SET: values; BYTES: a copy. */
  readonly vals: any;
  /** Restore round in which this object must take the slow path (it was reshaped). */
  slowRound: number;
  /** A write-logged object: its own one-object group, run when it was written. */
  one?: Group;
}

/**
 * Restores every object of one shape: (objects, their saved values one after the
 * other — object i's at i * keys — , out). A plain object whose keys are no longer
 * the captured ones is left unchanged and its index pushed to out (the caller takes
 * the slow path for it).
 */
type GroupRestore = (objs: readonly any[], vals: readonly unknown[], out: number[]) => void;

/**
 * Restore functions by shape. A generic loop over many shapes makes every property
 * access megamorphic, and one call per object through a per-shape function costs an
 * indirect call each; one loop per shape over all its objects keeps each access site
 * monomorphic and the calls per restore at the number of shapes (~100 on a booted
 * host, against ~1,000 objects). Code, not world state: shared by all snapshots.
 */
const groupCache = new Map<string, { key: string; fn: GroupRestore }>();

function groupFor(keys: readonly (string | symbol)[], vals: readonly unknown[], enumKeys: readonly string[] | null): { key: string; fn: GroupRestore } {
  const syms: symbol[] = [];
  const sig: string[] = [enumKeys === null ? 'class' : `plain:${JSON.stringify(enumKeys)}`];
  const body: string[] = [];
  if (enumKeys !== null) {
    // for-in walks the shape's enum cache without allocating (a plain object has no
    // inherited enumerable keys); Object.keys() here cost a third of all restore time.
    body.push(`let j = 0, bad = false; for (const k in o) if (k !== E[j++]) { bad = true; break; } if (bad || j !== ${enumKeys.length}) { out.push(i); continue; }`);
  }
  for (let j = 0; j < keys.length; j++) {
    // Read-only and accessor properties change only by redefinition, which model
    // code does only through Lifetime (a noted reshape: the slow path).
    if (vals[j] instanceof Special) {
      sig.push(`!${j}`);
      continue;
    }
    const k = keys[j]!;
    let ref: string;
    if (typeof k === 'symbol') {
      ref = `o[S[${syms.length}]]`;
      syms.push(k);
      sig.push(`@${syms.length}`);
    } else {
      ref = `o[${JSON.stringify(k)}]`;
      sig.push(JSON.stringify(k));
    }
    body.push(`x = V[b + ${j}]; if (${ref} !== x) ${ref} = x;`);
  }
  // Symbols are distinct per side table: part of the cache key by identity.
  const key = `${sig.join(',')}|${syms.map((x) => symbolId(x)).join(',')}`;
  let g = groupCache.get(key);
  if (g === undefined) {
    // Generated from property names only (JSON-quoted); symbols are passed in.
    const make = new Function(
      'S',
      'E',
      // One flat value array per group: restore is memory-bound (a busy execution
      // evicts the world from the caches), so values sit next to each other.
      `return function restoreShape(O, V, out) { for (let i = 0, b = 0; i < O.length; i++, b += ${keys.length}) { const o = O[i]; let x; ${body.join(' ')} } };`,
    ) as (S: symbol[], E: readonly string[] | null) => GroupRestore;
    g = { key, fn: make(syms, enumKeys) };
    groupCache.set(key, g);
  }
  return g;
}

/** The objects of one shape in a snapshot, restored by one call. */
interface Group {
  readonly fn: GroupRestore;
  readonly objs: any[];
  /** The objects' saved values, flat (keys per object apart). */
  readonly vals: unknown[];
  /** The saved records, by the index used in objs/vals. */
  readonly recs: Saved[];
}

const symbolIds = new Map<symbol, number>();
function symbolId(x: symbol): number {
  let id = symbolIds.get(x);
  if (id === undefined) symbolIds.set(x, (id = symbolIds.size));
  return id;
}

/**
 * Objects whose shape changed since the last capture or restore other than by plain
 * assignment to existing fields: a SideTable attachment added, a kfree poisoning
 * (accessors, trap prototype). Their owners say so here, so that restore need not
 * inspect the keys and prototype of every object.
 */
const reshaped = new Set<object>();
/** Id of the snapshot `reshaped` is tracking for (captured or restored last). */
let tracking = 0;
let snapshotIds = 0;

/** Called when obj gains a property or is poisoned (SideTable, Lifetime). */
export function noteReshape(obj: object): void {
  if (captured.has(obj)) reshaped.add(obj);
}

export class WorldSnapshot {
  private readonly id = ++snapshotIds;
  /** Restore rounds so far (marks reshaped objects without a per-object lookup). */
  private round = 0;
  private constructor(
    /** Records restored one by one: all but the shape-grouped objects. */
    private readonly singles: Saved[],
    /** Shape groups of plain-field objects. */
    private readonly groups: Group[],
    /** Saved records by object, for the few objects reported reshaped. */
    private readonly index: Map<object, Saved>,
    /** Objects recorded (for diagnostics and tests). */
    readonly objects: number,
  ) {}

  /**
   * Records everything reachable from roots through own properties, array elements,
   * Map keys/values and Set values. `skip` objects (and marked-shared ones) are left
   * out together with what is reachable only through them. Functions are kept by
   * reference and not walked (their captured objects are reached some other way, or
   * are not world state).
   */
  static capture(roots: readonly unknown[], skip: ReadonlySet<object> = new Set()): WorldSnapshot {
    const seen = new Set<object>();
    const saved: Saved[] = [];
    const groups = new Map<string, Group>();
    const stack: unknown[] = [...roots];
    const push = (v: unknown): void => {
      if (v !== null && typeof v === 'object' && !seen.has(v)) stack.push(v);
    };
    while (stack.length > 0) {
      const o = stack.pop();
      if (o === null || typeof o !== 'object' || seen.has(o)) continue;
      seen.add(o);
      if (skip.has(o) || (o as Record<symbol, unknown>)[SNAPSHOT_SHARED] === true) continue;
      const proto = Object.getPrototypeOf(o) as object | null;
      if (ArrayBuffer.isView(o)) {
        if (o instanceof DataView) throw new Error('world snapshot: DataView is not supported');
        saved.push({ obj: o, kind: Kind.BYTES, proto, keys: [], vals: (o as unknown as Uint8Array).slice(), slowRound: 0 });
        continue;
      }
      if (o instanceof ArrayBuffer) throw new Error('world snapshot: a bare ArrayBuffer is not supported');
      if (Object.isFrozen(o)) {
        // Immutable: nothing to restore, but what it points to may change.
        for (const k of Reflect.ownKeys(o)) {
          const d = Object.getOwnPropertyDescriptor(o, k)!;
          if ('value' in d) push(d.value);
        }
        if (o instanceof Map)
          for (const [k, v] of o) {
            push(k);
            push(v);
          }
        else if (o instanceof Set) for (const v of o) push(v);
        continue;
      }
      if (Array.isArray(o)) {
        const vals = o.slice();
        for (const v of vals) push(v);
        // Holes come back as undefined; named properties on arrays are not supported.
        if (Reflect.ownKeys(o).length > o.length + 1) throw new Error('world snapshot: arrays with extra properties are not supported');
        saved.push({ obj: o, kind: Kind.ARRAY, proto, keys: [], vals, slowRound: 0 });
        continue;
      }
      if (o instanceof Map || o instanceof Set) {
        if (Reflect.ownKeys(o).length > 0) throw new Error('world snapshot: Map/Set with own properties is not supported');
        const vals: unknown[] = [];
        if (o instanceof Map)
          for (const [k, v] of o) {
            vals.push(k, v);
            push(k);
            push(v);
          }
        else
          for (const v of o) {
            vals.push(v);
            push(v);
          }
        // Plain ones get the write barrier (subclasses keep their own methods: always compared).
        let p = proto;
        if (proto === Map.prototype || proto === Set.prototype) {
          p = proto === Map.prototype ? TrackedMap.prototype : TrackedSet.prototype;
          Object.setPrototypeOf(o, p);
        }
        saved.push({ obj: o, kind: o instanceof Map ? Kind.MAP : Kind.SET, proto: p, keys: [], vals, slowRound: 0 });
        continue;
      }
      // eslint-disable-next-line no-restricted-globals -- detecting them is the point
      if (o instanceof WeakMap || o instanceof WeakSet || o instanceof Promise)
        throw new Error(`world snapshot: ${o.constructor.name} state cannot be captured (keep side tables on their key objects)`);
      // A plain or class object: its own properties.
      const keys = Reflect.ownKeys(o);
      const vals: unknown[] = [];
      for (const k of keys) {
        const d = Object.getOwnPropertyDescriptor(o, k)!;
        if ('value' in d && d.writable === true && d.enumerable === true && d.configurable === true) {
          // A plain field: assignment restores it.
          vals.push(d.value);
          push(d.value);
        } else if ('value' in d && d.configurable === false) {
          // Read-only for good (e.g. Kvm.host): nothing can change it.
          vals.push(IMMUTABLE);
          push(d.value);
        } else {
          vals.push(new Special(d));
          if ('value' in d) push(d.value);
        }
      }
      // A plain (dictionary-like) object may gain or lose keys: its restore function
      // checks them. Class instances have fixed fields (additions go through noteReshape).
      const enumKeys = proto === Object.prototype || proto === null ? Object.keys(o) : null;
      const g = groupFor(keys, vals, enumKeys);
      const rec: Saved = { obj: o, kind: Kind.OBJECT, proto, keys, vals, slowRound: 0 };
      saved.push(rec);
      if ((o as Record<symbol, unknown>)[SNAPSHOT_WRITE_LOGGED] === true) {
        rec.one = { fn: g.fn, objs: [o], vals: vals.slice(), recs: [rec] };
        continue;
      }
      let batch = groups.get(g.key);
      if (batch === undefined) groups.set(g.key, (batch = { fn: g.fn, objs: [], vals: [], recs: [] }));
      batch.objs.push(o);
      for (const v of vals) batch.vals.push(v);
      batch.recs.push(rec);
    }
    for (const x of saved) captured.add(x.obj as object);
    reshaped.clear();
    dirtied.clear();
    const snap = new WorldSnapshot(
      // Objects go by shape group (or when logged), tracked Maps and Sets when dirtied.
      saved.filter((x) => x.kind !== Kind.OBJECT && !isTracked(x.proto)),
      [...groups.values()],
      new Map(saved.map((x) => [x.obj as object, x])),
      saved.length,
    );
    tracking = snap.id;
    return snap;
  }

  /** Puts every recorded object back into its captured state. */
  restore(): void {
    // Another snapshot was active in between: its capture or restore cleared the
    // reshape log, so check every object the slow way this once.
    const blind = tracking !== this.id;
    const round = ++this.round;
    // Reshaped objects first, the slow way: a freed (poisoned) object has a trap
    // prototype and accessors that the shape groups' plain reads would trip.
    if (blind) for (const s of this.index.values()) restoreOne(s, true);
    else
      for (const o of reshaped) {
        const s = this.index.get(o);
        if (s === undefined) continue;
        s.slowRound = round;
        restoreOne(s, true);
      }
    reshaped.clear();
    tracking = this.id;
    const out = this.out;
    for (const g of this.groups) restoreGroup(g, out);
    const singles = this.singles;
    for (let i = 0; i < singles.length; i++) {
      const s = singles[i]!;
      if (!blind && s.slowRound !== round) restoreOne(s, false);
    }
    if (!blind)
      for (const o of dirtied) {
        const s = this.index.get(o);
        if (s === undefined || s.slowRound === round) continue;
        if (s.one === undefined) restoreOne(s, false);
        else restoreGroup(s.one, out);
      }
    // Restoring went through the barriers too.
    dirtied.clear();
  }

  /** Scratch list for the shape groups' misfits. */
  private readonly out: number[] = [];
}

/** Runs a shape group's restore; plain objects that gained or lost keys go the slow way. */
function restoreGroup(g: Group, out: number[]): void {
  g.fn(g.objs, g.vals, out);
  if (out.length === 0) return;
  for (const i of out) restoreObject(g.objs[i], g.recs[i]!);
  out.length = 0;
}

/** Restores one record; slow: also its prototype and property layout. */
function restoreOne(s: Saved, slow: boolean): void {
  const o = s.obj;
  if (slow && Object.getPrototypeOf(o) !== s.proto) Object.setPrototypeOf(o, s.proto);
  switch (s.kind) {
    case Kind.OBJECT:
      // Objects are restored by their shape group; here only the slow way.
      if (slow) restoreObject(o, s);
      break;
    case Kind.ARRAY: {
      const v = s.vals as unknown[];
      if (o.length !== v.length) o.length = v.length;
      for (let j = 0; j < v.length; j++) if (o[j] !== v[j]) o[j] = v[j];
      break;
    }
    case Kind.MAP: {
      const v = s.vals as unknown[];
      const m = o as Map<unknown, unknown>;
      if (!sameMap(m, v)) {
        m.clear();
        for (let j = 0; j < v.length; j += 2) m.set(v[j], v[j + 1]);
      }
      break;
    }
    case Kind.SET: {
      const v = s.vals as unknown[];
      const st = o as Set<unknown>;
      if (!sameSet(st, v)) {
        st.clear();
        for (let j = 0; j < v.length; j++) st.add(v[j]);
      }
      break;
    }
    case Kind.BYTES:
      (o as Uint8Array).set(s.vals as Uint8Array);
      break;
  }
}

function restoreObject(o: any, s: Saved): void {
  const keys = s.keys;
  const vals = s.vals as unknown[];
  // Slow path (a freed object's accessors, keys added or deleted, special
  // properties): redefine each saved property. With the same keys this keeps their
  // order; keys added since (a freed object's record) are dropped first; otherwise drop
  // the configurable ones and re-add them in the captured order.
  let cur = Reflect.ownKeys(o);
  if (!sameKeys(cur, keys)) {
    const want = new Set(keys);
    for (const k of cur) if (!want.has(k) && Object.getOwnPropertyDescriptor(o, k)!.configurable) delete o[k];
    cur = Reflect.ownKeys(o);
    if (!sameKeys(cur, keys)) for (const k of cur) if (Object.getOwnPropertyDescriptor(o, k)!.configurable) delete o[k];
  }
  for (let j = 0; j < keys.length; j++) {
    const v = vals[j];
    if (v === IMMUTABLE) continue;
    const desc = v instanceof Special ? v.desc : { value: v, writable: true, enumerable: true, configurable: true };
    Object.defineProperty(o, keys[j]!, desc);
  }
}

function sameKeys(cur: readonly (string | symbol)[], keys: readonly (string | symbol)[]): boolean {
  if (cur.length !== keys.length) return false;
  for (let j = 0; j < cur.length; j++) if (cur[j] !== keys[j]) return false;
  return true;
}

function sameMap(m: Map<unknown, unknown>, v: readonly unknown[]): boolean {
  if (m.size * 2 !== v.length) return false;
  let j = 0;
  // Keys and get(): no [k, v] entry array per element.
  for (const k of m.keys()) {
    if (k !== v[j] || m.get(k) !== v[j + 1]) return false;
    j += 2;
  }
  return true;
}

function sameSet(st: Set<unknown>, v: readonly unknown[]): boolean {
  if (st.size !== v.length) return false;
  let j = 0;
  for (const x of st) if (x !== v[j++]) return false;
  return true;
}
