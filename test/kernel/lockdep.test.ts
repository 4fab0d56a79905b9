import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, Lockdep, RandomStrategy, FirstComeStrategy, type KGen, type Mutex, type RwSemaphore } from '../../src/kernel/index.js';

function* path(k: Kernel, name: string, first: Mutex, second: Mutex): KGen {
  yield* k.fn(name, (function* (): KGen {
    yield k.mutex_lock(first);
    yield k.sched_point('between');
    yield k.mutex_lock(second);
    yield k.mutex_unlock(second);
    yield k.mutex_unlock(first);
  })());
}

function abba(k: Kernel): void {
  const A = k.mutex_init('lockA');
  const B = k.mutex_init('lockB');
  k.spawn('t1', path(k, 'path_ab', A, B));
  k.spawn('t2', path(k, 'path_ba', B, A));
}

test('classic ABBA: lockdep reports it in the first execution even though it does not deadlock', () => {
  const k = new Kernel({ strategy: new FirstComeStrategy(), stopOnBug: false });
  abba(k);
  assert.equal(k.run(), 'done'); // first-come runs t1 to completion: no deadlock
  assert.equal(k.bugs.length, 1);
  assert.equal(k.bugs[0]!.kind, 'lockdep');
  assert.equal(
    k.bugs[0]!.text,
    [
      '======================================================',
      'WARNING: possible circular locking dependency detected',
      '6.12.0-apsim #1 Not tainted',
      '------------------------------------------------------',
      't2/101 is trying to acquire lock:',
      'ffff888100000000 (lockA){+.+.}-{3:3}, at: path_ba',
      '',
      'but task is already holding lock:',
      'ffff888100000040 (lockB){+.+.}-{3:3}, at: path_ba',
      '',
      'which lock already depends on the new lock.',
      '',
      '',
      'the existing dependency chain (in reverse order) is:',
      '',
      '-> #1 (lockB){+.+.}-{3:3}:',
      '       mutex_lock',
      '       path_ab',
      '',
      '-> #0 (lockA){+.+.}-{3:3}:',
      '       mutex_lock',
      '       path_ba',
      '',
      'other info that might help us debug this:',
      '',
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      '  lock(lockB);',
      '                               lock(lockA);',
      '                               lock(lockB);',
      '  lock(lockA);',
      '',
      ' *** DEADLOCK ***',
      '',
      '1 lock held by t2/101:',
      ' #0: ffff888100000040 (lockB){+.+.}-{3:3}, at: path_ba',
      '',
      'stack backtrace:',
      'CPU: 0 PID: 101 Comm: t2 Not tainted 6.12.0-apsim #1',
      'Hardware name: IBM 3931 A01 701 (LPAR)',
      'Call Trace:',
      '       mutex_lock',
      '       path_ba',
    ].join('\n'),
  );
  // The report is also in dmesg, with timestamps.
  assert.match(k.dmesg(), /^\[    0\.000000\] =+\n\[    0\.000000\] WARNING: possible circular locking dependency detected\n/);
});

test('ABBA: seeded random exploration drives it into a real deadlock and reports the cycle', () => {
  const lockdep = new Lockdep();
  let found: { seed: number; text: string } | null = null;
  for (let seed = 0; seed < 100 && !found; seed++) {
    const k = new Kernel({ strategy: new RandomStrategy(seed), lockdep });
    abba(k);
    if (k.run() === 'deadlock') found = { seed, text: k.bugs.find((b) => b.kind === 'deadlock')!.text };
  }
  assert.ok(found, 'no deadlock found in 100 seeds');
  const lines = found.text.split('\n');
  assert.equal(lines[0], 'INFO: task deadlock detected: no task can make progress');
  assert.equal(lines[1], 'Wait-for cycle:');
  assert.equal(lines[2], '  t1/100 waits in mutex_lock(lockB) in path_ab, held by t2/101');
  assert.equal(lines[3], '  t2/101 waits in mutex_lock(lockA) in path_ba, held by t1/100');
  assert.ok(lines.includes('      1 lock held by t1/100:'));
  assert.ok(lines.includes('       #0: ffff888100000000 (lockA){+.+.}-{3:3}, at: path_ab'));
  // lockdep reported exactly once across all executions (deduplicated, never switched off).
  assert.equal(lockdep.reports.length, 1);
});

