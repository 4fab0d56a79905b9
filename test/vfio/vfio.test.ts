// VFIO core: open/close with the KVM reference, the lifetime of struct kvm across close (seed 001
// and its historical variant), unregistration while open, ioctl validation and eventfds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, type KGen } from '../../src/kernel/index.js';
import { maskIds } from '../../src/hw/index.js';
import { kvm_create_vm, kvm_get_kvm_safe, kvm_s390_crycb_masks, kvm_vfio_file_add, kvm_vm_release, type Kvm } from '../../src/kvm/index.js';
import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  historicalVfioPieces,
  sys_ioctl,
  vfio_file_set_kvm,
  vfio_open,
  type VfioDeviceInfo,
  type VfioIrqInfo,
} from '../../src/vfio/index.js';
import { MDEV_TYPE_DIR, UUID1, UUID2, VfioUser, makeStack, runFor, type Stack } from './double.js';

const S10 = 10_000_000_000;

function created(opts: Parameters<typeof makeStack>[0] = {}, uuids = [UUID1]): Stack {
  const st = makeStack(opts);
  for (const u of uuids) st.h.write(`${MDEV_TYPE_DIR}/create`, u);
  return st;
}

function vm(st: Stack): Kvm {
  return kvm_create_vm(st.kvm, { name: 'guest' });
}

test('#13 open without a VM → -EINVAL and VFIO holds nothing; with a VM the CRYCB gets the matrix', () => {
  const st = created();
  const u = new VfioUser(st);
  assert.equal(u.run(u.setup(UUID1, null)), 0);
  assert.equal(u.run(u.open(UUID1)), -E.EINVAL);
  assert.equal(st.devices[0]!.open_count, 0);
  const kvm = vm(st);
  const gf = u.group_file!;
  assert.equal(u.run(kvm_vfio_file_add(kvm, gf, (to) => vfio_file_set_kvm(gf, to))), 0);
  assert.ok(u.run(u.open(UUID1)) >= 3);
  assert.equal(st.devices[0]!.kvm, kvm);
  assert.equal(kvm.users_count.read(), 3, 'VM fd + VFIO core + driver');
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), [5, 6]);
  u.run(u.closeAll(kvm));
  assert.equal(kvm.users_count.read(), 1);
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), []);
  assert.equal(st.devices[0]!.kvm, null);
  assert.deepEqual(st.k.bugs, []);
});

test('#14 a second mdev opened for the same VM → -EPERM; the failed open returns VFIO\'s reference', () => {
  const st = created({}, [UUID1, UUID2]);
  const kvm = vm(st);
  const a = new VfioUser(st);
  const b = new VfioUser(st);
  a.run(a.setup(UUID1, kvm));
  assert.ok(a.run(a.open(UUID1)) > 0);
  b.run(b.setup(UUID2, kvm));
  assert.equal(b.run(b.open(UUID2)), -E.EPERM);
  assert.equal(kvm.users_count.read(), 3);
  assert.equal(st.devices[1]!.kvm, null);
  b.run(b.closeAll(kvm));
  a.run(a.closeAll(kvm));
  assert.equal(kvm.users_count.read(), 1);
  assert.deepEqual(st.k.bugs, []);
});

test('group file: one open at a time (-EBUSY); GET_DEVICE_FD needs a container (-EINVAL) and a known name (-ENODEV)', () => {
  const st = created();
  const u = new VfioUser(st);
  const g = u.run(vfio_open(st.vfio, u.files, '/dev/vfio/0'));
  assert.ok(g >= 3);
  assert.equal(u.run(vfio_open(st.vfio, u.files, '/dev/vfio/0')), -E.EBUSY);
  assert.equal(u.run(vfio_open(st.vfio, u.files, '/dev/vfio/7')), -E.ENOENT);
  assert.equal(u.run(sys_ioctl(st.k, u.files, g, VFIO_GROUP_GET_DEVICE_FD, UUID1)), -E.EINVAL);
  assert.equal(u.run(sys_ioctl(st.k, u.files, g, VFIO_GROUP_GET_DEVICE_FD, UUID2)), -E.ENODEV);
  assert.equal(u.run(sys_ioctl(st.k, u.files, g, 0x1234, undefined)), -E.ENOTTY);
  assert.equal(u.run(sys_ioctl(st.k, u.files, 99, VFIO_DEVICE_RESET, undefined)), -E.EBADF);
  assert.equal(st.devices[0]!.registration, 1, 'failed opens give their registration back');
  assert.deepEqual(st.k.bugs, []);
});

