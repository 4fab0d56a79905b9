import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, TaskError, Errno, E, type KGen } from '../../src/kernel/index.js';

test('join returns the exit value of the task', () => {
  const k = new Kernel();
  let got: unknown;
  k.spawn('parent', (function* (): KGen {
    const c = k.spawn('child', (function* (): KGen<number> {
      yield k.msleep(1);
      return 42;
    })());
    got = yield k.join(c);
  })());
  assert.equal(k.run(), 'done');
  assert.equal(got, 42);
});

test('an error propagates to the joiner with the task name and its operation stack', () => {
  const k = new Kernel();
  let caught: unknown;
  k.spawn('parent', (function* (): KGen {
    const c = k.spawn('writer', (function* (): KGen {
      yield* k.fn('assign_adapter_store', (function* (): KGen {
        yield* k.fn('vfio_ap_mdev_validate_masks', (function* (): KGen {
          yield k.sched_point();
          throw new Errno(E.EADDRINUSE, 'APQN 05.0004 in use');
        })());
      })());
    })());
    try {
      yield k.join(c);
    } catch (e) {
      caught = e;
    }
  })());
  assert.equal(k.run(), 'done');
  assert.ok(caught instanceof TaskError);
  const te = caught as TaskError;
  assert.equal(te.task, 'writer');
  assert.deepEqual(te.opStack, ['assign_adapter_store', 'vfio_ap_mdev_validate_masks']);
  assert.equal(te.message, 'task "writer" failed in assign_adapter_store > vfio_ap_mdev_validate_masks: EADDRINUSE: APQN 05.0004 in use');
  assert.equal((te.cause as Errno).errno, 98);
  assert.deepEqual(k.bugs, []); // handled by the joiner
});

test('an error nobody handles is reported as a bug', () => {
  const k = new Kernel();
  k.spawn('lonely', (function* (): KGen {
    yield* k.fn('some_path', (function* (): KGen {
      yield k.sched_point();
      throw new Error('boom');
    })());
  })());
  assert.equal(k.run(), 'bug');
  assert.equal(k.bugs[0]!.kind, 'task-error');
  assert.equal(k.bugs[0]!.title, 'task "lonely" failed in some_path: boom');
});

test('an error leaves the operation stack at the throw point until the catcher restores it', () => {
  const k = new Kernel({ throwOnBug: true });
  let atCatch: string[] = [];
  let restored: string[] = [];
  let afterOuter: string[] = [];
  k.spawn('t', (function* (): KGen {
    yield* k.fn('outer', (function* (): KGen {
      const d = k.opsDepth();
      try {
        yield* k.fn('inner', (function* (): KGen {
          yield k.sched_point();
          throw new Error('x');
        })());
      } catch {
        atCatch = [...k.current!.ops];
        k.opsRestore(d);
        restored = [...k.current!.ops];
      }
    })());
    afterOuter = [...k.current!.ops];
  })());
  k.run();
  assert.deepEqual(atCatch, ['outer', 'inner']);
  assert.deepEqual(restored, ['outer']);
  assert.deepEqual(afterOuter, []);
});

test('forgetting to yield an op is detected at the next op', () => {
  const k = new Kernel();
  const m = k.mutex_init('m');
  k.spawn('sloppy', (function* (): KGen {
    k.mutex_unlock(m); // not yielded
    yield k.sched_point();
  })());
  assert.equal(k.run(), 'bug');
  assert.match(k.bugs[0]!.title, /mutex_unlock was called but not yielded before sched_point/);
});

test('yielding something that is not an op (e.g. a Promise) is reported', () => {
  const k = new Kernel();
  k.spawn('async-ish', (function* (): Generator<any, void, any> {
    yield Promise.resolve(1);
  })() as KGen);
  assert.equal(k.run(), 'bug');
  assert.match(k.bugs[0]!.title, /yielded a Promise instead of a kernel op/);
});

test('the step budget turns an endless loop into a livelock report', () => {
  const k = new Kernel({ maxSteps: 1000 });
  k.spawn('spinner', (function* (): KGen {
    for (;;) yield k.sched_point('spin');
  })());
  assert.equal(k.run(), 'livelock');
  assert.equal(k.bugs[0]!.kind, 'livelock');
  assert.equal(k.steps, 1001);
});

