// ap-architecture.md 7.3 scenarios 13, 14, 21-28, 34 — the parts that need only KVM and the machine,
// with a minimal vfio_ap/VFIO double from this directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RandomStrategy, type KGen } from '../../src/kernel/index.js';
import { AP_RESPONSE, PQAP_FC, apqn, decodeHwinfo, encodeAqicGr1, encodePqapGr0, maskIds } from '../../src/hw/index.js';
import {
  guest_aqic,
  guest_pqap,
  guest_nqap,
  guest_tapq,
  kvm_s390_crycb_masks,
  kvm_vfio_file_del,
  kvm_vm_release,
  type Kvm,
} from '../../src/kvm/index.js';
import { call, makeVm, makeWorld, type World } from './helpers.js';
import { MatrixDevDouble, MdevDouble } from './vfio-ap-double.js';

const Q = apqn(5, 4);
const NIB = 0x2_0000;

function attached(w: World, vm: Kvm, apids = [5, 6], apqis = [4, 0xab]) {
  const md = new MatrixDevDouble(w);
  const mdev = new MdevDouble(md, apids, apqis);
  assert.equal(call(w.k, mdev.associate(vm), 'qemu'), 0);
  assert.equal(call(w.k, mdev.open(), 'qemu'), 0);
  return { md, mdev };
}

test('#13 open without KVM → -EINVAL; with a VM the CRYCB gets the shadow (vCPUs blocked, kvm->lock held)', () => {
  const w = makeWorld();
  const md = new MatrixDevDouble(w);
  const lonely = new MdevDouble(md, [5], [4]);
  assert.equal(call(w.k, lonely.open()), -22);
  const vm = makeVm(w, { vcpus: 2 });
  const { mdev } = attached(w, vm);
  assert.equal(mdev.kvm, vm);
  const m = kvm_s390_crycb_masks(vm);
  assert.deepEqual(maskIds(m.apm), [5, 6]);
  assert.deepEqual(maskIds(m.aqm), [4, 0xab]);
  assert.equal(vm.arch.crypto.mask_updates, 1);
  assert.ok(vm.vcpus.every((v) => v.vsie_restart_pending === 1 && !v.sie_block.blocked));
  // VM fd + VFIO core + vfio_ap
  assert.equal(vm.users_count.read(), 3);
  assert.equal(call(w.k, guest_tapq(vm.vcpus[0]!, Q)).cc, 0);
  assert.deepEqual(w.k.bugs, []);
});

test('#14 a second mdev opened for the same VM → -EPERM; the first keeps the hook', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  const { md, mdev } = attached(w, vm);
  const second = new MdevDouble(md, [8], [4]);
  call(w.k, second.associate(vm));
  assert.equal(call(w.k, second.open()), -1);
  assert.equal(vm.arch.crypto.pqap_hook, mdev);
  assert.equal(vm.users_count.read(), 3, 'the failed open gave its VFIO reference back');
  const r = call(w.k, guest_aqic(vm.vcpus[0]!, Q, { ir: true, isc: 3 }, NIB));
  assert.equal(r.status?.responseCode, 0);
  assert.deepEqual(w.k.bugs, []);
});

