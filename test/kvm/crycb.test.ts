// CRYCB: format from facilities, set/clear masks under kvm->lock with every vCPU blocked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RandomStrategy, type KGen } from '../../src/kernel/index.js';
import { maskFromIds, maskIds, newMask, formatMask } from '../../src/hw/index.js';
import {
  CRYCB_FORMAT_MASK,
  kvm_arch_crypto_clear_masks,
  kvm_arch_crypto_set_masks,
  kvm_s390_crycb_format,
  kvm_s390_crycb_masks,
  kvm_s390_sie_enter,
  kvm_s390_sie_exit,
  type Kvm,
} from '../../src/kvm/index.js';
import { call, makeVm, makeWorld } from './helpers.js';

function* setMasksLocked(vm: Kvm, apm: number[], aqm: number[], adm: number[]): KGen<void> {
  const k = vm.host.k;
  yield k.mutex_lock(vm.lock);
  yield* kvm_arch_crypto_set_masks(vm, maskFromIds(apm), maskFromIds(aqm), maskFromIds(adm));
  yield k.mutex_unlock(vm.lock);
}

test('CRYCB format: 2 with MSAX3 + APXA, 1 with MSAX3 only, 0 without MSAX3 for the guest', () => {
  const w2 = makeWorld();
  const f2 = makeVm(w2);
  assert.equal(kvm_s390_crycb_format(f2), 2);
  assert.equal(f2.arch.crypto.crycbd & CRYCB_FORMAT_MASK, 0b11);
  assert.equal(f2.vcpus[0]!.sie_block.crycbd, f2.arch.crypto.crycbd);
  assert.ok(f2.arch.crypto.crycbd !== 0);
  const w1 = makeWorld({ profile: 'minimal', edit: (p) => void (p.facilities.apxa = false) });
  assert.equal(kvm_s390_crycb_format(makeVm(w1)), 1);
  assert.equal(makeVm(w1).arch.crypto.crycbd & CRYCB_FORMAT_MASK, 0b01);
  const f0 = makeVm(w2, { cpu: { msa3: false } });
  assert.equal(kvm_s390_crycb_format(f0), 0);
  assert.equal(f0.arch.crypto.crycbd & CRYCB_FORMAT_MASK, 0);
});

test('set_masks writes APCB1 (256 bits) for format 2; clear_masks zeroes both APCBs', () => {
  const w = makeWorld();
  const vm = makeVm(w, { vcpus: 3 });
  call(w.k, setMasksLocked(vm, [5, 6, 200], [4, 0x47, 0xab], [4, 0xab]));
  const m = kvm_s390_crycb_masks(vm);
  assert.deepEqual(maskIds(m.apm), [5, 6, 200]);
  assert.deepEqual(maskIds(m.aqm), [4, 0x47, 0xab]);
  assert.deepEqual(maskIds(m.adm), [4, 0xab]);
  const b = vm.arch.crypto.crycb.bytes;
  assert.equal(b[0x80], 0b00000110); // APCB1 APM: ids 5, 6
  assert.deepEqual([...b.subarray(0, 0x20)], new Array(0x20).fill(0)); // APCB0 untouched
  assert.equal(vm.arch.crypto.mask_updates, 1);
  assert.equal(vm.arch.crypto.vsie_restarts, 1);
  assert.ok(vm.vcpus.every((v) => v.vsie_restart_pending === 1 && !v.sie_block.blocked));
  call(w.k, (function* (): KGen {
    yield w.k.mutex_lock(vm.lock);
    yield* kvm_arch_crypto_clear_masks(vm);
    yield w.k.mutex_unlock(vm.lock);
  })());
  assert.ok(b.every((x) => x === 0));
  assert.equal(formatMask(kvm_s390_crycb_masks(vm).apm), formatMask(newMask()));
  assert.equal(vm.arch.crypto.vsie_restarts, 2);
  assert.deepEqual(w.k.bugs, []);
});

