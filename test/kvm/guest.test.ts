// Guest AP instructions under APIE against the CRYCB masks; QCI view; APIE attribute; exceptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type KGen } from '../../src/kernel/index.js';
import { AP_RESPONSE, apqn, maskFromIds, maskIds, type Apqn } from '../../src/hw/index.js';
import {
  KVM_S390_VM_CRYPTO,
  guest_dqap,
  guest_nqap,
  guest_qci,
  guest_rapq,
  guest_tapq,
  guest_zapq,
  kvm_arch_crypto_set_masks,
  kvm_s390_vm_set_crypto,
  type Kvm,
} from '../../src/kvm/index.js';
import { MS, call, makeVm, makeWorld } from './helpers.js';

function setMasks(vm: Kvm, apm: number[], aqm: number[], adm: number[] = []): void {
  const k = vm.host.k;
  call(k, (function* (): KGen {
    yield k.mutex_lock(vm.lock);
    yield* kvm_arch_crypto_set_masks(vm, maskFromIds(apm), maskFromIds(aqm), maskFromIds(adm));
    yield k.mutex_unlock(vm.lock);
  })(), 'vfio_ap');
}

test('property: inside APM × AQM the guest gets the machine\'s answer, outside RC 01 / cc 3 and the machine is never reached', () => {
  const ids = fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 12 });
  fc.assert(
    fc.property(ids, ids, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), fc.boolean(), (apm, aqm, a, d, t, pickInside) => {
      // Half the runs aim inside the masks (independent ids would almost never hit them).
      const apid = pickInside && apm.length ? apm[a % apm.length]! : a;
      const apqi = pickInside && aqm.length ? aqm[d % aqm.length]! : d;
      const w = makeWorld();
      const vm = makeVm(w, { vcpus: 1 });
      setMasks(vm, apm, aqm);
      const q: Apqn = apqn(apid, apqi);
      const inside = apm.includes(apid) && aqm.includes(apqi);
      const vcpu = vm.vcpus[0]!;
      const r = call(w.k, guest_tapq(vcpu, q, { t }));
      assert.equal(r.intercepted, false);
      if (inside) {
        const h = w.m.tapq(q, { t });
        assert.equal(r.cc, h.cc);
        assert.deepEqual(r.status, h.status);
        assert.equal(r.hwinfo, h.hwinfo);
      } else {
        assert.equal(r.cc, 3);
        assert.equal(r.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
        assert.equal(r.gr1, 0x0001_0000n);
      }
      // NQAP must not reach the machine outside the masks.
      const n = call(w.k, guest_nqap(vcpu, q, 7n, new Uint8Array(16)));
      if (!inside) {
        assert.equal(n.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
        assert.equal(n.cc, 3);
        assert.equal(w.m.inspectQueue(q).outstanding, 0);
      } else if (n.cc === 0) assert.equal(w.m.inspectQueue(q).outstanding, 1);
      const z = call(w.k, guest_zapq(vcpu, q));
      if (!inside) assert.equal(z.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
      assert.deepEqual(w.k.bugs, []);
    }),
    { numRuns: 200, seed: 4 },
  );
});

test('NQAP/DQAP round trip on a guest queue; RAPQ resets it', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  setMasks(vm, [5], [4]);
  const q = apqn(5, 4);
  const vcpu = vm.vcpus[0]!;
  const out = call(w.k, (function* (): KGen<unknown[]> {
    const n = yield* guest_nqap(vcpu, q, 0x42n, new Uint8Array([1, 2, 3]));
    const early = yield* guest_dqap(vcpu, q);
    yield w.k.msleep(1);
    const d = yield* guest_dqap(vcpu, q);
    const r = yield* guest_rapq(vcpu, q);
    const t = yield* guest_tapq(vcpu, q);
    return [n, early, d, r, t];
  })()) as Array<{ cc?: number; status?: { responseCode: number; queueEmpty: boolean }; psmid?: bigint; data?: Uint8Array }>;
  const [n, early, d, r, t] = out;
  assert.equal(n!.cc, 0);
  assert.equal(early!.status?.responseCode, AP_RESPONSE.NO_PENDING_REPLY);
  assert.equal(d!.cc, 0);
  assert.equal(d!.psmid, 0x42n);
  assert.deepEqual([...d!.data!], [1, 2, 3]);
  assert.equal(r!.cc, 0);
  assert.equal(t!.status?.responseCode, AP_RESPONSE.RESET_IN_PROGRESS);
  assert.deepEqual(w.k.bugs, []);
});

test('NQAP addressing another domain needs it in the guest ADM', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  setMasks(vm, [5], [4], [4, 7]);
  const vcpu = vm.vcpus[0]!;
  assert.equal(call(w.k, guest_nqap(vcpu, apqn(5, 4), 1n, new Uint8Array(4), { domain: 7 })).cc, 0);
  const r = call(w.k, guest_nqap(vcpu, apqn(5, 4), 2n, new Uint8Array(4), { domain: 8 }));
  assert.equal(r.status?.responseCode, AP_RESPONSE.INVALID_DOMAIN);
});

