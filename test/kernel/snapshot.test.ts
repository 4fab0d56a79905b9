// WorldSnapshot: in-place capture and restore of an object graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Kernel, Lockdep, SideTable, WorldSnapshot, markShared, markWriteLogged, noteWrite, snapshotLogSizes, type KGen } from '../../src/kernel/index.js';

class Node2 {
  next: Node2 | null = null;
  constructor(public v: number) {}
  twice(): number {
    return this.v * 2;
  }
}

test('restore puts back properties, array elements, Map and Set contents and typed arrays in place', () => {
  const a = new Node2(1);
  const b = new Node2(2);
  a.next = b;
  const arr = [a, b, 3];
  const m = new Map<string, unknown>([['x', a], ['y', 1]]);
  const st = new Set<unknown>([a, 'k']);
  const bytes = new Uint8Array([1, 2, 3]);
  const root = { a, arr, m, st, bytes, plain: { n: 1 } as Record<string, number> };
  const snap = WorldSnapshot.capture([root]);
  assert.equal(snap.objects, 8);
  // Mutate everything, including adding keys and new objects.
  a.v = 10;
  a.next = new Node2(99);
  b.next = a;
  arr.push(7);
  arr[0] = b;
  m.set('z', 3);
  m.delete('x');
  st.delete(a);
  st.add('new');
  bytes[1] = 200;
  root.plain.n = 5;
  root.plain.extra = 1;
  (root as Record<string, unknown>).added = true;
  snap.restore();
  assert.equal(a.v, 1);
  assert.equal(a.next, b);
  assert.equal(b.next, null);
  assert.deepEqual(arr, [a, b, 3]);
  assert.equal(arr[0], a);
  assert.deepEqual([...m], [['x', a], ['y', 1]]);
  assert.deepEqual([...st], [a, 'k']);
  assert.deepEqual([...bytes], [1, 2, 3]);
  assert.deepEqual(root.plain, { n: 1 });
  assert.equal('added' in root, false);
  // Identity is kept: closures that captured a still see the restored object.
  const seeA = () => a.v;
  a.v = 42;
  snap.restore();
  assert.equal(seeA(), 1);
  assert.equal(a.twice(), 2);
});

test('objects of shared classes and skipped objects are neither saved nor walked', () => {
  class Graph {
    edges = 0;
    inner = { n: 0 };
  }
  markShared(Graph);
  const g = new Graph();
  const skipped = { n: 0 };
  const root = { g, skipped, own: { n: 0 } };
  const snap = WorldSnapshot.capture([root], new Set([skipped]));
  g.edges = 5;
  g.inner.n = 5;
  skipped.n = 5;
  root.own.n = 5;
  snap.restore();
  assert.equal(g.edges, 5);
  assert.equal(g.inner.n, 5);
  assert.equal(skipped.n, 5);
  assert.equal(root.own.n, 0);
});

test('state the walk cannot see is refused, not silently lost', () => {
  assert.throws(() => WorldSnapshot.capture([{ w: new WeakMap() }]), /WeakMap state cannot be captured/);
  const arr: unknown[] & { tag?: string } = [1];
  arr.tag = 'x';
  assert.throws(() => WorldSnapshot.capture([{ arr }]), /arrays with extra properties/);
});

test('a side table lives on its key object and is restored with it', () => {
  const t = new SideTable<object, string>('test');
  const key = { id: 1 };
  t.set(key, 'before');
  const snap = WorldSnapshot.capture([{ key }]);
  t.set(key, 'after');
  snap.restore();
  assert.equal(t.get(key), 'before');
  t.delete(key);
  assert.equal(t.get(key), undefined);
  snap.restore();
  assert.equal(t.get(key), 'before');
});

test('an object freed (poisoned) after the capture is whole again after restore', () => {
  const k = new Kernel({ lockdep: new Lockdep(false) });
  class Obj {
    x = 1;
    get2(): number {
      return this.x + 1;
    }
  }
  const o = new Obj();
  const plain = { y: 2 };
  k.kzalloc('struct obj', o);
  k.kzalloc('struct plain', plain);
  const w = { k, o, plain };
  const snap = WorldSnapshot.capture([w], new Set<object>([k.strategy, k.lockdep]));
  const t = k.spawn('freer', (function* (): KGen<void> {
    yield k.kfree(o);
    yield k.kfree(plain);
  })());
  k.run();
  assert.equal(t.done, true);
  assert.throws(() => o.x);
  assert.throws(() => plain.y);
  snap.restore();
  assert.equal(o.x, 1);
  assert.equal(o.get2(), 2);
  assert.equal(plain.y, 2);
  assert.equal(k.lifetime.isLive(o), true);
  assert.equal(k.lifetime.isLive(plain), true);
  assert.equal(k.allTasks.length, 0);
});