test('#21 emulated AQIC: host AQIC with GIB ISC, guest ISC and GISA origin; RC 00 cc 0; TAPQ shows I=1; interrupts land in the GISA', () => {
  const w = makeWorld({ host: { gibIsc: 5 } });
  const vm = makeVm(w);
  const { mdev } = attached(w, vm);
  const vcpu = vm.vcpus[0]!;
  const r = call(w.k, guest_aqic(vcpu, Q, { ir: true, isc: 3 }, NIB + 0x10));
  assert.equal(r.intercepted, true);
  assert.equal(r.cc, 0);
  assert.equal(r.status?.responseCode, 0);
  const irq = w.m.inspectQueue(Q).irq!;
  assert.equal(irq.isc, 5);
  assert.equal(irq.gisc, 3);
  assert.equal(irq.gisa, vm.arch.gisa_int.origin);
  assert.equal(irq.nib, vm.memslots.slots[0]!.hostBase + NIB + 0x10);
  assert.equal(vm.arch.gisa_int.alert.ref_count[3], 1);
  assert.equal(vm.arch.gisa_int.alert.mask, 0x10);
  assert.equal(vm.memslots.pinnedPages, 1);
  assert.equal(call(w.k, guest_tapq(vcpu, Q)).status?.irqEnabled, true);
  // A reply raises the guest ISC in the GISA; no vCPU in SIE → a GIB alert.
  call(w.k, (function* (): KGen {
    yield* guest_nqap(vcpu, Q, 9n, new Uint8Array(8));
    yield w.k.msleep(1);
  })());
  assert.equal(w.m.processEvents(), 1);
  assert.equal(vm.arch.gisa_int.ipm, 0x10);
  assert.equal(vm.arch.gisa_int.delivered[0]!.psmid, 9n);
  assert.equal(w.host.gib.alerts, 1);
  // Enabling again on the same queue: the machine says OTHERWISE_CHANGED; nothing leaks.
  const again = call(w.k, guest_aqic(vcpu, Q, { ir: true, isc: 3 }, NIB));
  assert.equal(again.status?.responseCode, AP_RESPONSE.OTHERWISE_CHANGED);
  assert.equal(again.cc, 3);
  assert.equal(vm.memslots.pinnedPages, 1);
  assert.equal(vm.arch.gisa_int.alert.ref_count[3], 1);
  // Disable releases pin and registration.
  const off = call(w.k, guest_aqic(vcpu, Q, { ir: false, isc: 0 }, 0));
  assert.equal(off.cc, 0);
  assert.equal(vm.memslots.pinnedPages, 0);
  assert.equal(vm.arch.gisa_int.alert.mask, 0);
  assert.equal(vm.memslots.pins, vm.memslots.unpins);
  call(w.k, mdev.close());
  call(w.k, kvm_vm_release(vm));
  assert.deepEqual(w.k.bugs, []);
});

test('#21 close with interrupts still enabled: the reset frees pin and GISC before the VM goes', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  const { mdev } = attached(w, vm);
  assert.equal(call(w.k, guest_aqic(vm.vcpus[0]!, Q, { ir: true, isc: 2 }, NIB)).cc, 0);
  call(w.k, kvm_vm_release(vm), 'qemu');
  call(w.k, mdev.close(), 'qemu');
  assert.ok(!w.k.lifetime.isLive(vm));
  assert.equal(w.m.inspectQueue(Q).irq, null);
  assert.deepEqual(w.k.bugs, []);
});

