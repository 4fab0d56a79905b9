// handle_pqap (priv.c): validation order, the hook under pqap_hook_rwsem (read), no hook → RC 01.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RandomStrategy, type KGen } from '../../src/kernel/index.js';
import { AP_RESPONSE, PQAP_FC, apqn, encodeAqicGr1, encodePqapGr0, encodeStatusWord, makeStatus } from '../../src/hw/index.js';
import {
  PGM_PRIVILEGED_OP,
  PGM_SPECIFICATION,
  guest_aqic,
  handle_pqap,
  kvm_s390_pqap_hook_clear,
  kvm_s390_pqap_hook_set,
  pqap_no_hook_mainline_memcpy,
  type CryptoHook,
  type Kvm,
  type KvmCpuModel,
  type KvmVcpu,
  type PqapHookOwner,
} from '../../src/kvm/index.js';
import { MS, call, makeVm, makeWorld, run } from './helpers.js';

const EOPNOTSUPP = -95;
const AQIC = (q = apqn(5, 4), extra: { t?: boolean } = {}) => encodePqapGr0({ fc: PQAP_FC.AQIC, apqn: q, t: !!extra.t });
const CTRL = encodeAqicGr1({ ir: true, isc: 3 });
const NIB = 0x10_0000;

interface Case {
  what: string;
  gr0: bigint;
  problemState?: boolean;
  cpu?: KvmCpuModel;
  profile?: 'minimal-noapxa' | 'no-ap';
  apie?: boolean;
  expect: number | 'pgm-priv' | 'pgm-spec' | 'no-hook';
}

/** Runs handle_pqap directly on vCPU 0 with GR0..GR2 set; returns the outcome. */
function runHandler(c: Case): { ret: number; vcpu: KvmVcpu; vm: Kvm } {
  const w = makeWorld(
    c.profile === 'minimal-noapxa'
      ? { profile: 'minimal', edit: (p) => void (p.facilities.apxa = false) }
      : c.profile === 'no-ap'
        ? { profile: 'minimal', edit: (p) => void Object.assign(p.facilities, { ap: false, qci: false, apft: false, aqic: false, apxa: false, apsc: false, qact: false, rc8a: false }) }
        : {},
  );
  const vm = makeVm(w, { cpu: c.cpu ?? {}, ...(c.apie !== undefined ? { apie: c.apie } : {}) });
  const vcpu = vm.vcpus[0]!;
  vcpu.gprs[0] = c.gr0;
  vcpu.gprs[1] = CTRL;
  vcpu.gprs[2] = BigInt(NIB);
  vcpu.psw.problemState = !!c.problemState;
  const ret = call(w.k, handle_pqap(vcpu), 'vcpu0');
  assert.deepEqual(w.k.bugs, []);
  return { ret, vcpu, vm };
}

const cases: Case[] = [
  { what: '1: host without AP instructions', gr0: AQIC(), profile: 'no-ap', apie: false, expect: EOPNOTSUPP },
  { what: '1: vCPU without ECA.APIE', gr0: AQIC(), apie: false, expect: EOPNOTSUPP },
  { what: '2: FC 4 (QCI, nested under z/VM)', gr0: encodePqapGr0({ fc: PQAP_FC.QCI }), expect: EOPNOTSUPP },
  { what: '2: FC check precedes the privilege check', gr0: encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: apqn(5, 4) }), problemState: true, expect: EOPNOTSUPP },
  { what: '3: AQIC from problem state', gr0: AQIC(), problemState: true, expect: 'pgm-priv' },
  { what: '3: privilege precedes specification', gr0: AQIC() | (1n << 22n), problemState: true, expect: 'pgm-priv' },
  { what: '4: GR0 bit 41 set', gr0: AQIC() | (1n << 22n), expect: 'pgm-spec' },
  { what: '4: GR0 bit 47 set', gr0: AQIC() | (1n << 16n), expect: 'pgm-spec' },
  { what: '5: T bit without APFT', gr0: AQIC(apqn(5, 4), { t: true }), cpu: { apft: false }, expect: 'pgm-spec' },
  { what: '5: T bit with APFT is fine', gr0: AQIC(apqn(5, 4), { t: true }), expect: 'no-hook' },
  { what: '6: APID 64 on a format-1 CRYCB', gr0: AQIC(apqn(64, 0)), profile: 'minimal-noapxa', expect: 'pgm-spec' },
  { what: '6: APQI 16 on a format-0 CRYCB', gr0: AQIC(apqn(1, 16)), cpu: { msa3: false }, expect: 'pgm-spec' },
  { what: '6: APID 64 on a format-2 CRYCB is fine', gr0: AQIC(apqn(64, 0)), expect: 'no-hook' },
  { what: '7: guest without facility 65', gr0: AQIC(), cpu: { apqi: false }, expect: 'pgm-spec' },
  { what: '9: valid AQIC, no hook', gr0: AQIC(), expect: 'no-hook' },
];