test('guest QCI: the CRYCB masks with the machine\'s flags and Na/Nd; clamped without a format-2 CRYCB', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  setMasks(vm, [5, 6], [4, 0xab], [4]);
  const r = call(w.k, guest_qci(vm.vcpus[0]!));
  assert.equal(r.cc, 0);
  const host = w.m.qci();
  assert.deepEqual(maskIds(r.qci!.apm), [5, 6]);
  assert.deepEqual(maskIds(r.qci!.aqm), [4, 0xab]);
  assert.deepEqual(maskIds(r.qci!.adm), [4]);
  assert.equal(r.qci!.apxa, true);
  assert.equal(r.qci!.na, host.na);
  assert.equal(r.qci!.nd, host.nd);
  const vm0 = makeVm(w, { cpu: { msa3: false } });
  const r0 = call(w.k, guest_qci(vm0.vcpus[0]!));
  assert.equal(r0.qci!.apxa, false);
  assert.equal(r0.qci!.na, 0x3f);
  assert.equal(r0.qci!.nd, 15);
  assert.deepEqual(maskIds(r0.qci!.apm), []);
  // Without facility 12 for the guest: specification exception.
  const noqci = makeVm(w, { cpu: { apqci: false } });
  assert.equal(call(w.k, guest_qci(noqci.vcpus[0]!)).pgm, 'specification');
});

test('exceptions under interpretation: problem state, T without APFT, 8-bit ids without format 2', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  setMasks(vm, [5], [4]);
  const vcpu = vm.vcpus[0]!;
  vcpu.psw.problemState = true;
  assert.equal(call(w.k, guest_tapq(vcpu, apqn(5, 4))).pgm, 'privileged-operation');
  vcpu.psw.problemState = false;
  const noapft = makeVm(w, { cpu: { apft: false } });
  setMasks(noapft, [5], [4]);
  assert.equal(call(w.k, guest_tapq(noapft.vcpus[0]!, apqn(5, 4), { t: true })).pgm, 'specification');
  assert.equal(call(w.k, guest_tapq(noapft.vcpus[0]!, apqn(5, 4))).cc, 0);
  const f0 = makeVm(w, { cpu: { msa3: false } });
  assert.equal(call(w.k, guest_tapq(f0.vcpus[0]!, apqn(64, 4))).pgm, 'specification');
  assert.equal(call(w.k, guest_tapq(f0.vcpus[0]!, apqn(5, 16))).pgm, 'specification');
  assert.equal(call(w.k, guest_tapq(f0.vcpus[0]!, apqn(5, 4))).status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.deepEqual(w.k.bugs, []);
});

test('APIE off: AP instructions are intercepted and go to userspace; the attribute re-runs vCPU crypto setup', () => {
  const w = makeWorld();
  const vm = makeVm(w, { vcpus: 2 });
  setMasks(vm, [5], [4]);
  assert.ok(vm.vcpus.every((v) => v.sie_block.eca_apie));
  assert.equal(call(w.k, kvm_s390_vm_set_crypto(vm, KVM_S390_VM_CRYPTO.DISABLE_APIE)), 0);
  assert.ok(vm.vcpus.every((v) => !v.sie_block.eca_apie && v.vsie_restart_pending === 2));
  const r = call(w.k, guest_tapq(vm.vcpus[1]!, apqn(5, 4)));
  assert.equal(r.intercepted, true);
  assert.equal(r.exit, -95);
  assert.equal(call(w.k, guest_nqap(vm.vcpus[1]!, apqn(5, 4), 1n, new Uint8Array(1))).exit, -95);
  assert.equal(call(w.k, kvm_s390_vm_set_crypto(vm, KVM_S390_VM_CRYPTO.ENABLE_APIE)), 0);
  assert.equal(call(w.k, guest_tapq(vm.vcpus[1]!, apqn(5, 4))).cc, 0);
  assert.equal(call(w.k, kvm_s390_vm_set_crypto(vm, 99)), -6);
  const noap = makeWorld({ profile: 'minimal', edit: (p) => void Object.assign(p.facilities, { ap: false, qci: false, apft: false, aqic: false, apxa: false, apsc: false, qact: false, rc8a: false }) });
  const vm2 = makeVm(noap);
  assert.equal(call(noap.k, kvm_s390_vm_set_crypto(vm2, KVM_S390_VM_CRYPTO.ENABLE_APIE)), -95);
  assert.deepEqual(w.k.bugs, []);
});

test('a guest sees a host reset in progress as RC 02, then RC 00 with E=1, I=0', () => {
  const w = makeWorld({ profile: 'minimal' });
  const vm = makeVm(w);
  setMasks(vm, [0], [1]);
  const q = apqn(0, 1);
  w.m.zapq(q); // the host (vfio_ap) resets the queue: 60 ms in the minimal profile
  const seen = call(w.k, (function* (): KGen<string[]> {
    const out: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = yield* guest_tapq(vm.vcpus[0]!, q);
      out.push(`${r.status!.responseCode}:${r.status!.queueEmpty ? 'E' : 'e'}${r.status!.irqEnabled ? 'I' : 'i'}`);
      yield w.k.msleep(20);
    }
    return out;
  })());
  assert.deepEqual(seen, ['2:ei', '2:ei', '2:ei', '0:Ei', '0:Ei']);
  assert.equal(w.k.now(), 100 * MS);
});
