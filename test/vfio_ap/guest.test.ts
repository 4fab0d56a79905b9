import { test } from 'node:test';
import assert from 'node:assert/strict';
import { U1, U2, guestSetup, guestApqns, guestTapq, guestAqic, countZapq, matrixMdev, TYPE } from './helpers.js';
import { apqn, AP_RESPONSE } from '../../src/hw/index.js';
import type { KGen } from '../../src/kernel/index.js';
import { maskIds } from '../../src/hw/index.js';
import { kvm_s390_crycb_masks } from '../../src/kvm/index.js';

const S = 1_000_000_000;

test('scenario 26/41: open with a VM attaches: the shadow is pushed as is, status "in use", VFIO and the driver hold references', () => {
  const { t, q } = guestSetup();
  assert.deepEqual(guestApqns(q!), ['05.0004', '05.00ab', '06.0004', '06.00ab']);
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'in use\n');
  assert.equal(q!.kvm!.users_count.read(), 3, 'VM fd + VFIO core + vfio_ap');
  assert.equal(q!.kvm!.arch.crypto.pqap_hook, matrixMdev(t, U1));
  // The guest sees its queues; TAPQ on them answers RC 00 from the machine.
  assert.equal(guestTapq(t, q!, apqn(5, 4)).status?.responseCode, AP_RESPONSE.NORMAL);
  assert.equal(guestTapq(t, q!, apqn(4, 4)).status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
});

test('scenario 19: unassigning an adapter from a running guest: one push, its guest queues reset, cfg_chg once', () => {
  const { t, m, q } = guestSetup();
  const mm = matrixMdev(t, U1);
  const cfg = mm.cfg_chg_trigger!;
  const before = { signals: cfg.signals, updates: q!.kvm!.arch.crypto.mask_updates };
  const zapq = countZapq(t);
  t.ok(`${m}/unassign_adapter`, '5');
  assert.deepEqual(guestApqns(q!), ['06.0004', '06.00ab']);
  assert.equal(cfg.signals - before.signals, 1);
  assert.equal(q!.kvm!.arch.crypto.mask_updates - before.updates, 1);
  assert.deepEqual([...zapq.entries()].sort(), [['05.0004', 1], ['05.00ab', 1]]);
  assert.equal(guestTapq(t, q!, apqn(5, 4)).status?.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'unassigned\n');
});

test('scenario 20 and 40: unassign without a guest: no push, no cfg_chg, but the queues that were in the shadow are reset', () => {
  const { t, m, q } = guestSetup();
  const mm = matrixMdev(t, U1);
  const cfg = mm.cfg_chg_trigger!;
  q!.run(q!.quit());
  t.check('quit');
  const s0 = cfg.signals;
  const zapq = countZapq(t);
  t.ok(`${m}/unassign_adapter`, '6');
  assert.equal(cfg.signals, s0, 'never signalled while detached');
  assert.deepEqual([...zapq.keys()].sort(), ['06.0004', '06.00ab']);
  t.ok(`${m}/assign_adapter`, '6');
  assert.equal(cfg.signals, s0);
});