for (const c of cases) {
  test(`handle_pqap ${c.what}`, () => {
    const { ret, vcpu } = runHandler(c);
    switch (c.expect) {
      case 'pgm-priv':
        assert.equal(ret, 0);
        assert.equal(vcpu.pgm, PGM_PRIVILEGED_OP);
        break;
      case 'pgm-spec':
        assert.equal(ret, 0);
        assert.equal(vcpu.pgm, PGM_SPECIFICATION);
        break;
      case 'no-hook':
        assert.equal(ret, 0);
        assert.equal(vcpu.pgm, null);
        assert.equal(vcpu.psw.cc, 3);
        // RC 01 in the status word in GR1's low half; the high half is zero.
        assert.equal(vcpu.gprs[1], 0x0001_0000n);
        break;
      default:
        assert.equal(ret, c.expect);
        assert.equal(vcpu.pgm, null);
        assert.equal(vcpu.gprs[1], CTRL, 'GR1 untouched');
    }
  });
}

function statusHook(k: ReturnType<typeof makeWorld>['k'], vm: Kvm, rc: number, log: string[], ret = 0): CryptoHook {
  return function* (vcpu: KvmVcpu): KGen<number> {
    // KVM holds the VM's pqap_hook_rwsem for read around the whole hook.
    k.lockdep_assert_held(vm.arch.crypto.pqap_hook_rwsem, 'read');
    log.push(`hook apqn=${(vcpu.gprs[0]! & 0xffffn).toString(16)} nib=${vcpu.gprs[2]!.toString(16)}`);
    yield k.sched_point('hook');
    vcpu.gprs[1] = BigInt(encodeStatusWord(makeStatus(rc, { irqEnabled: rc === 0 })));
    return ret;
  };
}

test('the hook runs with pqap_hook_rwsem held for read; cc 0 iff RC 0; a negative return goes to userspace', () => {
  const w = makeWorld();
  const vm = makeVm(w);
  const log: string[] = [];
  const owner: PqapHookOwner = { pqap_hook: statusHook(w.k, vm, 0, log) };
  call(w.k, kvm_s390_pqap_hook_set(vm, owner));
  const ok = call(w.k, guest_aqic(vm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, NIB));
  assert.equal(ok.intercepted, true);
  assert.equal(ok.cc, 0);
  assert.equal(ok.status?.responseCode, 0);
  assert.equal(ok.status?.irqEnabled, true);
  owner.pqap_hook = statusHook(w.k, vm, AP_RESPONSE.INVALID_ADDRESS, log);
  const bad = call(w.k, guest_aqic(vm.vcpus[1]!, apqn(5, 4), { ir: true, isc: 3 }, 0));
  assert.equal(bad.cc, 3);
  assert.equal(bad.status?.responseCode, AP_RESPONSE.INVALID_ADDRESS);
  owner.pqap_hook = statusHook(w.k, vm, 0, log, EOPNOTSUPP);
  const up = call(w.k, guest_aqic(vm.vcpus[1]!, apqn(5, 4), { ir: true, isc: 3 }, NIB));
  assert.equal(up.exit, EOPNOTSUPP);
  assert.equal(up.cc, undefined);
  assert.deepEqual(log, ['hook apqn=504 nib=100000', 'hook apqn=504 nib=0', 'hook apqn=504 nib=100000']);
  call(w.k, kvm_s390_pqap_hook_clear(vm));
  const none = call(w.k, guest_aqic(vm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, NIB));
  assert.equal(none.cc, 3);
  assert.equal(none.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.deepEqual(w.k.bugs, []);
});

test('a hook that does not hold the rwsem is caught by the assertion (the assertion is live)', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const vm = makeVm(w);
  call(w.k, statusHook(w.k, vm, 0, [])(vm.vcpus[0]!));
  assert.deepEqual(w.k.bugs.map((b) => b.title), ['lockdep_assert_held_read(&kvm->arch.crypto.pqap_hook_rwsem) failed in test']);
});

