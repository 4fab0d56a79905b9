import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RoundRobinStrategy, RandomStrategy, type KGen } from '../../src/kernel/index.js';

test('queue_work runs the item in a worker; a second queue while pending returns false', () => {
  const k = new Kernel();
  const wq = k.alloc_workqueue('test_wq');
  let runs = 0;
  const w = k.INIT_WORK('my_work', function* (): KGen {
    runs++;
    yield k.sched_point();
  });
  const res: boolean[] = [];
  k.spawn('q', (function* (): KGen {
    res.push(yield k.queue_work(wq, w));
    res.push(yield k.queue_work(wq, w));
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(res, [true, false]);
  assert.equal(runs, 1);
  assert.ok(k.allTasks.some((t) => t.name === 'kworker/0:0'));
});

test('flush_work waits for the queued execution to finish', () => {
  for (let seed = 0; seed < 100; seed++) {
    const k = new Kernel({ strategy: new RandomStrategy(seed) });
    const wq = k.alloc_workqueue('wq');
    let finished = false;
    const w = k.INIT_WORK('slow', function* (): KGen {
      yield k.msleep(5);
      finished = true;
    });
    let flushed: boolean | undefined;
    k.spawn('q', (function* (): KGen {
      yield k.queue_work(wq, w);
      flushed = yield k.flush_work(w);
      assert.equal(finished, true, `seed ${seed}`);
    })());
    assert.equal(k.run(), 'done');
    assert.equal(flushed, true);
  }
});

test('flush_work on an idle item returns false immediately', () => {
  const k = new Kernel();
  const w = k.INIT_WORK('idle', function* (): KGen {});
  let r: boolean | undefined;
  k.spawn('f', (function* (): KGen {
    r = yield k.flush_work(w);
  })());
  k.run();
  assert.equal(r, false);
});

test('a work item re-queued while running runs again, never concurrently with itself', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const wq = k.alloc_workqueue('wq');
  let running = 0;
  let runs = 0;
  const w = k.INIT_WORK('reent', function* (): KGen {
    running++;
    assert.equal(running, 1);
    runs++;
    yield k.sched_point();
    yield k.sched_point();
    running--;
  });
  k.spawn('q', (function* (): KGen {
    yield k.queue_work(wq, w);
    yield k.sched_point();
    yield k.sched_point();
    assert.equal(yield k.queue_work(wq, w), true);
    yield k.flush_work(w);
    assert.equal(runs, 2);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(runs, 2);
});

test('cancel_work_sync cancels a pending item and waits for a running one', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const wq = k.alloc_workqueue('ordered', 1);
  const ran: string[] = [];
  const a = k.INIT_WORK('a', function* (): KGen {
    ran.push('a start');
    yield k.msleep(10);
    ran.push('a end');
  });
  const b = k.INIT_WORK('b', function* (): KGen {
    ran.push('b');
  });
  const out: boolean[] = [];
  k.spawn('c', (function* (): KGen {
    yield k.queue_work(wq, a);
    yield k.queue_work(wq, b); // ordered: waits behind a
    yield k.sched_point();
    yield k.sched_point();
    out.push(yield k.cancel_work_sync(b));
    out.push(yield k.cancel_work_sync(a));
    ran.push(`cancelled at ${k.now()}`);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(ran, ['a start', 'a end', 'cancelled at 10000000']);
  assert.deepEqual(out, [true, false]);
});

test('ordered workqueues run items one at a time in FIFO order', () => {
  const k = new Kernel({ strategy: new RandomStrategy(3) });
  const wq = k.alloc_workqueue('ord', 1);
  const order: string[] = [];
  let active = 0;
  const mk = (n: string) =>
    k.INIT_WORK(n, function* (): KGen {
      active++;
      assert.equal(active, 1);
      order.push(n);
      yield k.sched_point();
      active--;
    });
  const items = ['w1', 'w2', 'w3'].map(mk);
  k.spawn('q', (function* (): KGen {
    for (const w of items) yield k.queue_work(wq, w);
    yield k.flush_workqueue(wq);
    assert.deepEqual(order, ['w1', 'w2', 'w3']);
  })());
  assert.equal(k.run(), 'done');
});

test('delayed work fires after its delay in virtual time; cancel before expiry prevents it', () => {
  const k = new Kernel();
  const wq = k.alloc_workqueue('dwq');
  const at: number[] = [];
  const d1 = k.INIT_DELAYED_WORK('d1', function* (): KGen {
    at.push(k.now());
  });
  const d2 = k.INIT_DELAYED_WORK('d2', function* (): KGen {
    at.push(-1);
  });
  k.spawn('q', (function* (): KGen {
    assert.equal(k.queue_delayed_work(wq, d1, 30_000_000_000), true);
    assert.equal(k.queue_delayed_work(wq, d1, 1), false);
    k.queue_delayed_work(wq, d2, 5_000);
    assert.equal(yield k.cancel_delayed_work_sync(d2), true);
    yield k.msleep(40_000);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(at, [30_000_000_000]);
});

test('flushing a work item while holding a lock the item takes is a lockdep report and a deadlock', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const m = k.mutex_init('&dev->lock');
  const w = k.INIT_WORK('dev_work', function* (): KGen {
    yield k.mutex_lock(m);
    yield k.mutex_unlock(m);
  });
  k.spawn('remover', (function* (): KGen {
    yield k.schedule_work(w);
    yield* k.fn('dev_remove', (function* (): KGen {
      yield k.mutex_lock(m);
      yield k.flush_work(w);
      yield k.mutex_unlock(m);
    })());
  })());
  k.spawn('other', (function* (): KGen {
    yield k.sched_point();
  })());
  const st = k.run();
  // The first report is lockdep's (found at the flush call, before anything blocks).
  assert.equal(k.bugs[0]!.kind, 'lockdep');
  assert.match(k.bugs[0]!.text, /WARNING: possible circular locking dependency detected/);
  assert.match(k.bugs[0]!.text, /\(work_completion\)\(&dev_work\)/);
  assert.equal(st, 'bug');
});