test('scenario 15 and 16: a queue unbound from a running guest takes its adapter out; binding it back plugs the adapter in again', () => {
  const { t, m, q } = guestSetup();
  const cfg = matrixMdev(t, U1).cfg_chg_trigger!;
  const s0 = cfg.signals;
  const zapq = countZapq(t);
  t.ok('/sys/bus/ap/drivers/vfio_ap/unbind', '05.0004');
  assert.deepEqual(guestApqns(q!), ['06.0004', '06.00ab']);
  assert.equal(cfg.signals - s0, 1);
  assert.deepEqual([...zapq.keys()].sort(), ['05.0004', '05.00ab']);
  assert.equal(t.r(`${m}/matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  assert.equal(t.r('/sys/devices/ap/card05/05.00ab/status'), 'assigned\n');
  t.ok('/sys/bus/ap/drivers/vfio_ap/bind', '05.0004');
  assert.deepEqual(guestApqns(q!), ['05.0004', '05.00ab', '06.0004', '06.00ab']);
  assert.equal(cfg.signals - s0, 2);
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'in use\n');
});

test('scenario 17: the host loses a usage domain: one push per mdev, no resets, the matrix keeps it', () => {
  const { t, m, q } = guestSetup();
  const cfg = matrixMdev(t, U1).cfg_chg_trigger!;
  const s0 = cfg.signals;
  const u0 = q!.kvm!.arch.crypto.mask_updates;
  const zapq = countZapq(t);
  t.h.machine.hmc.removeUsageDomain(0xab);
  t.h.settle();
  t.check('host removes domain 0xab');
  assert.deepEqual(guestApqns(q!), ['05.0004', '06.0004']);
  assert.equal(q!.kvm!.arch.crypto.mask_updates - u0, 1);
  assert.equal(cfg.signals - s0, 1);
  // Only the AP bus's own ZAPQ as each x.00ab queue device goes (ap_queue_remove):
  // vfio_ap resets nothing on this path.
  assert.ok([...zapq.entries()].every(([n, c]) => n.endsWith('.00ab') && c === 1), JSON.stringify([...zapq]));
  assert.equal(zapq.size, 11);
  assert.equal(t.r(`${m}/matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n06.0004\n');
  // Scenario 19 of ap-architecture 7.3: the domain comes back and is plugged in again.
  t.h.machine.hmc.addUsageDomain(0xab);
  t.h.settle();
  t.check('host re-adds domain 0xab');
  assert.deepEqual(guestApqns(q!), ['05.0004', '05.00ab', '06.0004', '06.00ab']);
});

test('scenario 18: the host loses a control domain assigned to the guest: unplugged (fixed); kept by mainline (quirk)', () => {
  for (const kernel of ['default', 'mainline'] as const) {
    const { t, m, q } = guestSetup({ host: { kernel } });
    t.ok(`${m}/assign_control_domain`, '0x10');
    assert.deepEqual(maskIds(kvm_s390_crycb_masks(q!.kvm!).adm), [0x10], kernel);
    t.h.machine.hmc.removeControlDomain(0x10);
    t.h.settle();
    assert.equal(t.r(`${m}/control_domains`), '0010\n', 'the matrix keeps it');
    if (kernel === 'default') {
      t.check('host removes control domain 0x10');
      assert.deepEqual(maskIds(kvm_s390_crycb_masks(q!.kvm!).adm), [], 'unplugged from the guest');
    } else {
      assert.deepEqual(maskIds(kvm_s390_crycb_masks(q!.kvm!).adm), [0x10], 'mainline never unplugs lost control domains');
    }
  }
});

test('scenario 13: an over-provisioned adapter is hot plugged when the host gains it: one push, one cfg_chg', () => {
  const { t, m, q } = guestSetup();
  t.free('-7', '');
  t.ok(`${m}/assign_adapter`, '7');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  const cfg = matrixMdev(t, U1).cfg_chg_trigger!;
  const s0 = cfg.signals;
  const u0 = q!.kvm!.arch.crypto.mask_updates;
  t.h.machine.hmc.addAdapter(7);
  t.h.settle();
  t.check('host adds adapter 7');
  assert.deepEqual(guestApqns(q!), ['05.0004', '05.00ab', '06.0004', '06.00ab', '07.0004', '07.00ab']);
  assert.equal(q!.kvm!.arch.crypto.mask_updates - u0, 1);
  assert.equal(cfg.signals - s0, 1);
});

test('scenario 23: an ap_config swap while attached: unplug first, then plug: two pushes, two cfg_chg', () => {
  const { t, m, q } = guestSetup();
  const cfg = matrixMdev(t, U1).cfg_chg_trigger!;
  const s0 = cfg.signals;
  const cur = t.r(`${m}/ap_config`);
  // adapters {5,6} -> {6}: then {6} -> ... test the swap {5,6} -> {5} with 6 replaced by nothing
  const next = cur.replace(/^0x06/, '0x04');
  t.ok(`${m}/ap_config`, next);
  assert.deepEqual(guestApqns(q!), ['05.0004', '05.00ab']);
  assert.equal(cfg.signals - s0, 1);
  t.free('-7', '');
  const swap = `0x01${'0'.repeat(62)}` + next.slice(66);
  t.ok(`${m}/ap_config`, swap);
  assert.equal(t.r(`${m}/matrix`), '07.0004\n07.00ab\n');
  assert.equal(cfg.signals - s0, 2, 'remove 5 pushed; 7 is not in the host config, so no second push');
});

test('scenario 27: close detaches: hook cleared, guest masks zeroed, linked queues reset, reference dropped, shadow kept', () => {
  const { t, m, q } = guestSetup();
  const kvm = q!.kvm!;
  const zapq = countZapq(t);
  q!.run(q!.device_del('hostdev0'));
  t.h.advance(1_000_000);
  t.check('device_del');
  assert.equal(kvm.arch.crypto.pqap_hook, null);
  assert.deepEqual(guestApqns(q!), []);
  assert.deepEqual([...zapq.keys()].sort(), ['05.0004', '05.00ab', '06.0004', '06.00ab']);
  assert.equal(kvm.users_count.read(), 1, 'only the VM fd');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'assigned\n');
  assert.equal(matrixMdev(t, U1).kvm, null);
});

test('scenario 29: remove while the guest runs: request zeroes the guest and signals cfg_chg and req, QEMU unplugs, remove completes without a leak', () => {
  const { t, m, q } = guestSetup();
  const mm = matrixMdev(t, U1);
  const req = mm.req_trigger!;
  const cfg = mm.cfg_chg_trigger!;
  const [r0, c0] = [req.signals, cfg.signals];
  const k = t.h.k;
  let result: number | undefined;
  k.spawn('bash', (function* (): KGen {
    const r = yield* t.h.sysfs.write_gen(k, `${m}/remove`, '1');
    result = r.ok ? 0 : r.errno;
  })());
  t.h.advance(S);
  assert.equal(result, 0, 'remove completed (never EBUSY)');
  assert.equal(req.signals - r0, 1);
  assert.ok(cfg.signals - c0 >= 1);
  assert.deepEqual(q!.devices.filter((d) => d.realized), [], 'QEMU unplugged the device on REQ');
  assert.equal(t.h.ls('/sys/devices/vfio_ap/matrix').includes(U1), false);
  assert.equal(t.r(`${TYPE}/available_instances`), '65536\n');
  t.check('remove');
  // The APQNs are free for another mdev.
  const m2 = t.mdev(U2);
  t.ok(`${m2}/assign_adapter`, '5');
  t.ok(`${m2}/assign_domain`, '4');
  q!.run(q!.quit());
  t.ok(`${m2}/remove`, '1');
  k.kmemleak_scan();
  assert.deepEqual(k.bugs.filter((b) => /matrix_mdev|vfio_device|kvm/.test(b.title)), []);
});

test('scenario 30: remove with no req trigger: notice once, request again every 10 s, blocked until the fd is closed', () => {
  const { t, m, q } = guestSetup();
  const mm = matrixMdev(t, U1);
  const k = t.h.k;
  // QEMU stops listening for requests (fd -1) but keeps the device open.
  mm.req_trigger = null;
  const seq = k.log.nextSeq;
  let done = false;
  k.spawn('bash', (function* (): KGen {
    yield* t.h.sysfs.write_gen(k, `${m}/remove`, '1');
    done = true;
  })());
  t.h.advance(35 * S);
  assert.equal(done, false, 'still blocked');
  assert.equal(mm.vdev.requests, 4, 'at 0, 10, 20 and 30 s');
  const notices = k.log.records(seq).map((r) => r.text).filter((x) => x.includes('No device request registered'));
  assert.deepEqual(notices, [`vfio_ap_mdev ${U1}: No device request registered, blocked until released by user`]);
  q!.run(q!.quit());
  t.h.advance(11 * S);
  assert.equal(done, true);
  t.check('remove after quit');
});

test('scenario 32-35: guest AQIC: enable with a valid NIB, bad NIB, unknown APQN, disable', () => {
  const { t, m, q } = guestSetup();
  const kvm = q!.kvm!;
  // 32: enable on 05.0004
  let r = guestAqic(t, q!, apqn(5, 4), true, 3, 0x10000);
  assert.equal(r.status?.responseCode, AP_RESPONSE.NORMAL);
  assert.equal(r.cc, 0);
  const qobj = matrixMdev(t, U1).qtable.get(apqn(5, 4))!;
  assert.equal(qobj.saved_iova, 0x10000);
  assert.equal(qobj.saved_isc, 3);
  assert.equal(kvm.memslots.pinned.size, 1);
  // A second enable while enabled: the adapter answers RC 07 (otherwise changed); the
  // driver drops the new pin and ISC and keeps the old configuration.
  r = guestAqic(t, q!, apqn(5, 4), true, 3, 0x20000);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.OTHERWISE_CHANGED, 3]);
  assert.equal(qobj.saved_iova, 0x10000);
  assert.deepEqual([...kvm.memslots.pinned.keys()], [0x10]);
  // 33: bad NIB
  r = guestAqic(t, q!, apqn(5, 0xab), true, 3, 0);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.INVALID_ADDRESS, 3]);
  r = guestAqic(t, q!, apqn(5, 0xab), true, 3, 0x7fff_ffff_0000);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.INVALID_ADDRESS, 3]);
  // 34: an APQN not linked to the mdev
  t.ok('/sys/bus/ap/drivers/vfio_ap/unbind', '06.0004');
  r = guestAqic(t, q!, apqn(6, 4), true, 3, 0x10000);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.Q_NOT_AVAIL, 3]);
  // 35: disable
  r = guestAqic(t, q!, apqn(5, 4), false, 0, 0);
  assert.equal(r.status?.responseCode, AP_RESPONSE.NORMAL);
  assert.equal(qobj.saved_iova, 0);
  assert.equal(kvm.memslots.pinned.size, 0);
  // Enabled again after the disable: a fresh configuration with RC 00.
  r = guestAqic(t, q!, apqn(5, 4), true, 4, 0x20000);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.NORMAL, 0]);
  assert.deepEqual([...kvm.memslots.pinned.keys()], [0x20]);
  void m;
});

