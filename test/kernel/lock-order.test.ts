import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FirstComeStrategy, Kernel, Lockdep, type KGen, type LockOrder, type Mutex } from '../../src/kernel/index.js';

const ORDER: LockOrder = {
  name: 'abc',
  source: 'test',
  order: ['A', 'B', 'C'],
  nestings: [
    ['A', 'B'],
    ['B', 'C'],
    ['A', 'C'],
  ],
};

/** Runs one task that takes `seq` nested (trylock for names ending in '?'), inside a named frame. */
function run(ld: Lockdep, seq: readonly string[], name = 't'): Kernel {
  const k = new Kernel({ strategy: new FirstComeStrategy(), lockdep: ld, stopOnBug: false });
  const locks = new Map<string, Mutex>();
  for (const n of seq) {
    const base = n.replace('?', '');
    if (!locks.has(base)) locks.set(base, k.mutex_init(base));
  }
  k.spawn(
    name,
    k.fn('nest', (function* (): KGen {
      const held: Mutex[] = [];
      for (const n of seq) {
        const m = locks.get(n.replace('?', ''))!;
        if (n.endsWith('?')) {
          if (yield k.mutex_trylock(m)) held.push(m);
        } else {
          yield k.mutex_lock(m);
          held.push(m);
        }
      }
      while (held.length) yield k.mutex_unlock(held.pop()!);
    })()),
  );
  assert.equal(k.run(), 'done');
  return k;
}

test('declareOrder: refuses a name listed twice, a nesting against the order and a second, different order', () => {
  const ld = new Lockdep(true);
  assert.throws(() => ld.declareOrder({ ...ORDER, order: ['A', 'B', 'A'] }), /lock order "abc": A is listed twice/);
  assert.throws(() => ld.declareOrder({ ...ORDER, nestings: [['B', 'A']] }), /nesting B -> A does not follow the order/);
  assert.throws(() => ld.declareOrder({ ...ORDER, nestings: [['A', 'D']] }), /nesting A -> D does not follow the order/);
  assert.equal(ld.declaredOrder, null);
  ld.declareOrder(ORDER);
  ld.declareOrder(ORDER); // the same rules again: nothing happens
  assert.throws(() => ld.declareOrder({ ...ORDER, name: 'other' }), /lock order "abc" is already declared \(not "other"\)/);
  assert.equal(ld.declaredOrder, ORDER);
});

test('an acquisition against the order is recorded once, with the first site, for every held lock it inverts', () => {
  const ld = new Lockdep(true);
  ld.declareOrder(ORDER);
  // X is not in the order: it neither inverts nor hides the A..C inversion under it.
  run(ld, ['C', 'X', 'A'], 'first');
  run(ld, ['C', 'X', 'A'], 'second');
  assert.deepEqual(ld.orderViolations(), [{ outer: 'C', inner: 'A', site: { comm: 'first', pid: 100, call: 'mutex_lock', ops: ['nest'] } }]);
  run(ld, ['C', 'B', 'A'], 'third');
  assert.deepEqual(
    ld.orderViolations().map((v) => `${v.outer}>${v.inner}@${v.site.comm}`),
    ['C>A@first', 'C>B@third', 'B>A@third'],
  );
  // A record, not a report: no cycle yet, and lockdep has reported nothing.
  assert.equal(ld.reports.length, 0);
  // In order, or a trylock (which cannot deadlock): nothing new.
  run(ld, ['A', 'B', 'C']);
  run(ld, ['C', 'A?']);
  assert.equal(ld.orderViolations().length, 3);
});

test('classes created before the order was declared are ranked too; a disabled lockdep records nothing', () => {
  const ld = new Lockdep(true);
  run(ld, ['A', 'B']);
  ld.declareOrder(ORDER);
  run(ld, ['B', 'A']);
  assert.deepEqual(ld.orderViolations().map((v) => `${v.outer}>${v.inner}`), ['B>A']);
  const off = new Lockdep(false);
  off.declareOrder(ORDER);
  run(off, ['C', 'A']);
  assert.deepEqual(off.orderViolations(), []);
});

test('orderCoverage: a documented nesting is observed only as a direct edge of the graph', () => {
  const ld = new Lockdep(true);
  assert.deepEqual(ld.orderCoverage(), []);
  ld.declareOrder(ORDER);
  run(ld, ['A', 'B', 'C']); // edges A->B and B->C; A->C only transitively
  assert.deepEqual(ld.orderCoverage(), [
    { outer: 'A', inner: 'B', observed: true },
    { outer: 'B', inner: 'C', observed: true },
    { outer: 'A', inner: 'C', observed: false },
  ]);
  run(ld, ['A', 'C']);
  assert.equal(ld.orderCoverage()[2]!.observed, true);
});

test('property: violations are exactly the held-then-acquired pairs of ranked locks against the order', () => {
  const names = ['A', 'B', 'C', 'X'];
  fc.assert(
    fc.property(fc.array(fc.uniqueArray(fc.constantFrom(...names), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), (seqs) => {
      const ld = new Lockdep(true);
      ld.declareOrder(ORDER);
      const want = new Set<string>();
      const rank = (n: string) => ORDER.order.indexOf(n);
      for (const seq of seqs) {
        run(ld, seq);
        for (let i = 0; i < seq.length; i++)
          for (let j = i + 1; j < seq.length; j++) if (rank(seq[i]!) >= 0 && rank(seq[j]!) >= 0 && rank(seq[i]!) > rank(seq[j]!)) want.add(`${seq[i]}>${seq[j]}`);
      }
      const got = ld.orderViolations().map((v) => `${v.outer}>${v.inner}`);
      assert.equal(new Set(got).size, got.length, 'each pair once');
      assert.deepEqual(new Set(got), want);
    }),
    { seed: 11, numRuns: 300 },
  );
});
