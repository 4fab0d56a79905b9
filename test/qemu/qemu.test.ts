// QEMU with a vfio-ap device on the VFIO/mdev core and the test double driver: start-up and
// hotplug, the one-device ap-bus, REQ → unplug, CFG_CHG → CRW → CHSC SEI → guest rescan, reset,
// and the guest AP bus (scenarios 27, 34 and the guest side of 15/16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type KGen } from '../../src/kernel/index.js';
import { AP_RESPONSE, apqn, maskFromIds, maskIds } from '../../src/hw/index.js';
import { guest_tapq, kvm_arch_crypto_set_masks, kvm_s390_crycb_masks, kvm_vm_release } from '../../src/kvm/index.js';
import { eventfd_signal, sys_close } from '../../src/vfio/index.js';
import { Qemu, QemuError, type QemuEnv, type QemuOptions } from '../../src/qemu/index.js';
import { MDEV_TYPE_DIR, UUID1, UUID2, makeStack, runFor, type Stack, type DoubleMdev } from '../vfio/double.js';

const DEV = (u: string) => `/sys/bus/mdev/devices/${u}`;
const S = 1_000_000_000;

function env(st: Stack): QemuEnv {
  return { k: st.k, kvm: st.kvm, vfio: st.vfio, sysfs: st.h.sysfs };
}

function boot(opts: QemuOptions = {}, uuids = [UUID1]): { st: Stack; q: Qemu } {
  const st = makeStack();
  for (const u of uuids) st.h.write(`${MDEV_TYPE_DIR}/create`, u);
  const q = Qemu.launch(env(st), { devices: [{ sysfsdev: DEV(UUID1), id: 'hostdev0' }], ...opts });
  st.k.run(); // the guest's boot-time AP bus scan
  return { st, q };
}

const ALL = ['card05', 'card06', '05.0004', '05.00ab', '06.0004', '06.00ab'];

test('start with -device vfio-ap: the VM gets the matrix, the guest AP bus creates its devices; threads are named like QEMU\'s', () => {
  const { st, q } = boot();
  const kvm = q.kvm!;
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), [5, 6]);
  assert.equal(q.devices.length, 1);
  assert.equal(q.devices[0]!.name, UUID1);
  assert.deepEqual(q.guest!.devices(), ALL);
  assert.deepEqual(q.guest!.scanLog, ['boot']);
  const names = new Set(q.tasks.map((t) => t.comm));
  assert.ok(names.has('qemu-system-s39'), [...names].join(','));
  assert.ok(names.has('CPU 0/KVM'));
  assert.equal(kvm.users_count.read(), 3);
  // Periodic rescans every 30 s.
  runFor(st.k, 61 * S);
  assert.deepEqual(q.guest!.scanLog, ['boot', 'timer', 'timer']);
  q.run(q.quit());
  assert.ok(!st.k.lifetime.isLive(kvm), 'quit closed the device, the group and the VM fd');
  st.h.write(`/sys/devices/vfio_ap/matrix/${UUID1}/remove`, '1');
  assert.equal(st.k.kmemleak_scan(), 0);
  assert.deepEqual(st.k.bugs, []);
});

test('at most one vfio-ap per machine: a second -device aborts start-up, a second device_add is refused', () => {
  const st = makeStack();
  st.h.write(`${MDEV_TYPE_DIR}/create`, UUID1);
  st.h.write(`${MDEV_TYPE_DIR}/create`, UUID2);
  assert.throws(
    () => Qemu.launch(env(st), { devices: [{ sysfsdev: DEV(UUID1) }, { sysfsdev: DEV(UUID2) }] }),
    (e: unknown) => e instanceof QemuError && e.message === `qemu-system-s390x: -device vfio-ap,sysfsdev=${DEV(UUID2)}: No 'ap-bus' bus found for device 'vfio-ap'`,
  );
  assert.equal(st.devices[0]!.open_count, 0, 'the failed start-up released the first device');
  const q = Qemu.launch(env(st), { devices: [{ sysfsdev: DEV(UUID1), id: 'a' }] });
  assert.equal(q.run(q.device_add({ sysfsdev: DEV(UUID2), id: 'b' })), "No 'ap-bus' bus found for device 'vfio-ap'");
  assert.equal(st.devices[1]!.open_count, 0);
  // Without the `ap` CPU feature there is no ap-bus at all.
  const st2 = makeStack();
  st2.h.write(`${MDEV_TYPE_DIR}/create`, UUID1);
  assert.throws(() => Qemu.launch(env(st2), { cpu: { ap: false }, devices: [{ sysfsdev: DEV(UUID1) }] }), /No 'ap-bus' bus found for device 'vfio-ap'/);
  q.run(q.quit());
  assert.deepEqual(st.k.bugs, []);
});

test('device_del / device_add on a running guest: detach clears the CRYCB, in-flight requests are lost, the guest drops its devices at the next scan', () => {
  const { st, q } = boot();
  const kvm = q.kvm!;
  const g = q.guest!;
  const Q = apqn(5, 4);
  assert.equal(q.run(g.send(Q)), AP_RESPONSE.NORMAL);
  assert.equal(g.queues.get(Q)!.pending.length, 1);
  assert.equal(q.run(q.device_del('hostdev0')), null);
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), []);
  assert.equal(st.devices[0]!.open_count, 0);
  assert.equal(kvm.users_count.read(), 1);
  // The guest still has the device; its next DQAP hits RC 01.
  assert.equal(q.run(g.poll(Q)), AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(g.queues.get(Q)!.state, 'error');
  assert.equal(g.queues.get(Q)!.last_err_rc, 1);
  assert.equal(g.lost, 1);
  runFor(st.k, 30 * S + 1);
  assert.deepEqual(g.devices(), []);
  // Plug it back.
  assert.equal(q.run(q.device_add({ sysfsdev: `/sys/devices/vfio_ap/matrix/${UUID1}`, id: 'hostdev0' })), null);
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), [5, 6]);
  runFor(st.k, 30 * S + 1);
  assert.deepEqual(g.devices(), ALL);
  assert.equal(q.run(q.device_del('nope')), "Device 'nope' not found");
  q.run(q.quit());
  assert.deepEqual(st.k.bugs, []);
});