test('detach releases interrupt resources of every linked queue (pins and guest ISCs balance)', () => {
  const { t, q } = guestSetup();
  const kvm = q!.kvm!;
  for (const a of [apqn(5, 4), apqn(6, 0xab)]) assert.equal(guestAqic(t, q!, a, true, 2, 0x30000).status?.responseCode, 0);
  assert.equal(kvm.memslots.pinned.get(0x30), 2);
  q!.run(q!.device_del('hostdev0'));
  t.h.advance(100_000_000);
  assert.equal(kvm.memslots.pinned.size, 0);
  t.check('detach after AQIC');
});

test('scenario 37 and 45: VFIO_DEVICE_RESET is 0 when every queue resets; -EIO when one fails, and a failed queue keeps its adapter out of the guest', () => {
  const { t, m, q } = guestSetup();
  q!.run(q!.system_reset());
  assert.deepEqual(q!.stderr, []);
  t.h.machine.faults.injectResponse(apqn(6, 4), AP_RESPONSE.Q_NOT_AVAIL, { instructions: ['zapq'], count: 1 });
  q!.run(q!.system_reset());
  t.h.advance(100_000_000);
  assert.ok(q!.stderr.some((l) => /Input\/output error|EIO|-5/.test(l)), q!.stderr.join('\n'));
  // Adapter 6's queue 06.0004 is not passable now: the next filter run drops adapter 6.
  t.ok(`${m}/assign_control_domain`, '1'); // no filter of adapters
  t.ok(`${m}/unassign_domain`, '0xab');
  t.ok(`${m}/assign_domain`, '0xab');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n');
});

