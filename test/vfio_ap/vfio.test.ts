// vfio_ap through VFIO directly (a bare VFIO user, like QEMU step by step):
// open without a VM, a second mdev on one VM, VM destruction while open, the
// device ioctls, the reset busy loop, and PQAP racing detach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestHost, U1, U2, guestSetup, matrixMdev } from './helpers.js';
import { VfioUser, type Stack } from '../vfio/double.js';
import { E, RandomStrategy, Lockdep, type KGen } from '../../src/kernel/index.js';
import { kvm_create_vm, kvm_vm_release, guest_aqic } from '../../src/kvm/index.js';
import { apqn, AP_RESPONSE } from '../../src/hw/index.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DEVICE_RESET,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  sys_ioctl,
} from '../../src/vfio/index.js';

function user(t: TestHost): VfioUser {
  return new VfioUser({ k: t.h.k, vfio: t.h.vfio!, h: t.h } as unknown as Stack);
}

function host(): { t: TestHost; m1: string; m2: string } {
  const t = new TestHost();
  t.free('-5,-6', '-4,-0xab');
  const m1 = t.mdev(U1);
  const m2 = t.mdev(U2);
  t.ok(`${m1}/assign_adapter`, '5');
  t.ok(`${m1}/assign_domain`, '4');
  t.ok(`${m2}/assign_adapter`, '6');
  t.ok(`${m2}/assign_domain`, '4');
  return { t, m1, m2 };
}

test('scenario 24: open without a VM associated fails with EINVAL and changes nothing', () => {
  const { t } = host();
  const u = user(t);
  assert.equal(u.run(u.setup(U1, null)), 0);
  assert.equal(u.run(u.open(U1)), -E.EINVAL);
  assert.equal(matrixMdev(t, U1).kvm, null);
  u.run(u.closeAll(null));
  t.check('open without VM');
});

test('scenario 25: a second mdev opened for the same VM gets EPERM; the first stays attached', () => {
  const { t } = host();
  const kvm = kvm_create_vm(t.h.kvm, { name: 'vm' });
  const a = user(t);
  const b = user(t);
  assert.equal(a.run(a.setup(U1, kvm)), 0);
  assert.ok(a.run(a.open(U1)) >= 0);
  assert.equal(b.run(b.setup(U2, kvm)), 0);
  assert.equal(b.run(b.open(U2)), -E.EPERM);
  assert.equal(matrixMdev(t, U1).kvm, kvm);
  assert.equal(matrixMdev(t, U2).kvm, null);
  assert.equal(kvm.arch.crypto.pqap_hook, matrixMdev(t, U1), 'the fixed driver checks before claiming the hook');
  t.check('second open refused');
  b.run(b.closeAll(kvm));
  a.run(a.closeAll(kvm));
  t.h.k.spawn('qemu', kvm_vm_release(kvm));
  t.h.settle();
  t.check('teardown');
});

test('scenario 28: the VM fd closed while the device is open: the VM lives until close, then dies outside every lock', () => {
  const { t } = host();
  const kvm = kvm_create_vm(t.h.kvm, { name: 'vm' });
  const u = user(t);
  u.run(u.setup(U1, kvm));
  assert.ok(u.run(u.open(U1)) >= 0);
  assert.equal(kvm.users_count.read(), 3);
  u.run(kvm_vm_release(kvm) as KGen<unknown>);
  assert.ok(t.h.k.lifetime.isLive(kvm), 'VFIO and the driver keep it');
  assert.equal(kvm.users_count.read(), 2);
  u.run(u.close());
  assert.equal(t.h.k.lifetime.isLive(kvm), false, 'destroyed after close returned');
  assert.equal(matrixMdev(t, U1).kvm, null);
  u.run(u.closeAll(null));
  t.check('VM gone');
});

test('scenario 39: device ioctls of the real driver', () => {
  const { t } = host();
  const kvm = kvm_create_vm(t.h.kvm, { name: 'vm' });
  const u = user(t);
  u.run(u.setup(U1, kvm));
  u.run(u.open(U1));
  const io = (cmd: number, arg: unknown) => u.run(u.ioctl(cmd, arg));
  const info = { argsz: 16, flags: 0, num_regions: 9, num_irqs: 9 };
  assert.equal(io(VFIO_DEVICE_GET_INFO, info), 0);
  assert.deepEqual(info, { argsz: 16, flags: 0x21, num_regions: 0, num_irqs: 2 });
  assert.equal(io(VFIO_DEVICE_GET_INFO, { argsz: 15, flags: 0, num_regions: 0, num_irqs: 0 }), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_GET_INFO, null), -E.EFAULT);
  const irq = { argsz: 16, flags: 0, index: 1, count: 0 };
  assert.equal(io(VFIO_DEVICE_GET_IRQ_INFO, irq), 0);
  assert.deepEqual(irq, { argsz: 16, flags: 1, index: 1, count: 1 });
  assert.equal(io(VFIO_DEVICE_GET_IRQ_INFO, { argsz: 16, flags: 0, index: 2, count: 0 }), -E.EINVAL);
  const TRIG = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_EVENTFD;
  const s = (o: object) => ({ argsz: 24, flags: TRIG, index: 0, start: 0, count: 1, data: [-1], ...o });
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ index: 2 })), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: VFIO_IRQ_SET_DATA_EVENTFD })), -E.EINVAL, 'no ACTION_TRIGGER');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ flags: VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER })), -E.EINVAL, 'DATA_BOOL');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [-2] })), -E.EINVAL);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [u.group_fd] })), -E.EINVAL, 'not an eventfd');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [99] })), -E.EBADF);
  const ev = u.eventfd('req');
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [ev.fd] })), 0);
  assert.equal(matrixMdev(t, U1).req_trigger, ev.ctx);
  assert.equal(io(VFIO_DEVICE_SET_IRQS, s({ data: [-1] })), 0);
  assert.equal(matrixMdev(t, U1).req_trigger, null);
  assert.equal(io(VFIO_DEVICE_RESET, undefined), 0);
  assert.equal(io(0x3b7f, undefined), -E.EOPNOTSUPP);
  u.run(u.closeAll(kvm));
  t.h.k.spawn('qemu', kvm_vm_release(kvm));
  t.h.settle();
  t.check('ioctls');
});