test('lockdep keeps its graph across executions: each half alone in a separate execution still reports', () => {
  const lockdep = new Lockdep();
  const k1 = new Kernel({ lockdep });
  const A = k1.mutex_init('lockA');
  const B = k1.mutex_init('lockB');
  k1.spawn('t1', path(k1, 'path_ab', A, B));
  assert.equal(k1.run(), 'done');
  assert.equal(k1.bugs.length, 0);
  const k2 = new Kernel({ lockdep });
  const A2 = k2.mutex_init('lockA');
  const B2 = k2.mutex_init('lockB');
  k2.spawn('t2', path(k2, 'path_ba', B2, A2));
  assert.equal(k2.run(), 'bug');
  assert.equal(k2.bugs[0]!.kind, 'lockdep');
  assert.deepEqual(lockdep.reports[0]!.classes, ['lockA', 'lockB']);
});

test('lockdep does not switch itself off: a second, different inversion is also reported', () => {
  const k = new Kernel({ stopOnBug: false });
  const A = k.mutex_init('A');
  const B = k.mutex_init('B');
  const C = k.mutex_init('C');
  const D = k.mutex_init('D');
  k.spawn('t1', path(k, 'ab', A, B));
  k.spawn('t2', path(k, 'ba', B, A));
  k.spawn('t3', path(k, 'cd', C, D));
  k.spawn('t4', path(k, 'dc', D, C));
  k.spawn('t5', path(k, 'dc2', D, C)); // same cycle again: deduplicated
  k.run();
  assert.deepEqual(
    k.bugs.map((b) => b.kind),
    ['lockdep', 'lockdep'],
  );
  assert.deepEqual(k.lockdep.reports.map((r) => r.signature), ['circular:0>1', 'circular:2>3']);
});

