// DPOR's precise kfree: the kernel logs which heap objects (kzalloc) each step
// touches, and a kfree is related to exactly those steps (plus global ones), where it
// used to be related to every step. sched_point_on is keyed by its object. Both must
// stay sound: DPOR finds every use-after-free and double free a full DFS finds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Kernel, WorldSnapshot, type KGen, type Mutex } from '../../src/kernel/index.js';
import { DfsExplorer, DporExplorer, type Explorer, type Scenario, type World } from '../../src/check/index.js';
import { exploreAll } from './helpers.js';

class Obj {
  v = 0;
  w = 'x';
}

test('access tracking: each step logs the heap objects it touched, once; values read and write through', () => {
  const k = new Kernel();
  const x = k.kzalloc('obj', new Obj());
  const y = k.kzalloc('obj', new Obj());
  const plain = new Obj(); // not a heap object: never logged
  const root = { x, y, plain };
  const snap = WorldSnapshot.capture([root]);
  const logs: string[][] = [];
  const name = (o: object): string => (o === x ? 'x' : o === y ? 'y' : '?');
  k.trackAccesses(true);
  k.spawn('t', (function* (): KGen<void> {
    x.v = 5;
    x.v++;
    void y.w;
    plain.v = 1;
    yield k.sched_point();
    logs.push((k.takeAccesses() ?? []).map(name));
    void y.v;
    yield k.sched_point();
    logs.push((k.takeAccesses() ?? []).map(name));
    yield k.sched_point();
  })());
  k.run();
  assert.deepEqual(logs, [['x', 'y'], ['y']]);
  assert.equal(x.v, 6);
  // Outside a task nothing is logged; off means off.
  void x.v;
  assert.deepEqual(k.takeAccesses(), []);
  k.trackAccesses(false);
  assert.equal(k.takeAccesses(), null);
  // The fields are accessors now; a snapshot restore makes them plain fields again.
  assert.equal(typeof Object.getOwnPropertyDescriptor(x, 'v')!.get, 'function');
  snap.restore();
  assert.deepEqual(Object.getOwnPropertyDescriptor(x, 'v'), { value: 0, writable: true, enumerable: true, configurable: true });
  assert.deepEqual(Object.keys(x), ['v', 'w']);
  assert.equal(plain.v, 0);
});

test('a heap object allocated while tracking is watched from the start; freed, it still reports a use-after-free', () => {
  const k = new Kernel({ stopOnBug: false });
  k.trackAccesses(true);
  let z!: Obj;
  let seen: object[] | null = null;
  k.spawn('t', (function* (): KGen<void> {
    z = k.kzalloc('obj', new Obj());
    yield k.sched_point();
    void z.v;
    yield k.sched_point();
    seen = k.takeAccesses();
    yield k.kfree(z);
    void z.w;
  })());
  k.run();
  assert.deepEqual(seen, [z]);
  assert.deepEqual(
    k.bugs.map((b) => b.title),
    ['use-after-free of obj (w) in t'],
  );
});

// ------------------------------------------------------------------ DPOR

type Action = 'rX' | 'rY' | 'wX' | 'freeX' | 'lock';

interface HeapWorld extends World {
  readonly x: Obj;
  readonly y: Obj;
  readonly m: Mutex;
}

/** Tasks run their actions, each followed by a step on a task-local object (independent of everything). */
function heapProgram(plan: Action[][]): Scenario<HeapWorld> {
  return {
    name: 'heap',
    description: 'heap objects touched and freed',
    setup(env) {
      const k = env.kernelOnly();
      return { k, x: k.kzalloc('x', new Obj()), y: k.kzalloc('y', new Obj()), m: k.mutex_init('m') };
    },
    tasks: (w) =>
      plan.map((acts, ti) => [
        `t${ti}`,
        (function* (): KGen<void> {
          const k = w.k;
          const local = k.atomic_init(0, `local${ti}`);
          for (const a of acts) {
            if (a === 'rX') void w.x.v;
            else if (a === 'rY') void w.y.v;
            else if (a === 'wX') w.x.v++;
            else if (a === 'freeX') yield k.kfree(w.x);
            else {
              yield k.mutex_lock(w.m);
              yield k.mutex_unlock(w.m);
            }
            yield k.atomic_read(local);
          }
        })(),
      ] as const),
  };
}

