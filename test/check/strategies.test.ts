import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lockdep } from '../../src/kernel/index.js';
import { DfsExplorer, DporExplorer, PctExplorer, RandomExplorer, PortfolioExplorer, runExecution, type Explorer } from '../../src/check/index.js';
import { lockProgram, exhaust } from './helpers.js';

function choicesOf(ex: Explorer, runs: number): string[] {
  const s = lockProgram([[[0, 1]], [[1, 2]], [[0, 2]]], 'det', { local: true });
  ex.calibrate?.(20, 3);
  const out: string[] = [];
  for (let i = 0; i < runs; i++) {
    ex.begin(i);
    out.push(runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) }).choices.join(','));
  }
  return out;
}

test('random, PCT and portfolio are deterministic per seed and differ across seeds', () => {
  for (const make of [(s: number) => new RandomExplorer(s), (s: number) => new PctExplorer(s, 3), (s: number) => new PortfolioExplorer(s)]) {
    assert.deepEqual(choicesOf(make(7), 30), choicesOf(make(7), 30));
    assert.notDeepEqual(choicesOf(make(7), 30), choicesOf(make(8), 30));
  }
});

test('execution i of a seeded explorer does not depend on the executions before it', () => {
  const a = choicesOf(new RandomExplorer(3), 10);
  const ex = new RandomExplorer(3);
  const s = lockProgram([[[0, 1]], [[1, 2]], [[0, 2]]], 'det', { local: true });
  ex.begin(9);
  assert.equal(runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) }).choices.join(','), a[9]);
});

test('DFS is exhaustive: known execution counts on small programs', () => {
  // Two tasks, one critical section each over the same lock: start/lock/unlock interleavings.
  // 3 steps each (start, lock, unlock); of the C(6,3) = 20 orders, 8 respect the lock.
  assert.equal(exhaust(lockProgram([[[0]], [[0]]]), new DfsExplorer(100, false)).executions, 8);
  assert.equal(exhaust(lockProgram([[[0]], [[0]]]), new DfsExplorer(100, false)).classes.size, 2);
  // Independent locks: every interleaving is one class.
  const ind = exhaust(lockProgram([[[0]], [[1]]]), new DfsExplorer(100, false));
  assert.equal(ind.executions, 20); // C(6,3): two tasks of 3 steps each
  assert.equal(ind.classes.size, 1);
  // Preemption bound 0 runs each task to its end once started: 2 executions for 2 tasks.
  assert.equal(exhaust(lockProgram([[[0]], [[1]]]), new DfsExplorer(0, false)).executions, 2);
});

test('DFS iterative preemption bounding counts executions per bound', () => {
  const d = new DfsExplorer(2, true);
  const r = exhaust(lockProgram([[[0], [1]], [[0], [1]]]), d);
  assert.equal(r.classes.size, 4);
  assert.equal(d.perBound.length, 3);
  assert.ok(d.perBound[0]! < d.perBound[1]! && d.perBound[1]! < d.perBound[2]!);
});

test('DPOR explores one execution per lock-order class on small programs', () => {
  assert.equal(exhaust(lockProgram([[[0]], [[0]]]), new DporExplorer()).executions, 2);
  assert.equal(exhaust(lockProgram([[[0]], [[1]]]), new DporExplorer()).executions, 1);
  assert.equal(exhaust(lockProgram([[[0], [1]], [[0], [1]]]), new DporExplorer()).executions, 4);
});

test('DPOR finds every class DFS finds (random small lock programs)', () => {
  const sec = fc.constantFrom<number[]>([0, 1], [0, 2], [1, 2], [0], [1], [2, 1]);
  fc.assert(
    // Small enough for DFS to finish: at most 4 critical sections in all.
    fc.property(fc.array(fc.array(sec, { minLength: 1, maxLength: 2 }), { minLength: 2, maxLength: 3 }).filter((p) => p.flat().length <= 4), fc.boolean(), (plan, tryl) => {
      const s = lockProgram(plan, 'p', { trylockSecond: tryl });
      const d = exhaust(s, new DporExplorer());
      const f = exhaust(s, new DfsExplorer(1000, false), 2_000_000);
      assert.deepEqual([...d.classes].sort(), [...f.classes].sort());
    }),
    { numRuns: 25, seed: 42 },
  );
});

test('T5: DPOR on 3 threads x 2 critical sections needs <= 2x the lock-order classes', () => {
  for (const plan of [
    [[[0, 1], [1, 2]], [[0, 1], [0, 2]], [[1, 2], [0, 2]]],
    [[[0, 1], [0, 2]], [[1, 2], [0, 1]], [[0, 2], [1, 2]]],
  ]) {
    const s = lockProgram(plan, 't5', { local: true });
    const d = exhaust(s, new DporExplorer());
    // The classes themselves, by a bounded DFS (preemption bound 3 reaches all of them here).
    const f = exhaust(s, new DfsExplorer(3, false));
    assert.equal(d.classes.size, f.classes.size);
    assert.ok(d.executions <= 2 * f.classes.size, `${d.executions} executions for ${f.classes.size} classes`);
  }
});

test('T4: PCT hits a depth-2 bug at least as often as its bound 1/(n k^(d-1))', () => {
  // hardABBA: t1 takes A, pads, takes B; t0 takes B then A. The deadlock needs t0 to
  // take B inside t1's window: depth 2.
  for (const pad of [5, 20]) {
    const s = {
      name: 'hard',
      description: 'x',
      setup(env: any) {
        const k = env.kernelOnly();
        return { k, a: k.mutex_init('A'), b: k.mutex_init('B') };
      },
      tasks: (w: any) => [
        ['t0', (function* () {
          yield w.k.mutex_lock(w.b);
          yield w.k.mutex_lock(w.a);
          yield w.k.mutex_unlock(w.a);
          yield w.k.mutex_unlock(w.b);
        })()],
        ['t1', (function* () {
          yield w.k.mutex_lock(w.a);
          for (let i = 0; i < pad; i++) yield w.k.atomic_read(w.k.atomic_init(0));
          yield w.k.mutex_lock(w.b);
          yield w.k.mutex_unlock(w.b);
          yield w.k.mutex_unlock(w.a);
        })()],
      ] as const,
    };
    const ex = new PctExplorer(11, 2);
    const cal = runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: new RandomExplorer(1), lockdep: new Lockdep(false) });
    ex.calibrate(cal.steps);
    let hits = 0;
    const runs = 10_000;
    for (let i = 0; i < runs; i++) {
      ex.begin(i);
      if (runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) }).status === 'deadlock') hits++;
    }
    const bound = 1 / (2 * ex.k);
    assert.ok(hits / runs >= bound, `pad ${pad}: rate ${hits / runs} < bound ${bound}`);
  }
});
