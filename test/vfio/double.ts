// A minimal vfio_ap stand-in for the VFIO/mdev/QEMU tests (never shipped in src/): the matrix
// parent on its own bus, an mdev driver with one type, and VFIO device ops that attach the mdev
// to the VM (CRYCB = a fixed matrix), answer the vfio-ap ioctls per vfio-ap-driver.md 9, signal
// the REQ/CFG_CHG eventfds, and reset queues with ZAPQ.
import { E, type KGen, type Kernel, type Mutex } from '../../src/kernel/index.js';
import { Host, type HostOptions } from '../../src/host/index.js';
import { Device, bus_register, device_register, driver_register, root_device_register, type BusType, type DeviceDriver } from '../../src/base/index.js';
import { apqn, maskFromIds, type ApMask } from '../../src/hw/index.js';
import { KvmHost, kvm_arch_crypto_clear_masks, kvm_arch_crypto_set_masks, kvm_get_kvm, kvm_put_kvm, type Kvm } from '../../src/kvm/index.js';
import {
  MdevParent,
  VfioProcess,
  VFIO_AP_CFG_CHG_IRQ_INDEX,
  VFIO_AP_NUM_IRQS,
  VFIO_AP_REQ_IRQ_INDEX,
  VFIO_DEVICE_API_AP_STRING,
  VFIO_DEVICE_FLAGS_AP,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_INFO_MINSZ,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MINSZ,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VfioDevice,
  copy_from_user,
  copy_to_user,
  eventfd_ctx_fdget,
  eventfd_ctx_put,
  eventfd_signal,
  mdev_get_drvdata,
  mdev_init,
  mdev_register_driver,
  mdev_register_parent,
  mdev_set_drvdata,
  vfio_alloc_device,
  vfio_init,
  vfio_irq_set_data,
  vfio_put_device,
  vfio_register_emulated_iommu_dev,
  vfio_set_irqs_validate_and_prepare,
  vfio_unregister_group_dev,
  type EventFdCtx,
  type Mdev,
  type MdevDevice,
  type MdevDriver,
  type MdevType,
  type Vfio,
  type VfioDeviceInfo,
  type VfioDeviceOps,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioPieces,
} from '../../src/vfio/index.js';

export const UUID1 = '783e6dbb-ea0e-411f-94e2-717eaad438bf';
export const UUID2 = '90c6c135-ad44-41d0-b1b7-bae47de48627';
export const MDEV_TYPE_DIR = '/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';

/** The mdev's VFIO device (struct ap_matrix_mdev, reduced). */
export class DoubleMdev extends VfioDevice {
  mdev!: MdevDevice;
  /** The driver's own VM pointer (matrix_mdev->kvm), with its own reference. */
  kvm_attached: Kvm | null = null;
  req_trigger: EventFdCtx | null = null;
  cfg_chg_trigger: EventFdCtx | null = null;
  apm: ApMask = maskFromIds([5, 6]);
  aqm: ApMask = maskFromIds([4, 0xab]);
  adm: ApMask = maskFromIds([4, 0xab]);
  resets = 0;
  /** Make RESET fail with -EIO (scenario 26). */
  resetFails = false;
  log: string[] = [];
}

export interface Stack {
  h: Host;
  k: Kernel;
  kvm: KvmHost;
  mdev: Mdev;
  vfio: Vfio;
  matrix: Device;
  parent: MdevParent;
  type: MdevType;
  drv: MdevDriver;
  guests_lock: Mutex;
  mdevs_lock: Mutex;
  devices: DoubleMdev[];
}

export interface StackOptions {
  pieces?: Partial<VfioPieces>;
  /** mdev driver counts with get_available instead of max_instances. */
  getAvailable?: boolean;
  maxInstances?: number;
  profile?: string;
}