test('a three-lock cycle prints "Chain exists of"', () => {
  const k = new Kernel({ stopOnBug: false });
  const A = k.mutex_init('A');
  const B = k.mutex_init('B');
  const C = k.mutex_init('C');
  k.spawn('t1', path(k, 'ab', A, B));
  k.spawn('t2', path(k, 'bc', B, C));
  k.spawn('t3', path(k, 'ca', C, A));
  k.run();
  assert.equal(k.bugs.length, 1);
  const text = k.bugs[0]!.text;
  assert.match(text, /\nChain exists of:\n  A --> B --> C\n\n Possible unsafe locking scenario:\n/);
  assert.match(text, /\n  lock\(C\);\n {31}lock\(B\);\n {31}lock\(C\);\n  lock\(A\);\n/);
  assert.match(text, /-> #2 \(C\)\{\+\.\+\.\}-\{3:3\}:\n {7}mutex_lock\n {7}bc\n\n-> #1 \(B\)\{\+\.\+\.\}-\{3:3\}:\n {7}mutex_lock\n {7}ab\n\n-> #0 \(A\)/);
});

function* readThenLock(k: Kernel, S: RwSemaphore, M: Mutex): KGen {
  yield* k.fn('handle_pqap', (function* (): KGen {
    yield k.down_read(S);
    yield k.mutex_lock(M);
    yield k.mutex_unlock(M);
    yield k.up_read(S);
  })());
}

test('rwsem inversion: down_read(S) then lock(M) vs lock(M) then down_write(S) is reported', () => {
  const k = new Kernel({ stopOnBug: false });
  const S = k.init_rwsem('&kvm->arch.crypto.pqap_hook_rwsem');
  const M = k.mutex_init('&matrix_dev->lock');
  k.spawn('qemu', readThenLock(k, S, M));
  k.spawn('set_kvm', (function* (): KGen {
    yield* k.fn('vfio_ap_mdev_set_kvm', (function* (): KGen {
      yield k.mutex_lock(M);
      yield k.down_write(S);
      yield k.up_write(S);
      yield k.mutex_unlock(M);
    })());
  })());
  k.run();
  assert.equal(k.bugs.length, 1);
  const text = k.bugs[0]!.text;
  assert.match(text, /set_kvm\/101 is trying to acquire lock:\n\w+ \(&kvm->arch\.crypto\.pqap_hook_rwsem\)\{\+\+\+\+\}-\{3:3\}, at: vfio_ap_mdev_set_kvm/);
  // CPU0 holds M, CPU1 read-locks S then takes M; CPU0 then write-locks S.
  assert.match(text, /\n  lock\(&matrix_dev->lock\);\n {31}lock\(&kvm->arch\.crypto\.pqap_hook_rwsem\);\n {31}lock\(&matrix_dev->lock\);\n  lock\(&kvm->arch\.crypto\.pqap_hook_rwsem\);\n/);
});

test('the rwsem pattern with trylock(M) where M is taken second is not reported, in any schedule', () => {
  // The seed-003 fix: the path that would close the cycle uses trylock, which adds
  // no dependency into M, so S -> M never appears; trylock may fail instead.
  const ld = new Lockdep();
  for (let seed = 0; seed < 300; seed++) {
    const k = new Kernel({ lockdep: ld, strategy: new RandomStrategy(seed) });
    const S = k.init_rwsem('S');
    const M = k.mutex_init('M');
    k.spawn('t1', (function* (): KGen {
      yield k.down_read(S);
      if (yield k.mutex_trylock(M)) yield k.mutex_unlock(M);
      yield k.up_read(S);
    })());
    k.spawn('t2', (function* (): KGen {
      yield k.mutex_lock(M);
      yield k.down_write(S);
      yield k.up_write(S);
      yield k.mutex_unlock(M);
    })());
    assert.equal(k.run(), 'done', `seed ${seed}`);
    assert.deepEqual(k.bugs, []);
  }
  assert.deepEqual(ld.reports, []);
  assert.deepEqual(ld.dependencies(), [['M', 'S', ['EN']]]);
});

test('trylock(M) in the path that takes M first does not help: M -> S is still a dependency and a real deadlock', () => {
  const ld = new Lockdep();
  const statuses = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    const k = new Kernel({ lockdep: ld, strategy: new RandomStrategy(seed), stopOnBug: false });
    const S = k.init_rwsem('S');
    const M = k.mutex_init('M');
    k.spawn('t1', readThenLock(k, S, M));
    k.spawn('t2', (function* (): KGen {
      if (yield k.mutex_trylock(M)) {
        yield k.down_write(S);
        yield k.up_write(S);
        yield k.mutex_unlock(M);
      }
    })());
    statuses.add(k.run());
  }
  assert.equal(ld.reports.length, 1);
  assert.ok(statuses.has('deadlock'), 'some schedule deadlocks');
});

test('down_read is a non-recursive reader: lock(M)+down_read(S) against down_read(S)+lock(M) is reported', () => {
  const ld = new Lockdep();
  const k = new Kernel({ lockdep: ld, stopOnBug: false });
  const S = k.init_rwsem('S');
  const M = k.mutex_init('M');
  k.spawn('t1', readThenLock(k, S, M)); // S -(SN)-> M
  k.spawn('t2', (function* (): KGen {
    yield k.mutex_lock(M);
    yield k.down_read(S); // M -(EN)-> S: S is a non-recursive reader -> strong cycle
    yield k.up_read(S);
    yield k.mutex_unlock(M);
  })());
  k.run();
  // down_read is a non-recursive read lock: a queued writer makes this a real deadlock.
  assert.equal(k.bugs.length, 1);
  assert.match(k.bugs[0]!.text, /\n  lock\(M\);\n {31}lock\(S\);\n {31}lock\(M\);\n  rlock\(S\);\n/);
});