test('#28 the VM fd closed while the device is open: struct kvm survives until close, dies after the locks, never inside close_device', () => {
  const st = created();
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm), 'qemu');
  u.run(u.open(UUID1), 'qemu');
  // Watch VM destruction: it calls set_kvm(NULL) for the group; record where it runs.
  const seen: Array<{ ops: string[]; held: string[]; safe: boolean }> = [];
  const gf = u.group_file!;
  u.run(kvm_vfio_file_add(kvm, {}, function* (to): KGen<void> {
    if (to !== null) return;
    const t = st.k.current!;
    const safe: boolean = yield* kvm_get_kvm_safe(kvm);
    seen.push({ ops: [...t.ops], held: t.held.map((h) => h.lock.cls.name), safe });
  }));
  u.run(kvm_vm_release(kvm), 'qemu');
  assert.ok(st.k.lifetime.isLive(kvm), 'VFIO core and the driver still hold references');
  assert.equal(kvm.users_count.read(), 2);
  assert.equal(seen.length, 0);
  u.run(u.close(), 'qemu');
  assert.ok(!st.k.lifetime.isLive(kvm));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.safe, false, 'kvm_get_kvm_safe fails once destruction started');
  assert.deepEqual(seen[0]!.held, [], 'no lock held by the destroying task');
  assert.ok(seen[0]!.ops.includes('vfio_device_put_kvm'), seen[0]!.ops.join(' > '));
  assert.ok(!seen[0]!.ops.includes('vfio_ap_mdev close_device'));
  assert.equal(st.devices[0]!.kvm, null);
  void gf;
  assert.deepEqual(st.k.bugs, []);
});

test('historical piece (2022: VFIO takes no reference): the driver\'s put is the last, under the group lock → deadlock in set_kvm(NULL)', () => {
  const st = created({ pieces: historicalVfioPieces });
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm), 'qemu');
  u.run(u.open(UUID1), 'qemu');
  assert.equal(kvm.users_count.read(), 2, 'VM fd + driver only');
  u.run(kvm_vm_release(kvm), 'qemu');
  const t = u.spawn(u.close(), 'qemu');
  st.k.run();
  assert.ok(!t.done);
  assert.ok(st.k.bugs.some((b) => b.kind === 'lockdep' && /possible recursive locking detected/.test(b.text) && /&group->group_lock/.test(b.text)), st.k.bugs.map((b) => b.title).join('\n'));
});

test('unregister while open: request(0) at once and every 10 s until close; never EBUSY; no leak', () => {
  const st = created();
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm), 'qemu');
  u.run(u.open(UUID1), 'qemu');
  const req = u.eventfd('req');
  const set = (index: number, fd: number) => ({ argsz: 24, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 1, data: [fd] });
  assert.equal(u.run(u.ioctl(VFIO_DEVICE_SET_IRQS, set(0, req.fd))), 0);
  const v = st.devices[0]!;
  const rm = st.k.spawn('bash', st.h.sysfs.write_gen(st.k, `/sys/devices/vfio_ap/matrix/${UUID1}/remove`, '1\n'));
  runFor(st.k, 1);
  assert.equal(v.requests, 1);
  assert.equal(req.ctx.signals, 1);
  assert.deepEqual(maskIds(kvm_s390_crycb_masks(kvm).apm), [], 'the guest lost its AP access at once');
  runFor(st.k, S10 + 1);
  assert.equal(v.requests, 2);
  runFor(st.k, S10);
  assert.equal(v.requests, 3);
  assert.equal(req.ctx.signals, 3);
  assert.ok(!rm.done);
  assert.match(st.k.dmesg(), new RegExp(`vfio_ap_mdev ${UUID1}: Relaying device request to user \\(#0\\)`));
  // Userspace gives up the device: de-assign the trigger, close.
  assert.equal(u.run(u.ioctl(VFIO_DEVICE_SET_IRQS, set(0, -1))), 0);
  u.run(u.closeAll(kvm), 'qemu');
  st.k.run();
  assert.ok(rm.done);
  assert.deepEqual(rm.exitValue, { ok: true, count: 2 });
  assert.equal(st.h.sysfs.find(`/sys/devices/vfio_ap/matrix/${UUID1}`), null);
  u.run(kvm_vm_release(kvm), 'qemu');
  assert.equal(st.k.kmemleak_scan(), 0);
  assert.deepEqual(st.k.bugs, []);
});

test('unregister without a REQ eventfd: logged once; a signal to the remover makes the wait uninterruptible with the kernel\'s warning', () => {
  const st = created();
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm), 'qemu');
  u.run(u.open(UUID1), 'qemu');
  const rm = st.k.spawn('bash', st.h.sysfs.write_gen(st.k, `/sys/devices/vfio_ap/matrix/${UUID1}/remove`, '1'));
  runFor(st.k, 3 * S10 + 1);
  assert.equal(st.devices[0]!.requests, 4);
  assert.equal(st.k.dmesg().split('\n').filter((l) => l.includes('No device request registered, blocked until released by user')).length, 1);
  st.k.send_sig(rm);
  runFor(st.k, 1);
  assert.match(st.k.dmesg(), new RegExp(`vfio_ap_mdev ${UUID1}: Device is currently in use, task "bash" \\(${rm.pid}\\) blocked until device is released`));
  runFor(st.k, S10);
  assert.ok(!rm.done);
  u.run(u.closeAll(kvm), 'qemu');
  st.k.run();
  assert.ok(rm.done);
  assert.deepEqual(rm.exitValue, { ok: true, count: 1 });
  assert.deepEqual(st.k.bugs, []);
});