test('#27 mdev remove while the guest runs: REQ → QEMU unplugs the device → close → remove completes', () => {
  const { st, q } = boot();
  const kvm = q.kvm!;
  const d = q.devices[0]!;
  const rm = st.k.spawn('bash', st.h.sysfs.write_gen(st.k, `/sys/devices/vfio_ap/matrix/${UUID1}/remove`, '1\n'));
  runFor(st.k, S);
  assert.ok(rm.done, 'remove completed within the first 10 s wait');
  assert.deepEqual(rm.exitValue, { ok: true, count: 2 });
  assert.equal(d.req_handled, 1);
  assert.equal(q.devices.length, 0);
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), []);
  assert.ok(st.k.lifetime.isLive(kvm));
  assert.equal(kvm.users_count.read(), 1);
  assert.equal(st.h.sysfs.find(`/sys/devices/vfio_ap/matrix/${UUID1}`), null);
  assert.match(st.k.dmesg(), /Relaying device request to user \(#0\)/);
  // The CFG_CHG signalled by the request callback made the guest rescan at once.
  assert.ok(q.guest!.scanLog.includes('cfg_chg'));
  assert.deepEqual(q.guest!.devices(), []);
  q.run(q.quit());
  st.k.run();
  assert.equal(st.k.kmemleak_scan(), 0);
  assert.deepEqual(st.k.bugs, []);
});

/** What vfio_ap does on a hot plug with a guest attached: push the shadow, signal CFG_CHG. */
function* hotplug(st: Stack, v: DoubleMdev, apids: number[]): KGen<void> {
  const k = st.k;
  const kvm = v.kvm_attached!;
  yield k.mutex_lock(st.guests_lock);
  yield k.mutex_lock(kvm.lock);
  yield k.mutex_lock(st.mdevs_lock);
  v.apm = maskFromIds(apids);
  yield* kvm_arch_crypto_set_masks(kvm, v.apm, v.aqm, v.adm);
  if (v.cfg_chg_trigger) yield* eventfd_signal(k, v.cfg_chg_trigger);
  yield k.mutex_unlock(st.mdevs_lock);
  yield k.mutex_unlock(kvm.lock);
  yield k.mutex_unlock(st.guests_lock);
}

test('CFG_CHG: eventfd → event queue + CRW → guest CHSC SEI (NT0, rs 5, cc 3) → AP bus rescan without waiting 30 s', () => {
  const { st, q } = boot();
  const v = st.devices[0]!;
  const g = q.guest!;
  q.run(hotplug(st, v, [5]));
  runFor(st.k, S);
  assert.equal(q.crws, 1);
  assert.equal(q.devices[0]!.cfg_handled, 1);
  assert.deepEqual(g.scanLog, ['boot', 'cfg_chg']);
  assert.deepEqual(g.devices(), ['card05', '05.0004', '05.00ab']);
  assert.deepEqual(q.cfgChgEvents, [], 'the guest consumed the event');
  assert.deepEqual(q.chsc_sei(), { response_code: 5 }, 'no event information stored');
  q.run(hotplug(st, v, [5, 6]));
  runFor(st.k, S);
  assert.deepEqual(g.devices(), ALL);
  q.run(q.quit());
  assert.deepEqual(st.k.bugs, []);
});

test('system_reset → VFIO_DEVICE_RESET; a failure is reported like hw/vfio/ap.c; the guest rescans', () => {
  const { st, q } = boot();
  const v = st.devices[0]!;
  const before = v.resets;
  q.run(q.system_reset());
  assert.equal(v.resets, before + 1);
  v.resetFails = true;
  q.run(q.system_reset());
  assert.equal(q.stderr.at(-1), `qemu-system-s390x: vfio_ap_reset: failed to reset ${UUID1} device: Input/output error`);
  st.k.run();
  assert.deepEqual(q.guest!.devices(), ALL);
  q.run(q.quit());
  assert.deepEqual(st.k.bugs, []);
});

test('#34 -cpu ...,apft=off: APQNs answer TAPQ but the guest AP bus creates no devices', () => {
  const { st, q } = boot({ cpu: { apft: false } });
  assert.equal(q.run(guest_tapq(q.kvm!.vcpus[0]!, apqn(5, 4))).cc, 0);
  assert.deepEqual(q.guest!.devices(), []);
  assert.equal(q.guest!.scans, 1);
  q.run(q.quit());
  assert.deepEqual(st.k.bugs, []);
});

test('#28 at the process level: QEMU closes the VM fd first, the device later; struct kvm dies in the closing task', () => {
  const { st, q } = boot();
  const kvm = q.kvm!;
  q.guest!.stop();
  q.running = false;
  q.run((function* (): KGen<void> {
    yield* kvm_vm_release(kvm);
  })());
  assert.ok(st.k.lifetime.isLive(kvm));
  assert.equal(kvm.users_count.read(), 2);
  const fd = q.devices[0]!.device_fd;
  q.run(sys_close(q.k, q.files, fd));
  assert.ok(!st.k.lifetime.isLive(kvm));
  assert.deepEqual(st.k.bugs, []);
});