/** A booted host with KVM, mdev and VFIO core and the double driver loaded. */
export function makeStack(opts: StackOptions = {}): Stack {
  // vfio_ap: false — the real driver (when the host loads it) stays out; this double replaces it.
  const hostOpts: Record<string, unknown> = { profile: opts.profile ?? 'default', vfio_ap: false };
  const h = Host.boot(hostOpts as HostOptions);
  const k = h.k;
  const kvm = new KvmHost(k, h.machine);
  const mdev = mdev_init(h.core);
  const vfio = vfio_init(h.core, opts.pieces ? { pieces: opts.pieces } : {});
  const st = { h, k, kvm, mdev, vfio, devices: [] as DoubleMdev[], guests_lock: k.mutex_init('&matrix_dev->guests_lock'), mdevs_lock: k.mutex_init('&matrix_dev->mdevs_lock') } as Partial<Stack> as Stack;
  const type: MdevType = { sysfs_name: 'passthrough', pretty_name: 'VFIO AP Passthrough Device' };
  const ops = doubleOps(st);
  const drv: MdevDriver = {
    device_api: VFIO_DEVICE_API_AP_STRING,
    ...(opts.getAvailable ? { get_available: () => 65536 - st.devices.length } : { max_instances: opts.maxInstances ?? 65536 }),
    driver: { name: 'vfio_ap_mdev' },
    *probe(m: MdevDevice): KGen<number> {
      const v: DoubleMdev | number = yield* vfio_alloc_device(new DoubleMdev(vfio, m.dev, ops), 'ap_matrix_mdev');
      if (typeof v === 'number') return v;
      v.mdev = m;
      const ret: number = yield* vfio_register_emulated_iommu_dev(v);
      if (ret) {
        yield* vfio_put_device(v);
        return ret;
      }
      yield k.mutex_lock(st.guests_lock);
      mdev_set_drvdata(m, v);
      st.devices.push(v);
      yield k.mutex_unlock(st.guests_lock);
      return 0;
    },
    *remove(m: MdevDevice): KGen<void> {
      const v = mdev_get_drvdata<DoubleMdev>(m);
      yield* vfio_unregister_group_dev(v);
      yield k.mutex_lock(st.guests_lock);
      st.devices.splice(st.devices.indexOf(v), 1);
      yield k.mutex_unlock(st.guests_lock);
      yield* vfio_put_device(v);
    },
  };
  const parent = new MdevParent();
  // The vfio_ap module init: root device, matrix bus + driver, the matrix device, mdev parent.
  const t = k.spawn('modprobe', (function* (): KGen<void> {
    const root = yield* root_device_register(h.core, 'vfio_ap');
    const bus: BusType = { name: 'matrix', match: () => 1 };
    bus_register(h.core, bus);
    const mdrv: DeviceDriver = { name: 'vfio_ap', bus };
    yield* driver_register(mdrv);
    const matrix = new Device(h.core, 'matrix');
    matrix.parent = root;
    matrix.bus = bus;
    yield* device_register(matrix);
    st.matrix = matrix;
    if ((yield* mdev_register_driver(mdev, drv)) !== 0) throw new Error('mdev_register_driver');
    if ((yield* mdev_register_parent(parent, matrix, drv, [type])) !== 0) throw new Error('mdev_register_parent');
  })());
  k.runUntilExit(t);
  if (t.error) throw t.error;
  Object.assign(st, { parent, type, drv });
  return st;
}

function doubleOps(st: Stack): VfioDeviceOps<DoubleMdev> {
  return {
    name: 'vfio_ap_mdev',
    *open_device(v): KGen<number> {
      const k = st.k;
      const kvm = v.kvm;
      if (!kvm) return -E.EINVAL;
      yield k.mutex_lock(st.guests_lock);
      yield k.mutex_lock(kvm.lock);
      yield k.mutex_lock(st.mdevs_lock);
      let ret = 0;
      if (st.devices.some((o) => o !== v && o.kvm_attached === kvm)) ret = -E.EPERM;
      else {
        yield* kvm_get_kvm(kvm);
        v.kvm_attached = kvm;
        yield* kvm_arch_crypto_set_masks(kvm, v.apm, v.aqm, v.adm);
        if (v.cfg_chg_trigger) yield* eventfd_signal(k, v.cfg_chg_trigger);
      }
      yield k.mutex_unlock(st.mdevs_lock);
      yield k.mutex_unlock(kvm.lock);
      yield k.mutex_unlock(st.guests_lock);
      return ret;
    },
    *close_device(v): KGen<void> {
      const k = st.k;
      const kvm = v.kvm_attached;
      if (!kvm) return;
      yield k.mutex_lock(st.guests_lock);
      yield k.mutex_lock(kvm.lock);
      yield k.mutex_lock(st.mdevs_lock);
      yield* kvm_arch_crypto_clear_masks(kvm);
      resetQueues(st, v);
      v.kvm_attached = null;
      yield k.mutex_unlock(st.mdevs_lock);
      yield k.mutex_unlock(kvm.lock);
      yield k.mutex_unlock(st.guests_lock);
      // The driver's put: never the last one while VFIO core holds its own.
      yield* k.fn('vfio_ap_mdev_put_kvm', kvm_put_kvm(kvm));
    },
    *ioctl(v, cmd, arg): KGen<number> {
      const k = st.k;
      yield k.mutex_lock(st.mdevs_lock);
      let ret: number;
      try {
        ret = yield* doubleIoctl(st, v, cmd, arg);
      } finally {
        yield k.mutex_unlock(st.mdevs_lock);
      }
      return ret;
    },
    *request(v, count): KGen<void> {
      const k = st.k;
      yield k.mutex_lock(st.guests_lock);
      const kvm = v.kvm_attached;
      if (kvm) yield k.mutex_lock(kvm.lock);
      yield k.mutex_lock(st.mdevs_lock);
      if (kvm) {
        yield* kvm_arch_crypto_clear_masks(kvm);
        if (v.cfg_chg_trigger) yield* eventfd_signal(k, v.cfg_chg_trigger);
      }
      if (v.req_trigger) {
        if (count % 10 === 0) k.dev_printk(5, v.dev.log, `Relaying device request to user (#${count})`);
        yield* eventfd_signal(k, v.req_trigger);
      } else if (count === 0) k.dev_printk(5, v.dev.log, 'No device request registered, blocked until released by user');
      yield k.mutex_unlock(st.mdevs_lock);
      if (kvm) yield k.mutex_unlock(kvm.lock);
      yield k.mutex_unlock(st.guests_lock);
    },
  };
}