test('device ioctls: GET_INFO / GET_IRQ_INFO / SET_IRQS / RESET validation and errno (vfio-ap-driver 9)', () => {
  const st = created();
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm));
  u.run(u.open(UUID1));
  const io = (cmd: number, arg: unknown) => u.run(u.ioctl(cmd, arg));
  // GET_INFO
  const info: VfioDeviceInfo = { argsz: 20, flags: 0, num_regions: 7, num_irqs: 0, cap_offset: 99 };
  assert.equal(io(VFIO_DEVICE_GET_INFO, info), 0);
  assert.deepEqual(info, { argsz: 20, flags: 0x21, num_regions: 0, num_irqs: 2, cap_offset: 99 }, 'only the 16-byte prefix is written');
  assert.equal(io(VFIO_DEVICE_GET_INFO, { argsz: 15, flags: 0, num_regions: 0, num_irqs: 0 }), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_GET_INFO, null), -E.EFAULT);
  // GET_IRQ_INFO
  for (const index of [0, 1]) {
    const irq: VfioIrqInfo = { argsz: 16, flags: 0, index, count: 0 };
    assert.equal(io(VFIO_DEVICE_GET_IRQ_INFO, irq), 0);
    assert.deepEqual(irq, { argsz: 16, flags: 1, index, count: 1 });
  }
  assert.equal(io(VFIO_DEVICE_GET_IRQ_INFO, { argsz: 16, flags: 0, index: 2, count: 0 }), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_GET_IRQ_INFO, { argsz: 15, flags: 0, index: 0, count: 0 }), -E.EINVAL);
  // SET_IRQS
  const ev = u.eventfd('cfg');
  const TRIG = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  const s = (o: Partial<{ argsz: number; flags: number; index: number; start: number; count: number; data: number[] }>) => ({ argsz: 24, flags: TRIG, index: 1, start: 0, count: 1, data: [ev.fd], ...o });
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ argsz: 19 })), -E.EINVAL, 'argsz < 20');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ argsz: 23 })), -E.EINVAL, 'no room for one int32');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ index: 2 })), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: TRIG | 0x40 })), -E.EINVAL, 'undefined flag bit');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ start: 1 })), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ count: 2, argsz: 28 })), -E.EINVAL, 'start + count > 1');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER })), -E.EINVAL, 'two data types');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK })), -E.EINVAL, 'no ACTION_TRIGGER');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER })), -E.EINVAL, 'data type must be EVENTFD');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [] })), -E.EFAULT, 'the fd lies outside the buffer');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ count: 0, data: [] })), -E.EFAULT, 'the fd is read even with count 0');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, null), -E.EFAULT);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [77] })), -E.EBADF);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [u.group_fd] })), -E.EINVAL, 'not an eventfd');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [-2] })), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({})), 0);
  assert.equal(st.devices[0]!.cfg_chg_trigger, ev.ctx);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [-1] })), 0);
  assert.equal(st.devices[0]!.cfg_chg_trigger, null);
  // RESET, unknown, FEATURE (core)
  assert.equal(io(VFIO_DEVICE_RESET, undefined), 0);
  st.devices[0]!.resetFails = true;
  assert.equal(io(VFIO_DEVICE_RESET, undefined), -E.EIO);
  assert.equal(io(0x3b99, undefined), -E.EOPNOTSUPP);
  assert.equal(io(VFIO_DEVICE_FEATURE, { argsz: 16 }), -E.EINVAL);
  u.run(u.closeAll(kvm));
  assert.deepEqual(st.k.bugs, []);
});

test('eventfds count signals; a CRYCB push signals CFG_CHG when registered before open', () => {
  const st = created();
  const kvm = vm(st);
  const u = new VfioUser(st);
  u.run(u.setup(UUID1, kvm));
  const notes: number[] = [];
  const ev = u.eventfd('cfg');
  ev.ctx.listeners.push((c) => notes.push(c.count));
  u.run(u.open(UUID1));
  assert.equal(ev.ctx.signals, 0, 'no trigger installed at open');
  u.run(u.ioctl(VFIO_DEVICE_SET_IRQS, { argsz: 24, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index: 1, start: 0, count: 1, data: [ev.fd] }));
  u.run(u.close());
  u.run(u.open(UUID1));
  assert.equal(ev.ctx.signals, 1, 'triggers persist across close/re-open; attach pushes the shadow');
  assert.deepEqual(notes, [1]);
  u.run(u.closeAll(kvm));
  assert.deepEqual(st.k.bugs, []);
});
