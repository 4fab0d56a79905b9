import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RandomStrategy, type KGen, type Mutex } from '../../src/kernel/index.js';

test('mutex_lock blocks a second task until the owner unlocks; waiter runs after', () => {
  const k = new Kernel({ trace: true });
  const m = k.mutex_init('&m');
  const log: string[] = [];
  k.spawn('a', (function* (): KGen {
    yield k.mutex_lock(m);
    log.push('a locked');
    yield k.sched_point('a critical');
    log.push('a unlock');
    yield k.mutex_unlock(m);
  })());
  k.spawn('b', (function* (): KGen {
    yield k.mutex_lock(m);
    log.push('b locked');
    yield k.mutex_unlock(m);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(log, ['a locked', 'a unlock', 'b locked']);
  assert.equal(m.owner, null);
  assert.deepEqual(k.bugs, []);
});

test('b is not enabled while a holds the mutex, under every schedule', () => {
  for (let seed = 0; seed < 200; seed++) {
    const k = new Kernel({ strategy: new RandomStrategy(seed) });
    const m = k.mutex_init('&m');
    let inside = 0;
    let maxInside = 0;
    const body = function* (): KGen {
      for (let i = 0; i < 3; i++) {
        yield k.mutex_lock(m);
        inside++;
        maxInside = Math.max(maxInside, inside);
        yield k.sched_point('cs');
        inside--;
        yield k.mutex_unlock(m);
      }
    };
    k.spawn('a', body());
    k.spawn('b', body());
    k.spawn('c', body());
    assert.equal(k.run(), 'done');
    assert.equal(maxInside, 1, `seed ${seed}`);
  }
});

test('mutex_trylock returns true when free and false when held, without blocking', () => {
  const k = new Kernel();
  const m = k.mutex_init('&m');
  const results: boolean[] = [];
  k.spawn('holder', (function* (): KGen {
    results.push(yield k.mutex_trylock(m));
    yield k.sched_point();
    const t2 = k.spawn('other', (function* (): KGen<boolean> {
      return yield k.mutex_trylock(m);
    })());
    results.push(yield k.join(t2));
    yield k.mutex_unlock(m);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(results, [true, false]);
  assert.deepEqual(k.bugs, []);
});

test('unlocking a mutex the task does not hold is reported (bad unlock balance)', () => {
  const k = new Kernel({ stopOnBug: false });
  const m = k.mutex_init('&bad');
  k.spawn('x', (function* (): KGen {
    yield k.mutex_unlock(m);
  })());
  k.run();
  assert.equal(k.bugs.length, 1);
  assert.equal(k.bugs[0]!.kind, 'bad-unlock');
  const lines = k.bugs[0]!.text.split('\n');
  assert.equal(lines[1], 'WARNING: bad unlock balance detected!');
  assert.equal(lines[4], 'x/100 is trying to release lock (&bad) at:');
  assert.equal(lines[6], 'but there are no more locks to release!');
});

test('unlocking a mutex owned by another task is reported and does not release it', () => {
  const k = new Kernel({ stopOnBug: false });
  const m = k.mutex_init('&m');
  let owner: unknown;
  k.spawn('a', (function* (): KGen {
    yield k.mutex_lock(m);
    const b = k.spawn('b', (function* (): KGen {
      yield k.mutex_unlock(m);
    })());
    yield k.join(b);
    owner = m.owner?.name;
    yield k.mutex_unlock(m);
  })());
  k.run();
  assert.equal(owner, 'a');
  assert.deepEqual(k.bugs.map((b) => b.kind), ['bad-unlock']);
});

test('mutex_lock_interruptible returns -EINTR when a signal arrives while waiting', () => {
  const k = new Kernel();
  const m = k.mutex_init('&m');
  let rc: number | undefined;
  k.spawn('holder', (function* (): KGen {
    yield k.mutex_lock(m);
    const w = k.spawn('waiter', (function* (): KGen {
      rc = yield k.mutex_lock_interruptible(m);
    })());
    yield k.sched_point();
    yield k.sched_point();
    k.send_sig(w);
    yield k.join(w);
    yield k.mutex_unlock(m);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(rc, -4);
  assert.equal(m.owner, null);
});

test('a task that exits holding a lock is reported and later lockers deadlock', () => {
  const k = new Kernel({ stopOnBug: false });
  const m: Mutex = k.mutex_init('&leaky');
  k.spawn('a', (function* (): KGen {
    yield* k.fn('leaky_path', (function* (): KGen {
      yield k.mutex_lock(m);
    })());
  })());
  k.spawn('b', (function* (): KGen {
    yield k.sched_point();
    yield k.mutex_lock(m);
  })());
  k.run();
  const kinds = k.bugs.map((b) => b.kind);
  assert.ok(kinds.includes('lockdep'), kinds.join());
  const held = k.bugs.find((b) => b.kind === 'lockdep')!;
  assert.match(held.text, /WARNING: lock held when returning to user space!/);
  assert.match(held.text, /a\/100 is leaving the kernel with locks still held!/);
  assert.match(held.text, / #0: ffff\w+ \(&leaky\)\{\+\.\+\.\}-\{3:3\}, at: leaky_path/);
  const blocked = k.bugs.find((b) => b.kind === 'blocked-forever')!;
  assert.match(blocked.text, /INFO: task b:101 blocked in mutex_lock\(&leaky\) \(held by a\/100 \[exited\]\)/);
});