test('#22 AQIC with NIB 0 or outside guest memory → RC 06, cc 3; nothing retained', () => {
  const w = makeWorld();
  const vm = makeVm(w, { memory: [{ base: 0, size: 0x10_0000 }] });
  attached(w, vm);
  for (const nib of [0, 0x10_0000, 0x7fff_f000]) {
    const r = call(w.k, guest_aqic(vm.vcpus[0]!, Q, { ir: true, isc: 3 }, nib));
    assert.equal(r.status?.responseCode, AP_RESPONSE.INVALID_ADDRESS, `nib ${nib}`);
    assert.equal(r.cc, 3);
  }
  assert.equal(vm.memslots.pins, 0);
  assert.deepEqual(vm.arch.gisa_int.alert.ref_count, [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(w.m.inspectQueue(Q).irq, null);
  assert.deepEqual(w.k.bugs, []);
});

test('#23 AQIC on an APQN not linked to the mdev, or with no vfio-ap device at all → RC 01, cc 3', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  attached(w, vm);
  const r = call(w.k, guest_aqic(vm.vcpus[0]!, apqn(8, 4), { ir: true, isc: 3 }, NIB));
  assert.equal(r.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(r.cc, 3);
  const bare = makeVm(w);
  const n = call(w.k, guest_aqic(bare.vcpus[0]!, Q, { ir: true, isc: 3 }, NIB));
  assert.equal(n.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(n.cc, 3);
  // ap=on without a device: APIE on, masks zero → every APQN answers RC 01 (spec 6).
  assert.equal(call(w.k, guest_tapq(bare.vcpus[0]!, Q)).status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.deepEqual(w.k.bugs, []);
});

test('#24 AQIC from problem state → privileged operation; bit 41 → specification; APID 64 on format 1 → specification', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  attached(w, vm);
  const vcpu = vm.vcpus[0]!;
  vcpu.psw.problemState = true;
  assert.equal(call(w.k, guest_aqic(vcpu, Q, { ir: true, isc: 3 }, NIB)).pgm, 'privileged-operation');
  vcpu.psw.problemState = false;
  const gr0 = encodePqapGr0({ fc: PQAP_FC.AQIC, apqn: Q, f: true }); // F is bit 41
  assert.equal(call(w.k, guest_pqap(vcpu, gr0, encodeAqicGr1({ ir: true, isc: 3 }), BigInt(NIB))).pgm, 'specification');
  const w1 = makeWorld({ profile: 'minimal', edit: (p) => void (p.facilities.apxa = false) });
  const vm1 = makeVm(w1);
  assert.equal(call(w1.k, guest_aqic(vm1.vcpus[0]!, apqn(64, 0), { ir: true, isc: 3 }, NIB)).pgm, 'specification');
  assert.equal(vm.memslots.pins, 0);
  assert.deepEqual(w.k.bugs, []);
  assert.deepEqual(w1.k.bugs, []);
});

test('#25 reset latency: host ZAPQ, 20 ms TAPQ polls until RC 00 with E=1, I=0; the guest sees RC 02 meanwhile', () => {
  const w = makeWorld({ profile: 'minimal' });
  const vm = makeVm(w);
  const q = apqn(0, 1);
  const { mdev } = attached(w, vm, [0], [1]);
  assert.equal(call(w.k, guest_aqic(vm.vcpus[0]!, q, { ir: true, isc: 3 }, NIB)).cc, 0);
  const guestSaw: number[] = [];
  let polls = 0;
  w.k.spawn('vfio_ap reset', (function* (): KGen<void> {
    assert.equal(mdev.reset_queue(mdev.queues.get(q)!), 0);
    for (;;) {
      yield w.k.msleep(20);
      polls++;
      const t = w.m.tapq(q);
      if (t.status.responseCode !== AP_RESPONSE.RESET_IN_PROGRESS) {
        assert.ok(t.status.queueEmpty && !t.status.irqEnabled);
        return;
      }
    }
  })());
  w.k.spawn('vcpu0', (function* (): KGen<void> {
    for (let i = 0; i < 4; i++) {
      guestSaw.push((yield* guest_tapq(vm.vcpus[0]!, q)).status!.responseCode);
      yield w.k.msleep(25);
    }
  })());
  w.k.run();
  assert.equal(polls, 3);
  assert.deepEqual(guestSaw, [2, 2, 2, 0]);
  assert.equal(vm.memslots.pinnedPages, 0, 'the reset released the NIB pin');
  assert.deepEqual(w.k.bugs, []);
});

test('#26 reset failure (TAPQ RC 01 while verifying): the adapter is filtered from the guest, which then gets RC 01', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  const { mdev } = attached(w, vm);
  const q = mdev.queues.get(Q)!;
  w.m.faults.injectResponse(Q, AP_RESPONSE.Q_NOT_AVAIL, { instructions: ['tapq'] });
  mdev.reset_queue(q);
  const verify = w.m.tapq(Q);
  assert.equal(verify.status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  call(w.k, mdev.unplug_adapter(5), 'filter');
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(vm).apm), [6]);
  const r = call(w.k, guest_tapq(vm.vcpus[0]!, Q));
  assert.equal(r.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(r.cc, 3);
  assert.equal(call(w.k, guest_tapq(vm.vcpus[0]!, apqn(6, 4))).cc, 0);
  assert.equal(vm.arch.crypto.mask_updates, 2);
  assert.deepEqual(w.k.bugs, []);
});

test('#27 mdev remove while in use: REQ clears the CRYCB, QEMU closes, the hook is gone before the mdev is freed (random interleavings)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const w = makeWorld({ kernel: { strategy: new RandomStrategy(seed) } });
    const { k } = w;
    const vm = makeVm(w, { vcpus: 2 });
    const { mdev } = attached(w, vm);
    const mdevObj = k.kzalloc('matrix_mdev', mdev);
    const results: string[] = [];
    for (const vcpu of vm.vcpus) {
      k.spawn(`vcpu${vcpu.vcpu_id}`, (function* (): KGen<void> {
        for (let i = 0; i < 3; i++) {
          const a = yield* guest_aqic(vcpu, Q, { ir: true, isc: 3 }, NIB);
          const t = yield* guest_tapq(vcpu, Q);
          results.push(`${a.status?.responseCode}/${t.status?.responseCode}`);
        }
      })());
    }
    k.spawn('mdevctl remove', k.fn('vfio_ap_mdev_remove', (function* (): KGen<void> {
      yield* mdevObj.request(); // VFIO core: request callback, count 0
      // QEMU's REQ handler unplugs the device: close, and detach its file from the kvm-vfio device
      // (else VM destruction would call set_kvm(NULL) on the freed object).
      yield* mdevObj.close();
      assert.equal(yield* kvm_vfio_file_del(vm, mdevObj), 0);
      yield k.kfree(mdevObj);
    })()));
    k.run();
    assert.deepEqual(k.bugs, [], `seed ${seed}`);
    assert.equal(results.length, 6);
    // Once the CRYCB is cleared the guest only sees RC 01.
    assert.deepEqual(maskIds(kvm_s390_crycb_masks(vm).apm), []);
    assert.equal(vm.arch.crypto.pqap_hook, null);
    assert.equal(vm.memslots.pinnedPages, 0);
    assert.equal(vm.users_count.read(), 1);
    call(k, kvm_vm_release(vm));
    assert.deepEqual(k.bugs, [], `seed ${seed} (destroy)`);
  }
});

