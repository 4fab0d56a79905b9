// GISA: guest ISC registration reference counts; guest memory: NIB validation and pin balance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type KGen } from '../../src/kernel/index.js';
import {
  gpa_to_hva,
  kvm_is_gpa_in_memslot,
  kvm_pin_guest_page,
  kvm_s390_gisc_register,
  kvm_s390_gisc_unregister,
  kvm_unpin_guest_page,
  kvm_vm_release,
} from '../../src/kvm/index.js';
import { call, makeVm, makeWorld } from './helpers.js';

test('gisc register/unregister: per-ISC counts, alert mask set by the first user and cleared by the last', () => {
  const w = makeWorld({ host: { gibIsc: 5 } });
  const vm = makeVm(w);
  const gi = vm.arch.gisa_int;
  assert.ok(gi.origin > 0 && gi.origin % 16 === 0 && gi.origin < 2 ** 31);
  assert.equal(kvm_s390_gisc_register(vm, 3), 5);
  assert.equal(kvm_s390_gisc_register(vm, 3), 5);
  assert.equal(kvm_s390_gisc_register(vm, 0), 5);
  assert.equal(gi.alert.mask, 0x90);
  assert.deepEqual(gi.alert.ref_count, [1, 0, 0, 2, 0, 0, 0, 0]);
  assert.equal(kvm_s390_gisc_unregister(vm, 3), 0);
  assert.equal(gi.alert.mask, 0x90);
  assert.equal(kvm_s390_gisc_unregister(vm, 3), 0);
  assert.equal(kvm_s390_gisc_unregister(vm, 0), 0);
  assert.equal(gi.alert.mask, 0);
  assert.equal(kvm_s390_gisc_register(vm, 8), -34); // -ERANGE
  assert.equal(kvm_s390_gisc_unregister(vm, -1), -34);
  const nogisa = makeVm(w, { gisa: false });
  assert.equal(kvm_s390_gisc_register(nogisa, 3), -19); // -ENODEV
  assert.equal(nogisa.vcpus[0]!.sie_block.eca_aiv, false);
  assert.equal(vm.vcpus[0]!.sie_block.eca_aiv, true);
  call(w.k, kvm_vm_release(vm));
  call(w.k, kvm_vm_release(nogisa));
  assert.deepEqual(w.k.bugs, []);
});

test('unbalanced unregister and registrations left at VM destruction are reported', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const vm = makeVm(w);
  call(w.k, (function* (): KGen {
    yield* w.k.fn('vfio_ap_free_aqic_resources', (function* (): KGen {
      kvm_s390_gisc_unregister(vm, 2);
      yield w.k.sched_point();
    })());
  })());
  assert.deepEqual(w.k.bugs.map((b) => b.title), ['kvm_s390_gisc_unregister(2) without registration in vfio_ap_free_aqic_resources']);
  kvm_s390_gisc_register(vm, 6);
  call(w.k, kvm_vm_release(vm), 'qemu');
  assert.equal(w.k.bugs.length, 2);
  assert.match(w.k.bugs[1]!.title, /^unexpected non zero alert.mask 0x02 in kvm_arch_destroy_vm/);
});

test('memslots: NIB validation, pin/unpin counts, host address of the NIB', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const vm = makeVm(w, { memory: [{ base: 0, size: 0x10_0000 }, { base: 0x4000_0000, size: 0x2000 }] });
  assert.ok(kvm_is_gpa_in_memslot(vm, 0));
  assert.ok(kvm_is_gpa_in_memslot(vm, 0xf_ffff));
  assert.ok(!kvm_is_gpa_in_memslot(vm, 0x10_0000));
  assert.ok(kvm_is_gpa_in_memslot(vm, 0x4000_1fff));
  assert.ok(!kvm_is_gpa_in_memslot(vm, -1));
  const h1 = kvm_pin_guest_page(vm, 0x1234);
  assert.equal(h1, gpa_to_hva(vm, 0x1234));
  assert.equal(kvm_pin_guest_page(vm, 0x1ff0), h1 + 0xdbc);
  assert.equal(kvm_pin_guest_page(vm, 0x5000_0000), -14); // -EFAULT
  assert.equal(vm.memslots.pinnedPages, 2);
  assert.equal(vm.memslots.pinned.get(1), 2);
  assert.equal(kvm_unpin_guest_page(vm, 0x1000), 0);
  assert.equal(kvm_unpin_guest_page(vm, 0x1000), 0);
  assert.equal(vm.memslots.pinnedPages, 0);
  assert.equal(vm.memslots.pins, vm.memslots.unpins);
  assert.equal(w.k.bugs.length, 0);
  assert.equal(kvm_unpin_guest_page(vm, 0x1000), -22);
  assert.equal(w.k.bugs.length, 1);
  kvm_pin_guest_page(vm, 0x4000_0000);
  call(w.k, kvm_vm_release(vm));
  assert.match(w.k.bugs[1]!.title, /^1 guest page\(s\) of vm0 still pinned at VM destruction/);
  assert.throws(() => makeVm(w, { memory: [{ base: 1, size: 0x1000 }] }), /page-aligned/);
});