test('spec 6.3-6.5 error paths of guest AQIC: no AIV, an unexpected RC on enable (the leak), busy retries and their limit, the irq-clear wait, no GISA', () => {
  const { t, q } = guestSetup();
  const kvm = q!.kvm!;
  const k = t.h.k;
  const faults = t.h.machine.faults;
  const qobj = matrixMdev(t, U1).qtable.get(apqn(5, 4))!;
  const from = k.dmesg().length;
  const state = () => ({ saved: [qobj.saved_iova, qobj.saved_isc], pinned: [...kvm.memslots.pinned], iscs: [...kvm.arch.gisa_int.alert.ref_count] });
  const t0 = k.now();
  const ms = () => (k.now() - t0) / 1e6;
  // 6.3.1: a vCPU without AIV: the handler declines and the exit goes to userspace.
  kvm.vcpus[0]!.sie_block.eca_aiv = false;
  let r = guestAqic(t, q!, apqn(5, 4), true, 3, 0x10000);
  assert.equal(r.exit, -95);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [], iscs: [0, 0, 0, 0, 0, 0, 0, 0] });
  kvm.vcpus[0]!.sie_block.eca_aiv = true;
  // 6.4.6: any other RC: warning, disable (frees the old, nothing here) — the new pin and ISC stay (the leak the spec keeps).
  faults.injectResponse(apqn(5, 4), 0x08, { instructions: ['aqic'] });
  r = guestAqic(t, q!, apqn(5, 4), true, 3, 0x10000);
  assert.deepEqual([r.status?.responseCode, r.cc], [0x08, 3]);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [[0x10, 1]], iscs: [0, 0, 0, 1, 0, 0, 0, 0] });
  // 6.5: RC 05 twice, then 00: two 20 ms sleeps, the resources freed, RC 00 to the guest.
  assert.equal(guestAqic(t, q!, apqn(5, 4), true, 2, 0x20000).status?.responseCode, AP_RESPONSE.NORMAL);
  faults.injectResponse(apqn(5, 4), AP_RESPONSE.BUSY, { count: 2, instructions: ['aqic'] });
  r = guestAqic(t, q!, apqn(5, 4), false, 0, 0);
  assert.deepEqual([r.status?.responseCode, r.cc, ms()], [AP_RESPONSE.NORMAL, 0, 40]);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [[0x10, 1]], iscs: [0, 0, 0, 1, 0, 0, 0, 0] });
  // Six busy answers: every attempt sleeps, the last RC goes to the guest with a warning; freed anyway.
  assert.equal(guestAqic(t, q!, apqn(5, 4), true, 2, 0x20000).status?.responseCode, AP_RESPONSE.NORMAL);
  faults.injectResponse(apqn(5, 4), AP_RESPONSE.BUSY, { count: 6, instructions: ['aqic'] });
  r = guestAqic(t, q!, apqn(5, 4), false, 0, 0);
  assert.deepEqual([r.status?.responseCode, r.cc, ms()], [AP_RESPONSE.BUSY, 3, 160]);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [[0x10, 1]], iscs: [0, 0, 0, 1, 0, 0, 0, 0] });
  // The adapter never saw the disable: interrupts are still on there, so enabling again is "otherwise changed".
  r = guestAqic(t, q!, apqn(5, 4), true, 2, 0x20000);
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.OTHERWISE_CHANGED, 3]);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [[0x10, 1]], iscs: [0, 0, 0, 1, 0, 0, 0, 0] });
  // The wait for the irq bit: TAPQ busy (sleep 20 ms, ask again), then an RC that ends the wait with a warning.
  faults.injectResponse(apqn(5, 4), AP_RESPONSE.BUSY, { count: 1, instructions: ['tapq'] });
  faults.injectResponse(apqn(5, 4), AP_RESPONSE.DECONFIGURED, { count: 1, instructions: ['tapq'] });
  r = guestAqic(t, q!, apqn(5, 4), false, 0, 0);
  assert.deepEqual([r.status?.responseCode, r.cc, ms()], [AP_RESPONSE.NORMAL, 0, 180]);
  // 6.4.4: the guest ISC cannot be registered (no GISA): the NIB is unpinned again, RC 06.
  const origin = kvm.arch.gisa_int.origin;
  kvm.arch.gisa_int.origin = 0;
  r = guestAqic(t, q!, apqn(5, 4), true, 2, 0x20000);
  kvm.arch.gisa_int.origin = origin;
  assert.deepEqual([r.status?.responseCode, r.cc], [AP_RESPONSE.INVALID_ADDRESS, 3]);
  assert.deepEqual(state(), { saved: [0, 255], pinned: [[0x10, 1]], iscs: [0, 0, 0, 1, 0, 0, 0, 0] });
  assert.deepEqual(k.dmesg().slice(from).trimEnd().split('\n'), [
    '[    1.100000] vfio_ap_irq_enable: apqn 0504: response: 08',
    '[    1.260000] WARNING: CPU: 0 PID: 116 at drivers/s390/crypto/vfio_ap_ops.c vfio_ap_irq_disable',
    '[    1.260000] vfio_ap_irq_disable: ap_aqic status 5',
    '[    1.280000] WARNING: CPU: 0 PID: 118 at drivers/s390/crypto/vfio_ap_ops.c vfio_ap_wait_for_irqclear',
    '[    1.280000] vfio_ap_wait_for_irqclear: tapq rc 03: 0504',
  ]);
  assert.deepEqual(k.bugs, []);
});