test('clearing the hook (rwsem write) waits for a running handler; afterwards PQAP answers RC 01', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const w = makeWorld({ kernel: { strategy: new RandomStrategy(seed) } });
    const { k } = w;
    const vm = makeVm(w);
    const events: string[] = [];
    const owner: PqapHookOwner = {
      pqap_hook: function* (vcpu: KvmVcpu): KGen<number> {
        events.push('hook start');
        yield k.msleep(20); // e.g. vfio_ap polling an interrupt disable
        events.push('hook end');
        vcpu.gprs[1] = BigInt(encodeStatusWord(makeStatus(0)));
        return 0;
      },
    };
    call(k, kvm_s390_pqap_hook_set(vm, owner));
    const results: number[] = [];
    k.spawn('vcpu0', (function* (): KGen<void> {
      const r = yield* guest_aqic(vm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, NIB);
      results.push(r.status!.responseCode);
    })());
    k.spawn('close', (function* (): KGen<void> {
      yield* kvm_s390_pqap_hook_clear(vm);
      events.push('cleared');
      // After the clear the owner may be freed: no handler can be inside it any more.
      assert.ok(events.indexOf('hook start') < 0 || events.indexOf('hook end') >= 0, `seed ${seed}: ${events.join(',')}`);
    })());
    k.run();
    assert.deepEqual(k.bugs, [], `seed ${seed}`);
    assert.equal(results.length, 1);
    assert.ok(results[0] === 0 ? events.join() === 'hook start,hook end,cleared' : results[0] === 1 && events.join() === 'cleared', `seed ${seed}: ${events.join()} rc ${results[0]}`);
    assert.ok(k.now() === 0 || k.now() === 20 * MS);
  }
});

test('an owner freed while still registered is a use-after-free on the next PQAP (seed 004 hazard)', () => {
  const w = makeWorld({ kernel: { stopOnBug: false } });
  const { k } = w;
  const vm = makeVm(w);
  const mdev = k.kzalloc('matrix_mdev', { pqap_hook: statusHook(k, vm, 0, []) as CryptoHook | null });
  call(k, kvm_s390_pqap_hook_set(vm, mdev));
  call(k, (function* (): KGen {
    yield k.kfree(mdev); // a remove path that forgot to clear the hook
  })(), 'mdev_remove');
  const t = run(k, 'vcpu0', guest_aqic(vm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, NIB));
  assert.ok(t.error, 'the oops kills the vCPU task');
  assert.equal(k.bugs[0]!.title, 'use-after-free of matrix_mdev (pqap_hook) in handle_pqap');
  assert.match(k.bugs[0]!.text, /Freed by task \d+ \(mdev_remove\)/);
});

test('piece: the mainline no-hook memcpy puts the status into GR1\'s high word', () => {
  const w = makeWorld({ host: { pieces: { pqap_no_hook: pqap_no_hook_mainline_memcpy } } });
  const vm = makeVm(w);
  const r = call(w.k, guest_aqic(vm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, NIB));
  assert.equal(r.cc, 3);
  assert.equal(r.gr1 >> 32n, 0x0001_0000n);
  // The low word, where a Linux guest reads the status, still holds its control word: RC 00.
  assert.equal(r.status?.responseCode, 0);
});