test('property: random mutations of a random graph are undone by restore (fast-check)', () => {
  // A graph of n plain objects, arrays, Maps and Sets with random edges; a list of
  // random mutations; after restore, a canonical dump equals the one before.
  const dump = (roots: unknown[]): string => {
    const ids = new Map<object, number>();
    const out: string[] = [];
    const visit = (v: unknown): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
      let id = ids.get(v);
      if (id !== undefined) return `#${id}`;
      ids.set(v, (id = ids.size));
      if (v instanceof Map) out[id] = `Map(${[...v].map(([a, b]) => `${visit(a)}=>${visit(b)}`).join(',')})`;
      else if (v instanceof Set) out[id] = `Set(${[...v].map(visit).join(',')})`;
      else if (Array.isArray(v)) out[id] = `[${v.map(visit).join(',')}]`;
      else out[id] = `{${Object.keys(v).map((k) => `${k}:${visit((v as Record<string, unknown>)[k])}`).join(',')}}`;
      return `#${id}`;
    };
    visit(roots);
    return out.join('\n');
  };
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.tuple(fc.nat(7), fc.nat(7), fc.nat(5), fc.integer()), { maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7), fc.integer()), { maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7), fc.integer()), { maxLength: 20 }),
      (n, edges, muts, muts2) => {
        const mk = (i: number): object => (i % 4 === 0 ? {} : i % 4 === 1 ? [] : i % 4 === 2 ? new Map() : new Set());
        const objs: object[] = Array.from({ length: n }, (_, i) => mk(i));
        const link = (a: object, b: object, how: number, x: number): void => {
          if (Array.isArray(a)) a.push(how % 2 ? b : x);
          else if (a instanceof Map) a.set(how % 2 ? b : `k${x % 5}`, how % 3 ? b : x);
          else if (a instanceof Set) a.add(how % 2 ? b : x % 7);
          else (a as Record<string, unknown>)[`p${how}`] = how % 2 ? b : x;
        };
        for (const [i, j, how, x] of edges) link(objs[i % n]!, objs[j % n]!, how, x);
        const roots = [objs];
        const before = dump(roots);
        const snap = WorldSnapshot.capture(roots);
        const mutate = (list: typeof muts): void => {
          for (const [i, j, how, x] of list) {
            const a = objs[i % n]!;
            if (how === 6) {
              if (Array.isArray(a)) a.length = Math.min(a.length, Math.abs(x) % 3);
              else if (a instanceof Map || a instanceof Set) a.clear();
              else for (const key of Object.keys(a)) delete (a as Record<string, unknown>)[key];
            } else if (how === 7) {
              // Delete one entry (the Map/Set write barrier's delete path).
              if (Array.isArray(a)) a.pop();
              else if (a instanceof Map) a.delete([...a.keys()][Math.abs(x) % Math.max(1, a.size)]);
              else if (a instanceof Set) a.delete([...a][Math.abs(x) % Math.max(1, a.size)]);
              else delete (a as Record<string, unknown>)[Object.keys(a)[0] ?? ''];
            } else link(a, how === 5 ? { fresh: x } : objs[j % n]!, how, x);
          }
        };
        // Two rounds: restore must also reset what it tracks between executions.
        mutate(muts);
        snap.restore();
        assert.equal(dump(roots), before);
        mutate(muts2);
        snap.restore();
        assert.equal(dump(roots), before);
      },
    ),
  );
});

test('captured Maps and Sets keep their identity, names and behaviour; restore visits only written ones', () => {
  const m = new Map<string, number>([['a', 1]]);
  const st = new Set<number>([1, 2]);
  const untouched = new Map<string, number>([['u', 1]]);
  const root = { m, st, untouched };
  const snap = WorldSnapshot.capture([root]);
  // The write barrier is invisible to model code.
  assert.ok(m instanceof Map && st instanceof Set);
  assert.equal(m.constructor.name, 'Map');
  assert.equal(st.constructor.name, 'Set');
  assert.deepEqual(Reflect.ownKeys(m), []);
  m.set('b', 2);
  st.delete(1);
  st.add(3);
  snap.restore();
  assert.deepEqual([...m], [['a', 1]]);
  assert.deepEqual([...st], [1, 2]);
  // A map nobody wrote is not compared: change it behind the barrier's back (as no
  // model code does) and restore leaves it alone — proof that it was skipped.
  Map.prototype.set.call(untouched, 'sneaky', 2);
  snap.restore();
  assert.deepEqual([...untouched], [['u', 1], ['sneaky', 2]]);
  // clear() goes through the barrier too.
  m.clear();
  snap.restore();
  assert.deepEqual([...m], [['a', 1]]);
});

