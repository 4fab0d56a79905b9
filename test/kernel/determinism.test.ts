import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, Lockdep, RandomStrategy, ReplayStrategy, ReplayDivergence, type KGen, type Mutex } from '../../src/kernel/index.js';

/** A busy little world: locks, an rwsem, a completion, sleeps and a work item. */
function world(k: Kernel): void {
  const locks: Mutex[] = [0, 1, 2].map((i) => k.mutex_init(`L${i}`));
  const s = k.init_rwsem('S');
  const c = k.init_completion('c');
  const wq = k.alloc_workqueue('wq');
  const w = k.INIT_WORK('w', function* (): KGen {
    yield k.mutex_lock(locks[2]!);
    yield k.msleep(1);
    yield k.mutex_unlock(locks[2]!);
  });
  for (let i = 0; i < 4; i++) {
    k.spawn(`t${i}`, (function* (): KGen {
      for (let j = 0; j < 3; j++) {
        const a = locks[(i + j) % 2]!;
        yield k.mutex_lock(a);
        if ((i + j) % 3 === 0) {
          yield k.down_read(s);
          yield k.up_read(s);
        } else {
          yield k.down_write(s);
          yield k.up_write(s);
        }
        yield k.mutex_unlock(a);
        if (i === 0 && j === 1) yield k.queue_work(wq, w);
        if (i === 1 && j === 2) yield k.complete(c);
        if (i === 2) yield k.msleep(j);
      }
      if (i === 3) yield k.wait_for_completion(c);
    })());
  }
}

function runSeed(seed: number, strategy = new RandomStrategy(seed)) {
  const k = new Kernel({ strategy, trace: true, lockdep: new Lockdep() });
  world(k);
  const st = k.run();
  return { st, trace: k.trace.join('\n'), choices: [...k.choices], dmesg: k.dmesg(), steps: k.steps };
}

test('same seed -> byte-identical trace', () => {
  for (const seed of [1, 2, 3, 99, 12345]) {
    const a = runSeed(seed);
    const b = runSeed(seed);
    assert.equal(a.st, 'done');
    assert.equal(a.trace, b.trace);
    assert.equal(a.dmesg, b.dmesg);
    assert.ok(a.choices.length > 10);
  }
  // ... and different seeds explore different schedules.
  assert.notEqual(runSeed(1).trace, runSeed(2).trace);
});

test('replaying a recorded choice list reproduces the identical trace', () => {
  for (const seed of [5, 6, 7]) {
    const a = runSeed(seed);
    const b = runSeed(0, new ReplayStrategy(a.choices) as any);
    assert.equal(b.trace, a.trace);
    assert.deepEqual(b.choices, a.choices);
  }
});

test('a replay that does not fit the execution reports a divergence', () => {
  const a = runSeed(5);
  const bad = [...a.choices];
  bad[3] = 999;
  assert.throws(() => runSeed(0, new ReplayStrategy(bad) as any), ReplayDivergence);
  assert.throws(() => runSeed(0, new ReplayStrategy(a.choices.slice(0, 4)) as any), /replay exhausted/);
});

test('the trace names task, op, lock, outcome and held locks', () => {
  const k = new Kernel({ trace: true });
  const m = k.mutex_init('&matrix_dev->mdevs_lock');
  k.spawn('assign', (function* (): KGen {
    yield* k.fn('assign_adapter_store', (function* (): KGen {
      yield k.mutex_lock(m);
      yield k.sched_point('read apm');
      yield k.mutex_unlock(m);
    })());
  })());
  k.run();
  assert.deepEqual(k.trace, [
    '#1 t=0 assign: start',
    '#2 t=0 assign: mutex_lock(&matrix_dev->mdevs_lock) = 0 in assign_adapter_store held={&matrix_dev->mdevs_lock}',
    '#3 t=0 assign: sched_point(read apm) in assign_adapter_store held={&matrix_dev->mdevs_lock}',
    '#4 t=0 assign: mutex_unlock(&matrix_dev->mdevs_lock) in assign_adapter_store',
  ]);
});