/** Bug kinds over every execution an explorer runs to exhaustion, and the execution count. */
function bugKinds(s: Scenario<HeapWorld>, ex: Explorer, max = 200_000): { kinds: Set<string>; executions: number } {
  const kinds = new Set<string>();
  const executions = exploreAll(s, ex, (r) => r.bugs.forEach((b) => kinds.add(b.kind)), max);
  assert.ok(executions < max, 'exploration did not finish');
  return { kinds, executions };
}

test('DPOR: a kfree is independent of steps that touch other objects, and races with those that touch it', () => {
  const untouched = bugKinds(heapProgram([['freeX'], ['rY', 'rY', 'rY', 'rY']]), new DporExplorer());
  assert.deepEqual([...untouched.kinds], []);
  // One order suffices: a global kfree needed one execution per position of it among t1's steps.
  assert.equal(untouched.executions, 1);
  const touched = bugKinds(heapProgram([['freeX'], ['rY', 'rX', 'rY']]), new DporExplorer());
  assert.deepEqual([...touched.kinds], ['use-after-free']);
  const twice = bugKinds(heapProgram([['freeX'], ['freeX']]), new DporExplorer());
  assert.deepEqual([...twice.kinds], ['double-free']);
});

test('DPOR finds a heap bug whenever a full DFS does, and the same kinds with one kfree (random heap programs)', () => {
  const act = fc.constantFrom<Action>('rX', 'rY', 'wX', 'freeX', 'lock');
  fc.assert(
    fc.property(fc.array(fc.array(act, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }).filter((p) => p.flat().length <= 5), (plan) => {
      const s = heapProgram(plan);
      const d = bugKinds(s, new DporExplorer());
      const f = bugKinds(s, new DfsExplorer(1000, false), 2_000_000);
      const why = JSON.stringify(plan);
      // A clean proof must mean clean: executions stop at their first bug, so with two
      // kfrees a double free may end every execution before a reader runs.
      assert.equal(d.kinds.size > 0, f.kinds.size > 0, why);
      if (plan.flat().filter((a) => a === 'freeX').length <= 1) assert.deepEqual([...d.kinds].sort(), [...f.kinds].sort(), why);
      assert.ok(d.executions <= f.executions, why);
    }),
    { numRuns: 80, seed: 7 },
  );
});

test('sched_point_on is keyed by its object: independent of points on other objects, dependent on its own', () => {
  const run = (sameObj: boolean, plain: boolean): number => {
    const s: Scenario<World & { a: object; b: object }> = {
      name: 'points',
      description: 'two keyed sched points',
      setup: (env) => ({ k: env.kernelOnly(), a: {}, b: {} }),
      tasks: (w) =>
        [0, 1].map((i) => [
          `t${i}`,
          (function* (): KGen<void> {
            const o = sameObj || i === 0 ? w.a : w.b;
            yield plain ? w.k.sched_point('p') : w.k.sched_point_on(o, 'p');
            yield plain ? w.k.sched_point('p') : w.k.sched_point_on(o, 'p');
          })(),
        ] as const),
    };
    return exploreAll(s, new DporExplorer(), () => {});
  };
  assert.equal(run(false, false), 1);
  assert.ok(run(true, false) > 1);
  // Plain sched_points are related to everything: never fewer executions.
  assert.ok(run(true, true) >= run(true, false));
});

test('a keyed sched_point step may not change a strict wait condition (only a plain one may)', () => {
  for (const keyed of [true, false]) {
    const k = new Kernel({ stopOnBug: false });
    const wq = k.init_waitqueue_head('strict wq', { strict: true });
    const st = { ready: false };
    k.spawn('waiter', (function* (): KGen<void> {
      yield k.wait_event(wq, () => st.ready);
    })());
    k.spawn('waker', (function* (): KGen<void> {
      yield keyed ? k.sched_point_on(st, 'set') : k.sched_point('set');
      st.ready = true;
      yield k.wake_up(wq);
    })());
    k.run();
    const bugs = k.bugs.map((b) => b.title);
    if (keyed) assert.deepEqual(bugs, ['invariant strict wait queue violated: waker changed the condition waiter waits for on strict wq outside a wake_up/wait_event step on it or a plain sched_point']);
    else assert.deepEqual(bugs, []);
  }
});
