// WorldSnapshot: in-place capture and restore of an object graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Kernel, Lockdep, SideTable, WorldSnapshot, markShared, type KGen } from '../../src/kernel/index.js';

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
      fc.array(fc.tuple(fc.nat(7), fc.nat(7), fc.nat(6), fc.integer()), { maxLength: 40 }),
      (n, edges, muts) => {
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
        for (const [i, j, how, x] of muts) {
          const a = objs[i % n]!;
          if (how === 6) {
            if (Array.isArray(a)) a.length = Math.min(a.length, Math.abs(x) % 3);
            else if (a instanceof Map || a instanceof Set) a.clear();
            else for (const key of Object.keys(a)) delete (a as Record<string, unknown>)[key];
          } else link(a, how === 5 ? { fresh: x } : objs[j % n]!, how, x);
        }
        snap.restore();
        assert.equal(dump(roots), before);
      },
    ),
  );
});
