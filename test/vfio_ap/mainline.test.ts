// The `mainline` kernel profile reproduces the spec's [MAINLINE-QUIRK]s; the default
// profile is the fixed behaviour. Each test runs both and shows the difference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestSetup, matrixMdev, countZapq, TestHost, U1, U2, TYPE } from './helpers.js';
import { apqn, AP_RESPONSE } from '../../src/hw/index.js';
import { guest_aqic } from '../../src/kvm/index.js';
import { qemuRunSync } from '../../src/qemu/index.js';
import { vfio_ap_mdev_set_kvm } from '../../src/vfio_ap/index.js';

test('quirk: a rejected second open steals the VM pqap hook (guest AQIC gets RC 01 until the first mdev detaches)', () => {
  for (const kernel of ['default', 'mainline'] as const) {
    const { t, q } = guestSetup({ host: { kernel } });
    const m2 = t.mdev(U2);
    void m2;
    const kvm = q!.kvm!;
    const first = matrixMdev(t, U1);
    const second = matrixMdev(t, U2);
    // Open the second mdev's VFIO device for the same VM the way QEMU would (the
    // driver's attach): -EPERM in both profiles.
    const rc = qemuRunSync(t.h.k, vfio_ap_mdev_set_kvm(t.h.vfio_ap!.md, second, kvm));
    assert.equal(rc, -1, kernel);
    assert.equal(first.kvm, kvm);
    const r = qemuRunSync(t.h.k, guest_aqic(kvm.vcpus[0]!, apqn(5, 4), { ir: true, isc: 3 }, 0x10000));
    if (kernel === 'default') {
      assert.equal(kvm.arch.crypto.pqap_hook, first);
      assert.equal(r.status?.responseCode, AP_RESPONSE.NORMAL);
    } else {
      assert.equal(kvm.arch.crypto.pqap_hook, second, 'the hook now points at the detached mdev');
      assert.equal(r.status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
      assert.equal(r.cc, 3);
    }
  }
});


test('quirk: on_config_changed pushes whenever the shadow is non-empty (spurious cfg_chg), not only when it changed', () => {
  for (const kernel of ['default', 'mainline'] as const) {
    const { t, q } = guestSetup({ host: { kernel } });
    t.ok('/sys/bus/ap/drivers/vfio_ap/unbind', '06.00ab'); // adapter 6 leaves the guest
    const cfg = matrixMdev(t, U1).cfg_chg_trigger!;
    const s0 = cfg.signals;
    t.h.machine.hmc.removeAdapter(6); // the shadow does not change
    t.h.settle();
    assert.equal(cfg.signals - s0, kernel === 'default' ? 0 : 1, kernel);
    void q;
  }
});

test('quirk (<= 6.17): the config callbacks lock kvm->lock of detached mdevs too: a NULL dereference', () => {
  for (const kernel of ['default', 'mainline'] as const) {
    const t = new TestHost({ kernel, stopOnBug: false });
    t.free('-5', '-4');
    const m = t.mdev(U1);
    t.ok(`${m}/assign_adapter`, '5');
    t.ok(`${m}/assign_domain`, '4');
    t.h.machine.hmc.removeAdapter(5);
    t.h.settle();
    const oops = t.h.k.bugs.filter((b) => b.kind === 'task-error');
    if (kernel === 'default') assert.deepEqual(oops, []);
    else assert.match(oops[0]!.title, /Unable to handle kernel pointer dereference/);
  }
});

test('quirk: a reset answered RC 01 is a WARN in mainline; the newest tree releases the interrupt resources', () => {
  for (const kernel of ['default', 'mainline'] as const) {
    const { t, q } = guestSetup({ host: { kernel } });
    t.h.machine.faults.injectResponse(apqn(6, 4), AP_RESPONSE.Q_NOT_AVAIL, { instructions: ['zapq'], count: 1 });
    const seq = t.h.k.log.nextSeq;
    q!.run(q!.system_reset());
    t.h.advance(100_000_000);
    const warn = t.h.k.log.records(seq).some((r) => r.text.includes('PQAP/ZAPQ for 06.0004 failed with invalid rc=1'));
    assert.equal(warn, kernel === 'mainline', kernel);
  }
});

test('quirk: on_scan_complete with only new control domains resets random queues in mainline', () => {
  let mainlineResets = 0;
  for (const seed of [1, 2, 3, 4, 5]) {
    for (const kernel of ['default', 'mainline'] as const) {
      const p = { profile: 'default', kernel, seed } as const;
      const { t, m } = guestSetup({ host: p });
      t.ok(`${m}/assign_control_domain`, '0x20'); // not yet a control domain of the host
      const z = countZapq(t);
      t.h.machine.hmc.addControlDomain(0x20);
      t.h.settle();
      t.h.advance(100_000_000);
      if (kernel === 'default') assert.equal(z.size, 0, `seed ${seed}: no resets`);
      else mainlineResets += z.size;
    }
  }
  assert.ok(mainlineResets > 0);
  void TYPE;
});
