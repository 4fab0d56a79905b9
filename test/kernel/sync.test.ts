import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RoundRobinStrategy, type KGen } from '../../src/kernel/index.js';

test('wait_for_completion blocks until complete(); each complete releases one waiter', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const c = k.init_completion('done');
  const woke: string[] = [];
  for (const n of ['w1', 'w2']) {
    k.spawn(n, (function* (): KGen {
      yield k.wait_for_completion(c);
      woke.push(n);
    })());
  }
  k.spawn('signaller', (function* (): KGen {
    yield k.sched_point();
    assert.deepEqual(woke, []);
    yield k.complete(c);
    yield k.sched_point();
    yield k.sched_point();
    assert.equal(woke.length, 1);
    yield k.complete(c);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(woke.length, 2);
  assert.equal(c.done, 0);
});

test('complete_all releases every current and future waiter', () => {
  const k = new Kernel();
  const c = k.init_completion();
  let n = 0;
  k.spawn('main', (function* (): KGen {
    yield k.complete_all(c);
    for (let i = 0; i < 3; i++) {
      yield k.wait_for_completion(c);
      n++;
    }
  })());
  assert.equal(k.run(), 'done');
  assert.equal(n, 3);
  assert.equal(k.completion_done(c), true);
});

test('wait_for_completion_timeout returns 0 after the timeout in virtual time, remaining time otherwise', () => {
  const k = new Kernel();
  const c = k.init_completion();
  const out: number[] = [];
  k.spawn('w', (function* (): KGen {
    out.push(yield k.wait_for_completion_timeout(c, 10_000_000_000));
    out.push(k.now());
    out.push(yield k.wait_for_completion_timeout(c, 10_000_000_000));
    out.push(k.now());
  })());
  k.spawn('late', (function* (): KGen {
    yield k.msleep(12_000);
    yield k.complete(c);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(out, [0, 10_000_000_000, 8_000_000_000, 12_000_000_000]);
});

test('wait_event re-checks its condition after every wake_up and sleeps again if false', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy(), trace: true });
  const wq = k.init_waitqueue_head('wq');
  let x = 0;
  let checks = 0;
  let done = false;
  k.spawn('waiter', (function* (): KGen {
    yield k.wait_event(wq, () => {
      checks++;
      return x >= 2;
    });
    done = true;
  })());
  k.spawn('waker', (function* (): KGen {
    yield k.sched_point();
    x = 1;
    yield k.wake_up(wq);
    yield k.sched_point();
    yield k.sched_point();
    assert.equal(done, false);
    x = 2;
    yield k.wake_up(wq);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(done, true);
  assert.equal(checks, 3); // initial check, after the first wake, after the second
});

test('a condition made true without wake_up is a lost wakeup: the waiter blocks forever', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const wq = k.init_waitqueue_head('lost_wq');
  let flag = false;
  k.spawn('waiter', (function* (): KGen {
    yield k.wait_event(wq, () => flag);
  })());
  k.spawn('setter', (function* (): KGen {
    yield k.sched_point();
    flag = true; // forgot wake_up
  })());
  assert.equal(k.run(), 'deadlock');
  assert.equal(k.bugs[0]!.kind, 'blocked-forever');
  assert.match(k.bugs[0]!.text, /INFO: task waiter:100 blocked in wait_event\(lost_wq\) \(nobody can signal it\)/);
});

test('wait_event_interruptible returns -ERESTARTSYS on a signal', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const wq = k.init_waitqueue_head();
  let rc: number | undefined;
  const w = k.spawn('w', (function* (): KGen {
    rc = yield k.wait_event_interruptible(wq, () => false);
  })());
  k.spawn('s', (function* (): KGen {
    yield k.sched_point();
    k.send_sig(w);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(rc, -512);
});

test('msleep advances virtual time only when nothing else can run (discrete events)', () => {
  const k = new Kernel({ strategy: new RoundRobinStrategy() });
  const log: string[] = [];
  k.spawn('sleeper', (function* (): KGen {
    yield k.msleep(20);
    log.push(`sleeper woke at ${k.now()}`);
  })());
  k.spawn('busy', (function* (): KGen {
    for (let i = 0; i < 5; i++) yield k.sched_point();
    log.push(`busy done at ${k.now()}`);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(log, ['busy done at 0', 'sleeper woke at 20000000']);
});

test('timers fire in expiry order at their virtual time; external time mode goes idle', () => {
  const k = new Kernel({ time: 'external' });
  const fired: string[] = [];
  k.add_timer(5_000, () => fired.push(`b@${k.now()}`), 'b');
  k.add_timer(1_000, () => fired.push(`a@${k.now()}`), 'a');
  const t = k.add_timer(3_000, () => fired.push('cancelled'), 'c');
  assert.equal(k.del_timer(t), true);
  const c = k.init_completion();
  k.spawn('w', (function* (): KGen {
    yield k.wait_for_completion_timeout(c, 10_000);
    fired.push(`w@${k.now()}`);
  })());
  assert.equal(k.run(), 'idle');
  assert.equal(k.nextDeadline(), 1_000);
  k.advanceTo(6_000);
  assert.deepEqual(fired, ['a@6000', 'b@6000']);
  assert.equal(k.run(), 'idle');
  k.advanceTo(10_000);
  assert.equal(k.run(), 'done');
  assert.deepEqual(fired, ['a@6000', 'b@6000', 'w@10000']);
});

test('runUntil fires timers in discrete time up to the limit', () => {
  const k = new Kernel();
  const fired: number[] = [];
  const tick = (): void => {
    fired.push(k.now());
    k.add_timer(k.now() + 30, tick);
  };
  k.add_timer(30, tick);
  k.runUntil(100);
  assert.deepEqual(fired, [30, 60, 90]);
  assert.equal(k.now(), 100);
});

test('atomics are scheduling points with the kernel semantics', () => {
  const k = new Kernel();
  const a = k.atomic_init(1);
  const r: unknown[] = [];
  k.spawn('x', (function* (): KGen {
    r.push(yield k.atomic_add_return(a, 2));
    r.push(yield k.atomic_fetch_add(a, 1));
    r.push(yield k.atomic_cmpxchg(a, 4, 10));
    r.push(yield k.atomic_cmpxchg(a, 4, 11));
    r.push(yield k.atomic_xchg(a, 1));
    r.push(yield k.atomic_dec_and_test(a));
    r.push(yield k.atomic_inc_not_zero(a));
    r.push(yield k.atomic_read(a));
  })());
  k.run();
  assert.deepEqual(r, [3, 3, 4, 10, 10, true, false, 0]);
});

test('strict wait queue: a condition written outside wake_up(wq, action) is reported; inside it is fine', () => {
  for (const legal of [true, false]) {
    const k = new Kernel({ stopOnBug: false });
    const wq = k.init_waitqueue_head('strict wq', { strict: true });
    const m = k.mutex_init('m');
    const st = { ready: false };
    k.spawn('waiter', (function* (): KGen<void> {
      yield k.wait_event(wq, () => st.ready);
    })());
    k.spawn('waker', (function* (): KGen<void> {
      yield k.mutex_lock(m);
      if (legal) {
        yield k.mutex_unlock(m);
        yield k.wake_up(wq, () => {
          st.ready = true;
        });
      } else {
        st.ready = true; // written in the mutex_lock step: DPOR could not see it
        yield k.mutex_unlock(m);
        yield k.wake_up(wq);
      }
    })());
    k.run();
    const bugs = k.bugs.map((b) => b.title);
    if (legal) assert.deepEqual(bugs, []);
    else assert.deepEqual(bugs, ['invariant strict wait queue violated: waker changed the condition waiter waits for on strict wq outside a wake_up/wait_event step on it or a plain sched_point']);
  }
});