test('comm is truncated to 15 characters as in the kernel; pids are sequential', () => {
  const k = new Kernel({ pidBase: 4000 });
  const a = k.spawn('qemu-system-s390x', (function* (): KGen {})());
  const b = k.spawn('b', (function* (): KGen {})());
  assert.equal(a.comm, 'qemu-system-s39');
  assert.equal(a.pid, 4000);
  assert.equal(b.pid, 4001);
});

test('onExit hooks run when a task exits and take responsibility for its error', () => {
  const k = new Kernel();
  const seen: string[] = [];
  const t = k.spawn('store', (function* (): KGen {
    yield k.sched_point();
    throw new Errno(E.EINVAL);
  })());
  k.onExit(t, (x) => seen.push(`${x.name}:${(x.error?.cause as Errno).errno}`));
  assert.equal(k.run(), 'done');
  assert.deepEqual(seen, ['store:22']);
  assert.deepEqual(k.bugs, []);
});

test('retainTasks: false keeps no finished task (long-running live host), ids still count up', async () => {
  const k = new Kernel({ retainTasks: false });
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = k.spawn(`w${i}`, (function* (): KGen<number> {
      yield k.sched_point('x');
      return i;
    })());
    ids.push(t.id);
    k.run();
    assert.equal(t.exitValue, i);
  }
  assert.deepEqual(ids, [0, 1, 2]);
  assert.equal(k.allTasks.length, 0);
  // The live host boots that way: a task per sysfs write must not accumulate.
  const { bootLiveHost } = await import('../../src/live/state.js');
  const h = bootLiveHost('minimal');
  assert.equal(h.k.allTasks.length, 0);
  h.write('/sys/bus/ap/apmask', '-0');
  assert.equal(h.k.allTasks.length, 0);
});

test('k.call runs a frame of its own: value and errors reach the caller as with yield*, in the same step', () => {
  const k = new Kernel({ trace: true });
  const seen: string[] = [];
  function* leaf(n: number): KGen<number> {
    seen.push(`leaf ${n} ops=${k.current!.ops.join('>')}`);
    yield k.sched_point(`leaf ${n}`);
    if (n < 0) throw new Errno(E.EINVAL, 'negative');
    return n * 2;
  }
  function* mid(n: number): KGen<number> {
    // A call nested in a named frame, as fn bodies call driver functions.
    const v = (yield k.call(leaf(n))) as number;
    return v + 1;
  }
  let result: unknown;
  let errno = 0;
  let opsAfterCatch = '';
  const t = k.spawn('caller', (function* (): KGen<string> {
    // First thing the task does: a call (handled in its first step).
    result = yield* k.fn('outer', mid(5));
    try {
      yield* k.fn('failing', mid(-1));
    } catch (e) {
      errno = (e as Errno).errno;
      // fn leaves the operation stack at the throw point (no try/finally on hot paths).
      opsAfterCatch = k.current!.ops.join('>');
    }
    return 'end';
  })());
  const steps0 = k.steps;
  assert.equal(k.run(), 'done');
  assert.equal(result, 11);
  assert.equal(errno, E.EINVAL);
  assert.equal(opsAfterCatch, 'failing');
  assert.equal(t.exitValue, 'end');
  assert.deepEqual(seen, ['leaf 5 ops=outer', 'leaf -1 ops=failing']);
  // start + two sched_points: calls are not steps.
  assert.equal(k.steps - steps0, 3);
  // An exited task keeps no generator (its frames were popped, its body is released).
  assert.equal(t.gens.length, 0);
  assert.deepEqual(t.frames, []);
});

test('k.call frames run as deep as the driver nests them, one resume per step', () => {
  const k = new Kernel();
  function* down(n: number): KGen<number> {
    if (n === 0) {
      yield k.sched_point('bottom');
      return 0;
    }
    return 1 + ((yield k.call(down(n - 1))) as number);
  }
  let depth = -1;
  k.spawn('deep', (function* (): KGen {
    depth = (yield k.call(down(2000))) as number;
  })());
  assert.equal(k.run(), 'done');
  assert.equal(depth, 2000);
});

test('k.call outside a task is refused', () => {
  const k = new Kernel();
  assert.throws(() => k.call((function* (): KGen {})()), /cannot be called outside a task/);
});