test('two snapshots used in turn restore their own worlds (the barrier log is per restore)', () => {
  const m1 = new Map<string, number>([['x', 1]]);
  const m2 = new Map<string, number>([['y', 2]]);
  const s1 = WorldSnapshot.capture([{ m1 }]);
  const s2 = WorldSnapshot.capture([{ m2 }]);
  m1.set('x', 10);
  m2.set('y', 20);
  s2.restore();
  assert.deepEqual([...m2], [['y', 2]]);
  s1.restore();
  assert.deepEqual([...m1], [['x', 1]]);
  m1.delete('x');
  s1.restore();
  assert.deepEqual([...m1], [['x', 1]]);
});

test('frozen records are walked, not saved; accessor properties survive restore', () => {
  const inner = { n: 1 };
  const rec = Object.freeze({ inner, label: 'const' });
  let flag = true;
  const env = {
    get useIrq() {
      return flag;
    },
    count: 0,
  };
  const snap = WorldSnapshot.capture([{ rec, env }]);
  assert.equal(snap.objects, 3); // the root, inner and env: rec itself is frozen
  inner.n = 2;
  env.count = 5;
  flag = false;
  snap.restore();
  assert.equal(inner.n, 1);
  assert.equal(env.count, 0);
  // The getter is still the getter (not a saved value).
  assert.equal(env.useIrq, false);
  flag = true;
  assert.equal(env.useIrq, true);
});

test('a freed Map traps every use and is a working Map again after restore', () => {
  const k = new Kernel({ lockdep: new Lockdep(false) });
  const m = new Map<string, number>([['a', 1]]);
  k.kzalloc('struct table', m);
  const snap = WorldSnapshot.capture([{ k, m }], new Set<object>([k.strategy, k.lockdep]));
  k.spawn('freer', (function* (): KGen<void> {
    yield k.kfree(m);
  })());
  k.run();
  assert.throws(() => m.set('b', 2), /use-after-free/);
  snap.restore();
  m.set('b', 2);
  assert.deepEqual([...m], [['a', 1], ['b', 2]]);
  snap.restore();
  assert.deepEqual([...m], [['a', 1]]);
});

test('write-logged objects are restored when they logged a write, and only then', () => {
  class Node3 {
    private _v = 1;
    readonly kids: number[] = [1];
    get v(): number {
      return this._v;
    }
    set v(x: number) {
      noteWrite(this);
      this._v = x;
    }
    /** A write that skips the barrier (what model code must not do). */
    sneak(x: number): void {
      this._v = x;
    }
  }
  markWriteLogged(Node3);
  const a = new Node3();
  const b = new Node3();
  const snap = WorldSnapshot.capture([{ a, b }]);
  a.v = 5;
  a.kids.push(2); // the array is not write-logged: compared as always
  snap.restore();
  assert.equal(a.v, 1);
  assert.deepEqual(a.kids, [1]);
  // Unlogged: restore does not look at it (the proof that logged objects are skipped).
  b.sneak(7);
  snap.restore();
  assert.equal(b.v, 7);
  b.v = 8;
  snap.restore();
  assert.equal(b.v, 1);
  // A second snapshot in between: the first one's next restore checks everything.
  const other = WorldSnapshot.capture([{ x: new Node3() }]);
  b.sneak(9);
  other.restore();
  snap.restore();
  assert.equal(b.v, 1);
});

test('worlds no snapshot recorded are not pinned by the write and reshape logs (fresh-setup campaigns, the live host)', () => {
  class Logged {
    private _v = 0;
    set v(x: number) {
      noteWrite(this);
      this._v = x;
    }
    get v(): number {
      return this._v;
    }
  }
  markWriteLogged(Logged);
  const kept = new Logged();
  const keptKey = { id: 0 };
  const snap = WorldSnapshot.capture([{ kept, keptKey }]); // also empties both logs
  assert.deepEqual(snapshotLogSizes(), { written: 0, reshaped: 0 });
  const side = new SideTable<object, number>('leak');
  // 100 throwaway worlds: written, reshaped (side table, kfree poisoning) and dropped.
  for (let i = 0; i < 100; i++) {
    const k = new Kernel({ lockdep: new Lockdep(false) });
    const o = k.kzalloc('struct tmp', { x: i });
    const l = new Logged();
    l.v = i;
    side.set({ id: i }, i);
    k.spawn('freer', (function* (): KGen<void> {
      yield k.kfree(o);
    })());
    k.run();
  }
  assert.deepEqual(snapshotLogSizes(), { written: 0, reshaped: 0 });
  // Recorded objects are still logged, and restore empties the logs again.
  kept.v = 3;
  side.set(keptKey, 1);
  assert.deepEqual(snapshotLogSizes(), { written: 1, reshaped: 1 });
  snap.restore();
  assert.equal(kept.v, 0);
  assert.equal(side.get(keptKey), undefined);
  assert.deepEqual(snapshotLogSizes(), { written: 0, reshaped: 0 });
});
