import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RandomStrategy, RoundRobinStrategy, type KGen } from '../../src/kernel/index.js';

test('readers share an rwsem; a writer excludes readers and writers', () => {
  for (let seed = 0; seed < 300; seed++) {
    const k = new Kernel({ strategy: new RandomStrategy(seed) });
    const s = k.init_rwsem('&s');
    let readers = 0;
    let writers = 0;
    let maxReaders = 0;
    const reader = function* (): KGen {
      yield k.down_read(s);
      readers++;
      maxReaders = Math.max(maxReaders, readers);
      assert.equal(writers, 0);
      yield k.sched_point('read');
      readers--;
      yield k.up_read(s);
    };
    const writer = function* (): KGen {
      yield k.down_write(s);
      writers++;
      assert.equal(writers, 1);
      assert.equal(readers, 0);
      yield k.sched_point('write');
      writers--;
      yield k.up_write(s);
    };
    k.spawn('r1', reader());
    k.spawn('r2', reader());
    k.spawn('w', writer());
    k.spawn('r3', reader());
    assert.equal(k.run(), 'done', `seed ${seed}`);
    assert.deepEqual(k.bugs, []);
  }
});

test('two readers can hold the rwsem at the same time', () => {
  let both = false;
  for (let seed = 0; seed < 50 && !both; seed++) {
    const k = new Kernel({ strategy: new RandomStrategy(seed) });
    const s = k.init_rwsem('&s');
    let inside = 0;
    const reader = function* (): KGen {
      yield k.down_read(s);
      inside++;
      if (inside === 2) both = true;
      yield k.sched_point();
      inside--;
      yield k.up_read(s);
    };
    k.spawn('r1', reader());
    k.spawn('r2', reader());
    k.run();
  }
  assert.ok(both);
});

test('a waiting writer blocks new readers (writer preference, as in Linux)', () => {
  // r1 holds read; w queues for write; r2 then asks for read and must wait for w.
  const order: string[] = [];
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const s = k.init_rwsem('&s');
  k.spawn('r1', (function* (): KGen {
    yield k.down_read(s);
    order.push('r1 read');
    const w = k.spawn('w', (function* (): KGen {
      yield k.down_write(s);
      order.push('w write');
      yield k.up_write(s);
    })());
    // Let w queue, then start r2 while w waits.
    yield k.sched_point();
    while (!s.waiters.includes(w)) yield k.sched_point();
    const r2 = k.spawn('r2', (function* (): KGen {
      yield k.down_read(s);
      order.push('r2 read');
      yield k.up_read(s);
    })());
    while (!s.waiters.includes(r2)) yield k.sched_point();
    order.push('r1 release');
    yield k.up_read(s);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(order, ['r1 read', 'r1 release', 'w write', 'r2 read']);
});

test('rwsem trylocks: read fails under a writer or a waiting writer; write fails under a reader', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const s = k.init_rwsem('&s');
  const got: Record<string, boolean> = {};
  k.spawn('main', (function* (): KGen {
    yield k.down_read(s);
    const w = k.spawn('w', (function* (): KGen {
      yield k.down_write(s);
      yield k.up_write(s);
    })());
    while (!s.waiters.includes(w)) yield k.sched_point();
    const probe = k.spawn('probe', (function* (): KGen {
      got.readWhileWriterWaits = yield k.down_read_trylock(s);
      got.writeWhileReader = yield k.down_write_trylock(s);
    })());
    yield k.join(probe);
    yield k.up_read(s);
    yield k.join(w);
    got.writeWhenFree = yield k.down_write_trylock(s);
    const p2 = k.spawn('probe2', (function* (): KGen {
      got.readUnderWriter = yield k.down_read_trylock(s);
    })());
    yield k.join(p2);
    yield k.up_write(s);
    got.readWhenFree = yield k.down_read_trylock(s);
    yield k.up_read(s);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(got, { readWhileWriterWaits: false, writeWhileReader: false, writeWhenFree: true, readUnderWriter: false, readWhenFree: true });
  assert.deepEqual(k.bugs, []);
});

test('up_read of an rwsem not held for read is a bad unlock', () => {
  const k = new Kernel({ stopOnBug: false });
  const s = k.init_rwsem('&s');
  k.spawn('x', (function* (): KGen {
    yield k.down_write(s);
    yield k.up_read(s);
    yield k.up_write(s);
  })());
  k.run();
  assert.deepEqual(k.bugs.map((b) => b.kind), ['bad-unlock']);
  assert.equal(s.writer, null);
});
