// struct kvm lifetime: users_count, destruction in the putting task, the kvm-vfio release path
// (set_kvm(NULL) callbacks), kvm_get_kvm_safe, use-after-free reporting, and seed 001.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RandomStrategy, type KGen } from '../../src/kernel/index.js';
import {
  kvm_get_kvm,
  kvm_get_kvm_safe,
  kvm_put_kvm,
  kvm_vm_release,
  kvm_vfio_device,
  kvm_vfio_file_add,
  kvm_vfio_file_del,
  type Kvm,
} from '../../src/kvm/index.js';
import { call, makeVm, makeWorld, run } from './helpers.js';

/** A stand-in for a VFIO group: remembers the kvm pointer KVM hands it, as vfio_file_set_kvm does. */
class GroupDouble {
  kvm: Kvm | null = null;
  readonly calls: Array<{ to: string; task: string; ops: string[] }> = [];
}

function setKvmOf(w: ReturnType<typeof makeWorld>, g: GroupDouble, extra?: (to: Kvm | null) => KGen<void>) {
  return function* (to: Kvm | null): KGen<void> {
    g.calls.push({ to: to ? to.name : 'NULL', task: w.k.current!.name, ops: w.k.current!.ops.slice() });
    if (extra) yield* extra(to);
    g.kvm = to;
  };
}

test('VM fd close with another holder: the VM survives until that holder puts; destruction runs in its task with set_kvm(NULL)', () => {
  const w = makeWorld();
  const { k } = w;
  const vm = makeVm(w, { name: 'guest1' });
  const g = new GroupDouble();
  let safeDuringDestroy: boolean | undefined;
  const setKvm = setKvmOf(w, g, function* (to) {
    // While the VM is being destroyed the count is 0: a late open cannot take a reference.
    if (to === null) safeDuringDestroy = yield* kvm_get_kvm_safe(g.kvm!);
  });
  assert.equal(vm.users_count.read(), 1);
  assert.equal(call(k, kvm_vfio_file_add(vm, g, setKvm), 'qemu'), 0);
  assert.equal(g.kvm, vm);
  assert.equal(kvm_vfio_device(vm)?.ops.name, 'kvm-vfio');
  // VFIO's first open takes its own reference with the safe getter.
  assert.equal(call(k, kvm_get_kvm_safe(g.kvm!), 'vfio-open'), true);
  assert.equal(vm.users_count.read(), 2);
  // QEMU closes the VM fd: not the last reference.
  assert.equal(call(k, kvm_vm_release(vm), 'qemu-exit'), false);
  assert.equal(vm.users_count.read(), 1);
  assert.ok(k.lifetime.isLive(vm));
  assert.equal(w.host.vm_list.length, 1);
  // The device's close drops the last reference: destruction in *that* task.
  assert.equal(call(k, kvm_put_kvm(vm), 'vfio-close'), true);
  assert.ok(!k.lifetime.isLive(vm));
  assert.equal(w.host.vm_list.length, 0);
  assert.deepEqual(g.calls.map((c) => [c.to, c.task]), [['guest1', 'qemu'], ['NULL', 'vfio-close']]);
  const ops = g.calls[1]!.ops;
  for (const f of ['kvm_put_kvm', 'kvm_destroy_vm', 'kvm_destroy_devices', 'kvm-vfio destroy', 'vfio_file_set_kvm'])
    assert.ok(ops.includes(f), `${f} in ${ops.join(' > ')}`);
  assert.ok(ops.indexOf('kvm_destroy_vm') < ops.indexOf('vfio_file_set_kvm'));
  assert.equal(safeDuringDestroy, false);
  assert.equal(g.kvm, null);
  assert.deepEqual(k.bugs, []);
  assert.equal(k.kmemleak_scan(), 0);
});

test('touching the freed kvm is a use-after-free with allocation and free sites', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const { k } = w;
  const vm = makeVm(w);
  call(k, kvm_vm_release(vm), 'qemu');
  assert.ok(!k.lifetime.isLive(vm));
  // A stale pointer: kvm_get_kvm_safe reads kvm->users_count, which is freed memory now.
  const t = run(k, 'stale', kvm_get_kvm_safe(vm));
  assert.equal(t.done, true);
  assert.deepEqual(k.bugs.map((b) => b.kind), ['use-after-free']);
  const b = k.bugs[0]!;
  assert.match(b.title, /^use-after-free of kvm \(users_count\)/);
  assert.match(b.text, /Freed by task \d+ \(qemu\):/);
  assert.match(b.text, / kvm_arch_free_vm\n kvm_destroy_vm\n/);
  // Embedded structures are freed with it.
  run(k, 'stale2', (function* (): KGen {
    yield k.sched_point();
    void vm.arch;
  })());
  assert.equal(k.bugs.length, 2);
  assert.match(k.bugs[1]!.title, /use-after-free of kvm \(arch\)/);
});

