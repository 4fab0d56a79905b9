// Read sections (mutex_lock(m, READS)): the kernel checks that they are leaves and
// leave m's protected state unchanged; DPOR lets two of them commute. Soundness
// against full DFS on random programs of read and write sections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Kernel, READS, type KGen, type Mutex } from '../../src/kernel/index.js';
import { DfsExplorer, DporExplorer, type Explorer, type Scenario, type World } from '../../src/check/index.js';
import { exploreAll } from './helpers.js';

test('a read section must be a leaf: any op but its unlock is reported', () => {
  const k = new Kernel({ stopOnBug: false });
  const m = k.mutex_init('m');
  const n = k.mutex_init('n');
  k.spawn('t', (function* (): KGen<void> {
    yield k.mutex_lock(m, READS);
    yield k.mutex_lock(n);
    yield k.mutex_unlock(n);
    yield k.mutex_unlock(m);
    // A plain section afterwards is fine, and so is a proper read section.
    yield k.mutex_lock(m);
    yield k.mutex_lock(n);
    yield k.mutex_unlock(n);
    yield k.mutex_unlock(m);
    yield k.mutex_lock(m, READS);
    yield k.mutex_unlock(m);
  })());
  k.run();
  assert.deepEqual(
    k.bugs.map((b) => b.title),
    ['invariant read section violated: t did mutex_lock inside a read section of m (mutex_lock with READS must be followed by its mutex_unlock)'],
  );
});

test('a read section that changes the protected state is reported (while accesses are tracked)', () => {
  for (const tracked of [true, false]) {
    const k = new Kernel({ stopOnBug: false });
    const st = { v: 0 };
    const m = k.mutex_init('m', { digest: () => String(st.v) });
    if (tracked) k.trackAccesses(true);
    k.spawn('t', (function* (): KGen<void> {
      yield k.mutex_lock(m, READS);
      st.v++;
      yield k.mutex_unlock(m);
      yield k.mutex_lock(m);
      st.v++; // a write section may write
      yield k.mutex_unlock(m);
    })());
    k.run();
    assert.deepEqual(
      k.bugs.map((b) => b.title),
      tracked ? ['invariant read section violated: t changed the state m protects inside a read section (mutex_lock with READS)'] : [],
    );
  }
});

type Sec = { kind: 'r' | 'w'; lock: 0 | 1; nested?: 0 | 1 };

interface RW extends World {
  readonly m: Mutex[];
  readonly val: number[];
  readonly seen: string[][];
}

function rwProgram(plan: Sec[][]): Scenario<RW> {
  return {
    name: 'rw',
    description: 'read and write sections',
    setup(env) {
      const k = env.kernelOnly();
      const val = [0, 0];
      const m = [0, 1].map((i) => k.mutex_init(`M${i}`, { digest: () => String(val[i]) }));
      return { k, m, val, seen: plan.map(() => []) };
    },
    tasks: (w) =>
      plan.map((secs, ti) => [
        `t${ti}`,
        (function* (): KGen<void> {
          const k = w.k;
          for (const s of secs) {
            const m = w.m[s.lock]!;
            if (s.kind === 'r') {
              yield k.mutex_lock(m, READS);
              w.seen[ti]!.push(`${s.lock}=${w.val[s.lock]}`);
              yield k.mutex_unlock(m);
              continue;
            }
            yield k.mutex_lock(m);
            w.val[s.lock]!++;
            if (s.nested !== undefined && s.nested !== s.lock) {
              const n = w.m[s.nested]!;
              yield k.mutex_lock(n);
              w.val[s.nested]! += 10;
              yield k.mutex_unlock(n);
            }
            yield k.mutex_unlock(m);
          }
        })(),
      ] as const),
  };
}

/** Every distinct outcome (status, what each reader saw, final values) an explorer reaches. */
function outcomes(s: Scenario<RW>, ex: Explorer, max = 500_000): { set: Set<string>; executions: number } {
  const set = new Set<string>();
  const executions = exploreAll(
    s,
    ex,
    (r) => {
      if (r.status === 'redundant') return;
      assert.deepEqual(r.bugs.filter((b) => b.kind === 'invariant'), []);
      const w = r.world as RW;
      set.add(`${r.status} ${w.seen.map((x) => x.join(',')).join(' | ')} final ${w.val.join(',')}`);
    },
    max,
  );
  assert.ok(executions < max, 'exploration did not finish');
  return { set, executions };
}

test('DPOR with read sections reaches every outcome a full DFS reaches (random programs)', () => {
  const sec = fc.oneof(
    fc.record({ kind: fc.constant<'r'>('r'), lock: fc.constantFrom<0 | 1>(0, 1) }),
    fc.record({ kind: fc.constant<'w'>('w'), lock: fc.constantFrom<0 | 1>(0, 1), nested: fc.option(fc.constantFrom<0 | 1>(0, 1), { nil: undefined }) }),
  );
  fc.assert(
    fc.property(fc.array(fc.array(sec, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }).filter((p) => p.flat().length <= 5), (plan) => {
      const s = rwProgram(plan as Sec[][]);
      const d = outcomes(s, new DporExplorer());
      const f = outcomes(s, new DfsExplorer(1000, false), 3_000_000);
      assert.deepEqual([...d.set].sort(), [...f.set].sort(), JSON.stringify(plan));
    }),
    { numRuns: 80, seed: 11 },
  );
});

test('DPOR: read sections of one mutex commute, a write section orders them', () => {
  const n = (plan: Sec[][]): number => outcomes(rwProgram(plan), new DporExplorer()).executions;
  // Three readers with three sections each: one execution (a plain mutex: 9!/(3!3!3!) = 1,680 orders).
  const r3: Sec[] = [{ kind: 'r', lock: 0 }, { kind: 'r', lock: 0 }, { kind: 'r', lock: 0 }];
  assert.equal(n([r3, r3, r3]), 1);
  // A writer among them: its section's position among the reader's sections matters.
  assert.equal(n([r3, [{ kind: 'w', lock: 0 }]]), 4);
});