test('format 0/1 use APCB0: 64 adapters, 16 domains; bits beyond are dropped', () => {
  const w = makeWorld();
  const vm = makeVm(w, { cpu: { msa3: false } });
  call(w.k, setMasksLocked(vm, [0, 5, 63, 64, 200], [1, 15, 16, 0x47], [0, 15, 16]));
  const m = kvm_s390_crycb_masks(vm);
  assert.deepEqual(maskIds(m.apm), [0, 5, 63]);
  assert.deepEqual(maskIds(m.aqm), [1, 15]);
  assert.deepEqual(maskIds(m.adm), [0, 15]);
  const b = vm.arch.crypto.crycb.bytes;
  // APCB0: APM 8 bytes, AQM 2 of its 8 bytes, ADM 2 of 8; APCB1 untouched.
  assert.deepEqual([...b.subarray(0, 8)], [0x84, 0, 0, 0, 0, 0, 0, 0x01]);
  assert.deepEqual([...b.subarray(8, 16)], [0x40, 0x01, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...b.subarray(16, 24)], [0x80, 0x01, 0, 0, 0, 0, 0, 0]);
  assert.ok(b.subarray(0x80).every((x) => x === 0));
  assert.deepEqual(w.k.bugs, []);
});

test('set_masks without kvm->lock is a lockdep_assert_held report', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const vm = makeVm(w);
  call(w.k, kvm_arch_crypto_set_masks(vm, maskFromIds([5]), maskFromIds([4]), newMask()), 'vfio_ap');
  assert.deepEqual(w.k.bugs.map((b) => b.title), ['lockdep_assert_held(&kvm->lock) failed in kvm_arch_crypto_set_masks']);
  assert.match(w.k.bugs[0]!.text, /vfio_ap\/\d+ does not hold it/);
  // The write itself still happens (the kernel only warns).
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(vm).apm), [5]);
  const w2 = makeWorld({ kernel: { stopOnBug: false } });
  const vm2 = makeVm(w2);
  call(w2.k, kvm_arch_crypto_clear_masks(vm2));
  assert.deepEqual(w2.k.bugs.map((b) => b.title), ['lockdep_assert_held(&kvm->lock) failed in kvm_arch_crypto_clear_masks']);
});

test('no vCPU executes guest instructions while the CRYCB changes (random interleavings)', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const w = makeWorld({ kernel: { strategy: new RandomStrategy(seed) } });
    const { k } = w;
    const vm = makeVm(w, { vcpus: 3 });
    let windows = 0;
    for (const vcpu of vm.vcpus) {
      k.spawn(`vcpu${vcpu.vcpu_id}`, (function* (): KGen<void> {
        for (let i = 0; i < 4; i++) {
          yield* kvm_s390_sie_enter(vcpu);
          // Inside SIE: the guest's view of the CRYCB must be stable across the whole window.
          const before = formatMask(kvm_s390_crycb_masks(vm).apm);
          yield k.sched_point('guest code');
          yield k.sched_point('more guest code');
          assert.equal(formatMask(kvm_s390_crycb_masks(vm).apm), before, `seed ${seed}: CRYCB changed under vCPU ${vcpu.vcpu_id}`);
          windows++;
          yield* kvm_s390_sie_exit(vcpu);
        }
      })());
    }
    k.spawn('vfio_ap', (function* (): KGen<void> {
      for (const ids of [[1], [1, 2], [], [3]]) {
        if (ids.length) yield* setMasksLocked(vm, ids, [0], [0]);
        else {
          yield k.mutex_lock(vm.lock);
          yield* kvm_arch_crypto_clear_masks(vm);
          yield k.mutex_unlock(vm.lock);
        }
      }
    })());
    k.run();
    assert.deepEqual(k.bugs, [], `seed ${seed}`);
    assert.equal(windows, 12);
    assert.deepEqual(maskIds(kvm_s390_crycb_masks(vm).apm), [3]);
    assert.equal(vm.arch.crypto.mask_updates, 4);
  }
});