test('kvm_get_kvm on a VM whose count reached zero is refcount_t: addition on 0', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const vm = makeVm(w);
  let seen = false;
  const g = new GroupDouble();
  call(w.k, kvm_vfio_file_add(vm, g, setKvmOf(w, g, function* (to) {
    // A buggy driver that takes a plain reference from a callback during destruction.
    if (to === null && !seen) {
      seen = true;
      yield* kvm_get_kvm(g.kvm!);
    }
  })));
  call(w.k, kvm_vm_release(vm));
  assert.deepEqual(w.k.bugs.map((b) => b.kind), ['refcount']);
  assert.match(w.k.bugs[0]!.title, /addition on 0/);
});

test('kvm_vfio_file_add / file_del: -EEXIST, set_kvm(NULL) on delete, -ENOENT afterwards', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  const name = vm.name;
  const g = new GroupDouble();
  const setKvm = setKvmOf(w, g);
  assert.equal(call(w.k, kvm_vfio_file_add(vm, g, setKvm)), 0);
  assert.equal(call(w.k, kvm_vfio_file_add(vm, g, setKvm)), -17);
  assert.equal(call(w.k, kvm_vfio_file_del(vm, g)), 0);
  assert.equal(g.kvm, null);
  assert.equal(call(w.k, kvm_vfio_file_del(vm, g)), -2);
  call(w.k, kvm_vm_release(vm));
  assert.deepEqual(g.calls.map((c) => c.to), [name, 'NULL']);
  assert.deepEqual(w.k.bugs, []);
});

/**
 * Seed 001: the 2022 VFIO close path dropped the driver's reference while holding group_lock; if
 * that was the last reference, destruction called set_kvm(NULL), which takes group_lock again.
 */
function seed001(fixed: boolean) {
  const w = makeWorld({ kernel: { stopOnBug: true } });
  const { k } = w;
  const vm = makeVm(w);
  const group_lock = k.mutex_init('&group->group_lock');
  const g = new GroupDouble();
  const setKvm = setKvmOf(w, g, function* () {
    yield k.mutex_lock(group_lock);
    yield k.mutex_unlock(group_lock);
  });
  call(k, kvm_vfio_file_add(vm, g, setKvm), 'qemu');
  let vfioRef = false;
  // open: the driver (vfio_ap) takes its reference; with the fix VFIO core takes one too.
  call(k, (function* (): KGen {
    yield k.mutex_lock(group_lock);
    if (fixed) vfioRef = yield* kvm_get_kvm_safe(g.kvm!);
    yield* kvm_get_kvm(g.kvm!);
    yield k.mutex_unlock(group_lock);
  })(), 'qemu-open');
  call(k, kvm_vm_release(vm), 'qemu-vm-close');
  run(k, 'qemu-dev-close', k.fn('vfio_device_fops_release', (function* (): KGen {
    yield k.mutex_lock(group_lock);
    yield* k.fn('vfio_ap_mdev_close_device', kvm_put_kvm(vm));
    yield k.mutex_unlock(group_lock);
    if (vfioRef) yield* kvm_put_kvm(vm);
  })()));
  return { k, vm };
}

test('seed 001: the last kvm put under the VFIO group lock deadlocks in set_kvm(NULL)', () => {
  const { k } = seed001(false);
  assert.ok(k.bugs.length >= 1);
  assert.ok(k.bugs.some((b) => b.kind === 'lockdep' && /possible recursive locking detected/.test(b.text)), k.bugs.map((b) => b.title).join('\n'));
  assert.match(k.bugs[0]!.text, /&group->group_lock/);
});

test('seed 001 fixed: VFIO core holds a safe reference and drops it after the group lock', () => {
  const { k, vm } = seed001(true);
  assert.deepEqual(k.bugs, []);
  assert.ok(!k.lifetime.isLive(vm));
});

test('concurrent last puts: exactly one task destroys the VM, under any interleaving', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const w = makeWorld({ kernel: { strategy: new RandomStrategy(seed) } });
    const { k } = w;
    const vm = makeVm(w);
    const g = new GroupDouble();
    call(k, kvm_vfio_file_add(vm, g, setKvmOf(w, g)));
    call(k, kvm_get_kvm(vm));
    call(k, kvm_get_kvm(vm));
    k.spawn('a', kvm_put_kvm(vm));
    k.spawn('b', kvm_put_kvm(vm));
    k.spawn('qemu', kvm_vm_release(vm));
    k.spawn('late-open', (function* (): KGen<void> {
      yield k.sched_point();
      // VFIO's open path, using the group's pointer: valid until set_kvm(NULL) cleared it.
      if (g.kvm && (yield* kvm_get_kvm_safe(g.kvm))) yield* kvm_put_kvm(g.kvm!);
    })());
    k.run();
    assert.deepEqual(k.bugs, [], `seed ${seed}`);
    assert.ok(!k.lifetime.isLive(vm));
    assert.equal(g.calls.filter((c) => c.to === 'NULL').length, 1);
  }
});