test('#28 VM fd closed while the mdev is open: struct kvm survives until close, then dies in the closing task', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const w = makeWorld({ kernel: { strategy: new RandomStrategy(seed) } });
    const { k } = w;
    const vm = makeVm(w);
    const { mdev } = attached(w, vm);
    let destroyedBy = '';
    const wrapped = mdev.set_kvm.bind(mdev);
    mdev.set_kvm = function* (to) {
      if (to === null) destroyedBy = k.current!.name;
      yield* wrapped(to);
    };
    const vcpu0 = k.spawn('vcpu0', (function* (): KGen<void> {
      // The guest runs while QEMU tears the device down (it sees its queue or RC 01).
      const r = yield* guest_tapq(vm.vcpus[0]!, Q);
      assert.ok(r.cc === 0 || r.status?.responseCode === AP_RESPONSE.Q_NOT_AVAIL);
    })());
    k.spawn('qemu-vm-close', (function* (): KGen<void> {
      yield k.join(vcpu0); // QEMU stops its vCPU threads before closing the VM fd
      yield* kvm_vm_release(vm);
    })());
    k.spawn('qemu-dev-close', (function* (): KGen<void> {
      yield k.sched_point();
      yield* mdev.close();
    })());
    k.run();
    assert.deepEqual(k.bugs, [], `seed ${seed}`);
    assert.ok(!k.lifetime.isLive(vm));
    assert.ok(destroyedBy === 'qemu-vm-close' || destroyedBy === 'qemu-dev-close', destroyedBy);
    assert.equal(mdev.groupKvm, null);
    assert.equal(mdev.kvm, null);
  }
});

test('#34 guest without APFT: TAPQ answers but carries no facility bits; TAPQ with T is a specification exception', () => {
  const w = makeWorld();
  const vm = makeVm(w, { cpu: { apft: false } });
  attached(w, vm);
  const vcpu = vm.vcpus[0]!;
  const plain = call(w.k, guest_tapq(vcpu, Q));
  assert.equal(plain.cc, 0);
  const info = decodeHwinfo(plain.hwinfo!);
  assert.equal(info.facilities, 0);
  assert.ok(!info.cca && !info.accel && !info.ep11, 'a guest AP bus cannot learn the mode: no devices');
  assert.equal(info.at, 14);
  assert.equal(call(w.k, guest_tapq(vcpu, Q, { t: true })).pgm, 'specification');
  assert.deepEqual(w.k.bugs, []);
});
