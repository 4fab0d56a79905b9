import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, type KGen } from '../../src/kernel/index.js';

class MatrixMdev {
  kvm: object | null = null;
  apm = 0;
  describe(): string {
    return `apm=${this.apm}`;
  }
}

test('use after free is detected on field access with allocation and free sites', () => {
  const k = new Kernel({ stopOnBug: false });
  let mdev!: MatrixMdev;
  k.spawn('create', (function* (): KGen {
    yield* k.fn('vfio_ap_mdev_probe', (function* (): KGen {
      mdev = k.kzalloc('matrix_mdev', new MatrixMdev());
      yield k.sched_point();
    })());
  })());
  k.run();
  k.spawn('remove', (function* (): KGen {
    yield* k.fn('vfio_ap_mdev_remove', (function* (): KGen {
      yield k.kfree(mdev);
    })());
  })());
  k.run();
  k.spawn('pqap', (function* (): KGen {
    yield* k.fn('handle_pqap', (function* (): KGen {
      yield k.sched_point();
      void mdev.apm; // use after free
    })());
  })());
  k.run();
  assert.equal(k.bugs.length, 1);
  const b = k.bugs[0]!;
  assert.equal(b.kind, 'use-after-free');
  assert.equal(b.title, 'use-after-free of matrix_mdev (apm) in handle_pqap');
  const lines = b.text.split('\n');
  assert.equal(lines[1], 'BUG: KASAN: slab-use-after-free in handle_pqap');
  assert.match(lines[2]!, /^Read of matrix_mdev\.apm at addr ffff\w+ by task pqap\/102$/);
  assert.ok(lines.includes('Allocated by task 100 (create):'));
  assert.ok(lines.includes(' vfio_ap_mdev_probe'));
  assert.ok(lines.includes('Freed by task 101 (remove):'));
  assert.ok(lines.includes(' vfio_ap_mdev_remove'));
  // The task that touched freed memory was killed by the oops.
  assert.equal(k.allTasks[2]!.state, 2);
});

test('method calls and writes on a freed object are also reported', () => {
  const k = new Kernel({ stopOnBug: false });
  const o = k.kzalloc('matrix_mdev', new MatrixMdev());
  k.kfree(o);
  k.spawn('m', (function* (): KGen {
    o.describe();
  })());
  k.spawn('w', (function* (): KGen {
    o.kvm = {};
  })());
  k.run();
  assert.deepEqual(k.bugs.map((b) => b.title), ['use-after-free of matrix_mdev (describe) in m', 'use-after-free of matrix_mdev (kvm) in w']);
  assert.match(k.bugs[1]!.text, /Write of matrix_mdev\.kvm/);
});

test('double free is detected', () => {
  const k = new Kernel({ stopOnBug: false });
  const o = k.kzalloc('vfio_ap_queue', { apqn: 0x0104 });
  k.spawn('x', (function* (): KGen {
    yield* k.fn('vfio_ap_mdev_remove_queue', (function* (): KGen {
      yield k.kfree(o);
      yield k.kfree(o);
    })());
  })());
  k.run();
  assert.deepEqual(k.bugs.map((b) => b.kind), ['double-free']);
  assert.match(k.bugs[0]!.text, /BUG: KASAN: double-free in vfio_ap_mdev_remove_queue/);
});

test('kfree(null) is a no-op and check_alive reports a freed pointer', () => {
  const k = new Kernel({ stopOnBug: false });
  const o = k.kzalloc('kvm', {});
  k.spawn('x', (function* (): KGen {
    yield k.kfree(null);
    k.check_alive(o);
    yield k.kfree(o);
    k.check_alive(o, 'kvm_get_kvm');
  })());
  k.run();
  assert.deepEqual(k.bugs.map((b) => b.title), ['use-after-free of kvm (kvm_get_kvm) in x']);
});

test('leaks are reported by kmemleak_scan; freed and not-leak objects are not', () => {
  const k = new Kernel({ stopOnBug: false });
  k.spawn('x', (function* (): KGen {
    yield* k.fn('vfio_ap_mdev_probe', (function* (): KGen {
      k.kzalloc('matrix_mdev', {});
      const freed = k.kzalloc('tmp', {});
      yield k.kfree(freed);
      k.kmemleak_not_leak(k.kzalloc('matrix_dev', {}));
    })());
  })());
  k.run();
  assert.equal(k.kmemleak_scan(), 1);
  const b = k.bugs[0]!;
  assert.equal(b.kind, 'leak');
  assert.equal(b.title, '1 leaked object(s): matrix_mdev');
  assert.match(b.text, /^kmemleak: 1 new suspected memory leaks/);
  assert.match(b.text, /comm "x", pid 100/);
  assert.match(b.text, /\n    vfio_ap_mdev_probe/);
});

test('the registry forgets freed objects (garbage once unreferenced) but a stale pointer still gets its report', () => {
  const k = new Kernel({ stopOnBug: false });
  const objs: MatrixMdev[] = [];
  k.spawn('churn', (function* (): KGen {
    for (let i = 0; i < 100; i++) {
      const o = k.kzalloc('matrix_mdev', new MatrixMdev());
      objs.push(o);
      yield k.kfree(o);
    }
  })());
  k.run();
  assert.equal(k.lifetime.records, 0);
  assert.equal(k.lifetime.liveObjects().length, 0);
  // The record travels with the object: use after free and double free are still told apart.
  const stale = objs[42]!;
  assert.equal(k.lifetime.metaOf(stale)?.type, 'matrix_mdev');
  assert.equal(k.lifetime.metaOf(stale)?.free?.task, 'churn');
  k.spawn('user', (function* (): KGen {
    yield k.sched_point();
    void stale.apm;
  })());
  k.spawn('freer', (function* (): KGen {
    yield k.kfree(objs[7]!);
  })());
  k.run();
  assert.deepEqual(
    k.bugs.map((b) => [b.kind, b.title]),
    [
      ['use-after-free', 'use-after-free of matrix_mdev (apm) in user'],
      ['double-free', 'double-free of matrix_mdev in freer'],
    ],
  );
  assert.match(k.bugs[0]!.text, /Freed by task \d+ \(churn\):/);
});