test('recursive locking of the same class is reported', () => {
  const k = new Kernel({ stopOnBug: false });
  const a = k.mutex_init('&kvm->lock');
  const b = k.mutex_init('&kvm->lock');
  k.spawn('x', (function* (): KGen {
    yield k.mutex_lock(a);
    yield k.mutex_lock(b);
    yield k.mutex_unlock(b);
    yield k.mutex_unlock(a);
  })());
  k.run();
  assert.equal(k.bugs.length, 1);
  const lines = k.bugs[0]!.text.split('\n');
  assert.equal(lines[1], 'WARNING: possible recursive locking detected');
  assert.equal(lines[0], '============================================');
  assert.ok(lines.includes(' May be due to missing lock nesting notation'));
});

test('lockdep_assert_held passes when held and reports otherwise', () => {
  const k = new Kernel({ stopOnBug: false });
  const m = k.mutex_init('&kvm->lock');
  const s = k.init_rwsem('&sem');
  k.spawn('x', (function* (): KGen {
    yield* k.fn('kvm_arch_crypto_set_masks', (function* (): KGen {
      yield k.mutex_lock(m);
      k.lockdep_assert_held(m);
      yield k.mutex_unlock(m);
      k.lockdep_assert_held(m);
      yield k.down_read(s);
      k.lockdep_assert_held(s, 'read');
      k.lockdep_assert_held(s, 'write');
      yield k.up_read(s);
    })());
  })());
  k.run();
  assert.deepEqual(k.bugs.map((b) => b.title), [
    'lockdep_assert_held(&kvm->lock) failed in kvm_arch_crypto_set_masks',
    'lockdep_assert_held_write(&sem) failed in kvm_arch_crypto_set_masks',
  ]);
});

test('the chain cache validates each distinct held-lock stack once', () => {
  const ld = new Lockdep();
  for (let i = 0; i < 50; i++) {
    const k = new Kernel({ lockdep: ld });
    const A = k.mutex_init('A');
    const B = k.mutex_init('B');
    k.spawn('t', path(k, 'ab', A, B));
    k.run();
  }
  const s = ld.stats();
  assert.equal(s.validations, 2); // [A] and [A,B]
  assert.equal(s.chains, 2);
  assert.equal(s.chainLookups, 100);
  assert.equal(s.dependencies, 1);
});

test('lockdep off records no dependencies and reports no inversions', () => {
  const k = new Kernel({ lockdep: false, stopOnBug: false });
  abba(k);
  k.run();
  assert.deepEqual(k.bugs, []);
  assert.deepEqual(k.lockdep.dependencies(), []);
});

test('a novalidate class (like &dev->mutex) adds no dependencies and hides no inversion behind it', () => {
  const k = new Kernel({ stopOnBug: false });
  const dev1 = k.mutex_init('&dev->mutex');
  const dev2 = k.mutex_init('&dev->mutex');
  k.lockdep_set_novalidate_class(dev1);
  const A = k.mutex_init('A');
  const B = k.mutex_init('B');
  k.spawn('t1', (function* (): KGen {
    yield k.mutex_lock(dev1);
    yield k.mutex_lock(dev2); // same class nested: not "recursive locking"
    yield k.mutex_lock(A);
    yield k.mutex_lock(B);
    yield k.mutex_unlock(B);
    yield k.mutex_unlock(A);
    yield k.mutex_unlock(dev2);
    yield k.mutex_unlock(dev1);
  })());
  k.spawn('t2', (function* (): KGen {
    yield k.mutex_lock(B);
    yield k.mutex_lock(dev1);
    yield k.mutex_lock(A); // B -> A closes a real cycle even with dev1 held in between
    yield k.mutex_unlock(A);
    yield k.mutex_unlock(dev1);
    yield k.mutex_unlock(B);
  })());
  k.run();
  assert.deepEqual(k.lockdep.dependencies(), [['A', 'B', ['EN']], ['B', 'A', ['EN']]]);
  assert.equal(k.bugs.length, 1);
  assert.match(k.bugs[0]!.text, /possible circular locking dependency/);
});