function resetQueues(st: Stack, v: DoubleMdev): number {
  let rc = 0;
  for (const a of [5, 6]) for (const d of [4, 0xab]) {
    const r = st.h.machine.zapq(apqn(a, d));
    if (r.status.responseCode !== 0 && r.status.responseCode !== 1) rc = -E.EIO;
  }
  v.resets++;
  return v.resetFails ? -E.EIO : rc;
}

function* doubleIoctl(st: Stack, v: DoubleMdev, cmd: number, arg: unknown): KGen<number> {
  const k = st.k;
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO: {
      const info = copy_from_user<VfioDeviceInfo>(arg);
      if (!info) return -E.EFAULT;
      if (info.argsz < VFIO_DEVICE_INFO_MINSZ) return -E.EINVAL;
      info.flags = VFIO_DEVICE_FLAGS_AP | VFIO_DEVICE_FLAGS_RESET;
      info.num_regions = 0;
      info.num_irqs = VFIO_AP_NUM_IRQS;
      return copy_to_user(arg, info, ['argsz', 'flags', 'num_regions', 'num_irqs']) ? 0 : -E.EFAULT;
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
      const info = copy_from_user<VfioIrqInfo>(arg);
      if (!info) return -E.EFAULT;
      if (info.argsz < VFIO_IRQ_INFO_MINSZ || info.index >= VFIO_AP_NUM_IRQS) return -E.EINVAL;
      info.count = 1;
      info.flags = VFIO_IRQ_INFO_EVENTFD;
      return copy_to_user(arg, info, ['argsz', 'flags', 'index', 'count']) ? 0 : -E.EFAULT;
    }
    case VFIO_DEVICE_SET_IRQS: {
      const hdr = copy_from_user<VfioIrqSet>(arg);
      if (!hdr) return -E.EFAULT;
      const out = { data_size: 0 };
      let ret = vfio_set_irqs_validate_and_prepare(hdr, 1, VFIO_AP_NUM_IRQS, out);
      if (ret) return ret;
      if (!(hdr.flags & VFIO_IRQ_SET_ACTION_TRIGGER)) return -E.EINVAL;
      if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) !== VFIO_IRQ_SET_ACTION_TRIGGER) return -E.EINVAL;
      if ((hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) !== VFIO_IRQ_SET_DATA_EVENTFD) return -E.EINVAL;
      const fd = vfio_irq_set_data(arg, 0);
      if (fd === null) return -E.EFAULT;
      const slot = hdr.index === VFIO_AP_REQ_IRQ_INDEX ? 'req_trigger' : hdr.index === VFIO_AP_CFG_CHG_IRQ_INDEX ? 'cfg_chg_trigger' : null;
      if (!slot) return -E.EINVAL;
      if (fd === -1) {
        if (v[slot]) eventfd_ctx_put(v[slot]!);
        v[slot] = null;
      } else if (fd >= 0) {
        const ctx = eventfd_ctx_fdget(k, fd);
        if (typeof ctx === 'number') return ctx;
        if (v[slot]) eventfd_ctx_put(v[slot]!);
        v[slot] = ctx;
      } else ret = -E.EINVAL;
      return ret;
    }
    case VFIO_DEVICE_RESET:
      return resetQueues(st, v);
    default:
      return -E.EOPNOTSUPP;
  }
}

// ---------------------------------------------------------------- a bare VFIO user

/** A process using VFIO directly (what QEMU does, step by step), on the double's stack. */
export class VfioUser extends VfioProcess {
  constructor(readonly st: Stack) {
    super({ k: st.k, vfio: st.vfio, sysfs: st.h.sysfs }, 'user');
  }
}

/**
 * Lets `ns` of virtual time pass with the scheduler running, and stops there even if tasks
 * are still waiting with timeouts (k.run() would keep advancing the clock for them).
 */
export function runFor(k: Kernel, ns: number): void {
  const t = k.spawn('test-clock', (function* (): KGen<void> {
    yield k.sleep_ns(ns);
  })());
  k.runUntilExit(t);
}