test('scenario 38: a busy ZAPQ is re-issued after TAPQ reports non-busy; waits in 20 ms steps; final status stored', () => {
  const { t, q } = guestSetup();
  const m = t.h.machine;
  m.faults.injectResponse(apqn(5, 4), AP_RESPONSE.BUSY, { instructions: ['zapq'], count: 1 });
  const zapqs: number[] = [];
  const orig = m.zapq.bind(m);
  m.zapq = (a, o) => {
    if (a === apqn(5, 4)) zapqs.push(t.h.k.now());
    return orig(a, o);
  };
  q!.run(q!.system_reset());
  assert.deepEqual(q!.stderr, [], 'VFIO_DEVICE_RESET returned 0');
  assert.equal(zapqs.length, 2, 'the busy one and the re-issue');
  assert.equal(zapqs[1]! - zapqs[0]!, 20_000_000, 'after one 20 ms poll');
  assert.equal(matrixMdev(t, U1).qtable.get(apqn(5, 4))!.reset_status.responseCode, 0);
});

test('scenario 31: a PQAP handler racing detach never touches a freed mdev; afterwards PQAP gets RC 01, CC 3', () => {
  const lockdep = new Lockdep();
  for (let seed = 0; seed < 40; seed++) {
    const { t, q } = guestSetup({ host: { strategy: new RandomStrategy(seed), lockdep } });
    const k = t.h.k;
    const kvm = q!.kvm!;
    const vcpu = kvm.vcpus[0]!;
    k.spawn('CPU 0/KVM', (function* (): KGen {
      for (let i = 0; i < 3; i++) yield* guest_aqic(vcpu, apqn(5, 4), { ir: i % 2 === 0, isc: 3 }, 0x10000);
    })());
    k.spawn('qemu-system-s39', q!.device_del('hostdev0') as KGen<unknown>);
    t.h.advance(200_000_000);
    t.check(`seed ${seed}`);
    const r = t.h.k.spawn('CPU 0/KVM', guest_aqic(vcpu, apqn(5, 4), { ir: true, isc: 3 }, 0x10000) as KGen<unknown>);
    t.h.advance(1_000_000);
    const res = r.exitValue as { status?: { responseCode: number }; cc?: number };
    assert.deepEqual([res.status?.responseCode, res.cc], [AP_RESPONSE.Q_NOT_AVAIL, 3], `seed ${seed}`);
    assert.equal(kvm.memslots.pinned.size, 0, 'interrupt resources released at detach');
  }
  assert.deepEqual(lockdep.reports, []);
});

test('scenario 36: unmapping the DMA range holding a saved NIB disables that queue\'s interrupts', () => {
  const { t, q } = guestSetup();
  const k = t.h.k;
  const d = q!.devices[0]!;
  const io = (cmd: number, arg: unknown) => q!.run(sys_ioctl(k, q!.files, d.container_fd, cmd, arg));
  assert.equal(io(VFIO_IOMMU_MAP_DMA, { argsz: 32, flags: 3, vaddr: 0x7f00_0000_0000, iova: 0, size: 0x4000_0000 }), 0);
  assert.equal(io(VFIO_IOMMU_MAP_DMA, { argsz: 31, flags: 3, vaddr: 0, iova: 0, size: 4096 }), -E.EINVAL);
  const vcpu = q!.kvm!.vcpus[0]!;
  for (const [a, nib] of [[apqn(5, 4), 0x10000], [apqn(6, 4), 0x20000]] as const) {
    const r = q!.run(guest_aqic(vcpu, a, { ir: true, isc: 3 }, nib));
    assert.equal(r.status?.responseCode, 0);
  }
  const mm = matrixMdev(t, U1);
  // Unmapping the whole range: both queues lose their interrupts and pins.
  assert.equal(io(VFIO_IOMMU_UNMAP_DMA, { argsz: 24, flags: 0, iova: 0, size: 0x4000_0000 }), 0);
  assert.equal(mm.qtable.get(apqn(5, 4))!.saved_iova, 0);
  assert.equal(mm.qtable.get(apqn(6, 4))!.saved_iova, 0);
  assert.equal(t.h.machine.tapq(apqn(5, 4)).status.irqEnabled, false);
  assert.equal(q!.kvm!.memslots.pinned.size, 0);
  t.check('dma unmap');
});
