// VFIO core (drivers/vfio/vfio_main.c): struct vfio_device and its ops, registration of
// emulated-IOMMU devices (mdevs), the device file (open/close under the device set lock, ioctl
// dispatch), unregistration that waits for userspace with the driver's request callback, and
// the KVM reference VFIO holds across the open/close window.
//
// KVM association (spec vfio-ap-driver 5.4/5.7, seeds 000/001):
//   * QEMU attaches the group file to the VM's kvm-vfio device; KVM calls vfio_file_set_kvm(),
//     which only stores the pointer in the group under the group lock (group.ts).
//   * At the first open, with the group lock and the device set lock held, VFIO takes its own
//     reference with kvm_get_kvm_safe() and stores the VM in device.kvm for open_device.
//   * After the last close VFIO drops that reference *after* releasing the group lock (the 2023
//     fix of seed 001), so a driver's put in close_device is never the last one and VM
//     destruction (which calls vfio_file_set_kvm(NULL) → group lock) never runs under it.
//     (Linux ≥ 6.5 instead guards group.kvm with a separate kvm_ref_lock spinlock; same effect.)
//   Both steps form one *piece* (VfioPieces.kvm_ref) so the checker can substitute the 2022 design, in which
//   VFIO took no reference and the driver's own put in close_device could be the final one.
import { E, SideTable, type KGen, type Kernel, type Mutex, type OpToken, type WaitQueue, type Kref } from '../kernel/index.js';
import { class_register, type Class, type Device, type DriverCore } from '../base/index.js';
import { kvm_get_kvm_safe, kvm_put_kvm, type Kvm } from '../kvm/index.js';
import { KFile, fput_deferred, type FileOps } from './file.js';
import { VFIO_DEVICE_FEATURE, VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_IRQ_SET_MINSZ, type VfioIrqSet } from './uapi.js';
import { vfio_device_remove_group, vfio_device_set_group, vfio_group_use_container, type VfioGroup } from './group.js';

// ---------------------------------------------------------------- pieces

/**
 * Replaceable piece of VFIO core's KVM handling (mutants plug in here): who holds a KVM
 * reference across the open/close window. One piece, because the get at the first open and the
 * put after the last close only make sense as a pair.
 */
export interface VfioPieces {
  /**
   * 'vfio-safe' (default, >= 2023): at the first open (group lock and device set lock held) VFIO
   * takes its own reference with kvm_get_kvm_safe(); after the last close it drops it with no
   * VFIO lock held. 'none' (2022 design): `device->kvm = group->kvm` without a reference; the
   * driver's own kvm_get_kvm in open_device races VM destruction (seed 000) and its put in
   * close_device can be the last one, under the group lock (seed 001).
   */
  kvm_ref: 'vfio-safe' | 'none';
}

/** Default (≥ 2023): VFIO's own safe reference. */
export function* vfio_device_get_kvm_safe(device: VfioDevice, kvm: Kvm): KGen<void> {
  device.vfio.k.lockdep_assert_held(device.dev_set!.lock);
  const ok: boolean = yield* kvm_get_kvm_safe(kvm);
  if (ok) device.kvm = kvm;
}

/** Default (≥ 2023): the put after the group lock was released. */
export function* vfio_device_put_kvm(device: VfioDevice, kvm: Kvm): KGen<void> {
  yield* device.vfio.k.fn('vfio_device_put_kvm', kvm_put_kvm(kvm));
}

/**
 * 2022 design (historical): `device->kvm = device->group->kvm` without a reference; the driver
 * must kvm_get_kvm in open_device and put in close_device — under the group lock.
 */
export function* vfio_device_get_kvm_raw(device: VfioDevice, kvm: Kvm): KGen<void> {
  device.kvm = kvm;
}

/** 2022 design: nothing to put (VFIO held no reference). */
export function* vfio_device_put_kvm_none(_device: VfioDevice, _kvm: Kvm): KGen<void> {}

/** The get/put pair of each kvm_ref choice. */
const kvmRefSteps = {
  'vfio-safe': { get: vfio_device_get_kvm_safe, put: vfio_device_put_kvm },
  none: { get: vfio_device_get_kvm_raw, put: vfio_device_put_kvm_none },
} as const;

export const defaultVfioPieces: VfioPieces = Object.freeze({ kvm_ref: 'vfio-safe' });

/** The 2022 (pre-seed-001-fix) pieces, for the checker and tests. */
export const historicalVfioPieces: VfioPieces = Object.freeze({ kvm_ref: 'none' });

// ---------------------------------------------------------------- the module

export interface VfioOptions {
  pieces?: Partial<VfioPieces>;
}

/** vfio.ko on one kernel: the group list and lock, the "vfio" class, device indexes. */
export class Vfio {
  readonly k: Kernel;
  readonly pieces: VfioPieces;
  /** vfio.group_lock: protects group_list. */
  readonly group_lock: Mutex;
  readonly group_list: VfioGroup[] = [];
  /** class "vfio": /sys/class/vfio/<group> (the /dev/vfio/<group> char devices). */
  readonly class: Class;
  /** @internal vfio.device_ida */
  nextDeviceIndex = 0;

  constructor(
    readonly core: DriverCore,
    opts: VfioOptions = {},
  ) {
    this.k = core.k;
    this.pieces = { ...defaultVfioPieces, ...opts.pieces };
    this.group_lock = core.k.mutex_init('vfio.group_lock');
    this.class = { name: 'vfio' };
    class_register(core, this.class);
  }

  /** Groups by /dev/vfio/<name>. */
  groupByName(name: string): VfioGroup | null {
    return this.group_list.find((g) => g.dev.name === name) ?? null;
  }
}

/** vfio_init(): loads VFIO core on this kernel. */
export function vfio_init(core: DriverCore, opts: VfioOptions = {}): Vfio {
  return new Vfio(core, opts);
}

// ---------------------------------------------------------------- struct vfio_device

/**
 * struct vfio_device_ops. Every callback runs in the calling task and may sleep. `D` is the
 * driver's device type (the struct embedding vfio_device, e.g. ap_matrix_mdev).
 */
export interface VfioDeviceOps<D extends VfioDevice = VfioDevice> {
  readonly name: string;
  /** vfio_init_device(): 0 or -errno. */
  init?(vdev: D): KGen<number>;
  /** Last vfio_put_device(), before the memory is freed. */
  release?(vdev: D): KGen<void>;
  /** First open, under the device set lock; device.kvm is set if the group has a VM. */
  open_device?(vdev: D): KGen<number>;
  /** Last close, under the device set lock (and the group lock). */
  close_device?(vdev: D): KGen<void>;
  /** Any device ioctl VFIO core does not handle itself. Missing → -EINVAL. */
  ioctl?(vdev: D, cmd: number, arg: unknown): KGen<number>;
  /** Unregistration while open: asks the driver to get userspace to release the device. */
  request?(vdev: D, count: number): KGen<void>;
  /** DMA unmap notification (emulated IOMMU). */
  dma_unmap?(vdev: D, iova: number, length: number): KGen<void>;
}

/** struct vfio_device_set: devices opened/closed under one lock. */
export interface VfioDeviceSet {
  readonly lock: Mutex;
  readonly device_list: VfioDevice[];
}

/**
 * struct vfio_device. Drivers embed it by extending the class (container_of becomes `as`):
 * `class MatrixMdev extends VfioDevice { ... }`.
 */
export class VfioDevice {
  /** device->kvm: valid between the first open and the last close (see the pieces). */
  kvm: Kvm | null = null;
  /** Opens of the device file(s) (vfio_device->open_count), under dev_set->lock. */
  open_count = 0;
  dev_set: VfioDeviceSet | null = null;
  group: VfioGroup | null = null;
  /** "vfio%d" index. */
  index = -1;
  /** Registration count (device->refcount): 1 while registered + 1 per open device file. */
  registration = 0;
  /** device->comp: completed when the registration count drops to zero. */
  readonly comp: { done: boolean; readonly wq: WaitQueue };
  /** The struct device's reference (vfio_put_device). */
  readonly kref: Kref<VfioDevice>;
  /** apsim: request callbacks issued by vfio_unregister_group_dev. */
  requests = 0;

  constructor(
    readonly vfio: Vfio,
    /** The parent device (for an mdev: &mdev->dev). */
    readonly dev: Device,
    readonly ops: VfioDeviceOps<any>,
  ) {
    this.comp = { done: false, wq: vfio.k.init_waitqueue_head('vfio_device comp') };
    this.kref = vfio.k.kref_init<VfioDevice>(this, 'vfio_device');
  }
}

/**
 * vfio_alloc_device(): kzalloc's the driver's object (already constructed) and runs
 * vfio_init_device (ops.init). The object, or a negative errno (freed).
 */
export function* vfio_alloc_device<T extends VfioDevice>(vdev: T, type = 'vfio_device'): KGen<T | number> {
  const k = vdev.vfio.k;
  k.kzalloc(type, vdev);
  if (vdev.ops.init) {
    const r: number = yield* k.fn(`${vdev.ops.name} init`, vdev.ops.init(vdev));
    if (r) {
      yield k.kfree(vdev);
      return r;
    }
  }
  return vdev;
}

/** vfio_put_device(): the last reference runs ops.release and frees the object. */
export function* vfio_put_device(vdev: VfioDevice): KGen<void> {
  const k = vdev.vfio.k;
  yield k.kref_put(vdev.kref, (d: VfioDevice) => vfio_device_release(d));
}

function* vfio_device_release(vdev: VfioDevice): KGen<void> {
  const k = vdev.vfio.k;
  if (vdev.ops.release) yield* k.fn(`${vdev.ops.name} release`, vdev.ops.release(vdev));
  yield k.kfree(vdev);
}

/** vfio_assign_device_set(): devices sharing `key` share one open/close lock. */
const devSets = new SideTable<object, VfioDeviceSet>('devSets');
export function vfio_assign_device_set(device: VfioDevice, key: object): void {
  let ds = devSets.get(key);
  if (!ds) devSets.set(key, (ds = { lock: device.vfio.k.mutex_init('&dev_set->lock'), device_list: [] }));
  device.dev_set = ds;
  ds.device_list.push(device);
}

/** vfio_register_emulated_iommu_dev(): 0 or -errno. */
export function vfio_register_emulated_iommu_dev(device: VfioDevice): KGen<number> {
  return device.vfio.k.fn('vfio_register_emulated_iommu_dev', __vfio_register_dev(device));
}

function* __vfio_register_dev(device: VfioDevice): KGen<number> {
  const vfio = device.vfio;
  // A device without a set gets a singleton set for itself.
  if (!device.dev_set) vfio_assign_device_set(device, device);
  device.index = vfio.nextDeviceIndex++;
  const ret: number = yield* vfio_device_set_group(device, 'emulated');
  if (ret) return ret;
  // Refcounting can't start until the driver calls register.
  device.registration = 1;
  device.comp.done = false;
  // vfio_device_group_register()
  const group = device.group!;
  yield vfio.k.mutex_lock(group.device_lock);
  group.device_list.push(device);
  yield vfio.k.mutex_unlock(group.device_lock);
  return 0;
}

/** vfio_device_try_get_registration() */
export function vfio_device_try_get_registration(device: VfioDevice): boolean {
  if (device.registration === 0) return false;
  device.registration++;
  return true;
}

/** vfio_device_put_registration(): the last put completes device->comp. */
export function* vfio_device_put_registration(device: VfioDevice): KGen<void> {
  if (--device.registration === 0) {
    device.comp.done = true;
    yield device.vfio.k.wake_up(device.comp.wq);
  }
}

/** HZ * 10 */
export const VFIO_UNREGISTER_WAIT_NS = 10_000_000_000;

/**
 * vfio_unregister_group_dev(): no new opens; then, while the device is open, the driver's
 * request(count) immediately and again every 10 s until the last close. The first wait is
 * interruptible; after a signal the wait continues uninterruptibly with a warning. Never fails.
 */
export function vfio_unregister_group_dev(device: VfioDevice): KGen<void> {
  return device.vfio.k.fn('vfio_unregister_group_dev', __vfio_unregister_group_dev(device));
}

function* __vfio_unregister_group_dev(device: VfioDevice): KGen<void> {
  const k = device.vfio.k;
  const group = device.group!;
  // vfio_device_group_unregister(): no new VFIO_GROUP_GET_DEVICE_FD.
  yield k.mutex_lock(group.device_lock);
  const i0 = group.device_list.indexOf(device);
  if (i0 >= 0) group.device_list.splice(i0, 1);
  yield k.mutex_unlock(group.device_lock);
  yield* vfio_device_put_registration(device);
  let i = 0;
  let interrupted = false;
  let rc = device.comp.done ? 1 : 0;
  while (rc <= 0) {
    if (device.ops.request) {
      device.requests++;
      yield* k.fn(`${device.ops.name} request`, device.ops.request(device, i++));
    }
    if (interrupted) {
      rc = yield k.wait_event_timeout(device.comp.wq, () => device.comp.done, VFIO_UNREGISTER_WAIT_NS);
    } else {
      rc = yield wait_event_interruptible_timeout(k, device.comp.wq, () => device.comp.done, VFIO_UNREGISTER_WAIT_NS);
      if (rc < 0) {
        interrupted = true;
        const t = k.current!;
        k.dev_warn(device.dev.log, `Device is currently in use, task "${t.comm}" (${t.pid}) blocked until device is released`);
      }
    }
  }
  yield* vfio_device_remove_group(device);
}

/**
 * wait_for_completion_interruptible_timeout() on a completion modelled as flag + wait queue:
 * remaining ns (≥ 1), 0 on timeout, -ERESTARTSYS on a signal.
 */
function wait_event_interruptible_timeout(k: Kernel, wq: WaitQueue, cond: () => boolean, ns: number): OpToken {
  const tok: OpToken = k.wait_event_timeout(wq, cond, ns);
  k.current!.interruptible = true;
  return tok;
}

// ---------------------------------------------------------------- the device file

/** struct vfio_device_file */
export interface VfioDeviceFile {
  readonly device: VfioDevice;
  readonly group: VfioGroup;
  /** Set once the open succeeded (ioctls before that: -EINVAL). */
  access_granted: boolean;
}

/** vfio_df_open(): dev_set->lock held. */
export function* vfio_df_open(df: VfioDeviceFile): KGen<number> {
  const device = df.device;
  const k = device.vfio.k;
  k.lockdep_assert_held(device.dev_set!.lock);
  device.open_count++;
  if (device.open_count === 1) {
    const ret: number = yield* vfio_df_device_first_open(df);
    if (ret) device.open_count--;
    return ret;
  }
  return 0;
}

function* vfio_df_device_first_open(df: VfioDeviceFile): KGen<number> {
  const device = df.device;
  const k = device.vfio.k;
  if (!device.dev.driver) return -E.ENODEV; // try_module_get(device->dev->driver->owner)
  let ret: number = yield* vfio_group_use_container(df.group);
  if (ret) return ret;
  if (device.ops.open_device) {
    ret = yield* k.fn(`${device.ops.name} open_device`, device.ops.open_device(device));
    if (ret) {
      vfio_device_group_unuse_iommu(device);
      return ret;
    }
  }
  return 0;
}

/** vfio_df_close(): dev_set->lock held. */
export function* vfio_df_close(df: VfioDeviceFile): KGen<void> {
  const device = df.device;
  const k = device.vfio.k;
  k.lockdep_assert_held(device.dev_set!.lock);
  if (k.WARN_ON(device.open_count === 0, 'vfio_assert_device_open')) return;
  if (device.open_count === 1) {
    // vfio_df_device_last_close()
    if (device.ops.close_device) yield* k.fn(`${device.ops.name} close_device`, device.ops.close_device(device));
    vfio_device_group_unuse_iommu(device);
  }
  device.open_count--;
}

/** vfio_device_group_unuse_iommu(): the container user and its group file reference go. */
function vfio_device_group_unuse_iommu(device: VfioDevice): void {
  const group = device.group!;
  const k = device.vfio.k;
  if (k.WARN_ON(!group.container, 'vfio_device_group_unuse_iommu without container')) return;
  group.container_users--;
  if (group.opened_file) fput_deferred(k, group.opened_file);
}

/** vfio_df_group_open(): group lock → dev_set lock; VFIO's kvm reference at the first open. */
export function vfio_df_group_open(df: VfioDeviceFile): KGen<number> {
  return df.device.vfio.k.fn('vfio_df_group_open', __vfio_df_group_open(df));
}

function* __vfio_df_group_open(df: VfioDeviceFile): KGen<number> {
  const device = df.device;
  const vfio = device.vfio;
  const k = vfio.k;
  const group = df.group;
  yield k.mutex_lock(group.group_lock);
  if (!(group.container !== null)) {
    yield k.mutex_unlock(group.group_lock);
    return -E.EINVAL;
  }
  yield k.mutex_lock(device.dev_set!.lock);
  // Before the first open, take the VM associated with the group (if any).
  if (device.open_count === 0 && group.kvm) yield* kvmRefSteps[vfio.pieces.kvm_ref].get(device, group.kvm);
  const ret: number = yield* vfio_df_open(df);
  let put: Kvm | null = null;
  if (device.open_count === 0 && device.kvm) {
    put = device.kvm;
    device.kvm = null;
  }
  yield k.mutex_unlock(device.dev_set!.lock);
  yield k.mutex_unlock(group.group_lock);
  if (put) yield* kvmRefSteps[vfio.pieces.kvm_ref].put(device, put);
  return ret;
}

/** vfio_df_group_close(): the last close drops VFIO's kvm reference after both locks. */
export function vfio_df_group_close(df: VfioDeviceFile): KGen<void> {
  return df.device.vfio.k.fn('vfio_df_group_close', __vfio_df_group_close(df));
}

function* __vfio_df_group_close(df: VfioDeviceFile): KGen<void> {
  const device = df.device;
  const vfio = device.vfio;
  const k = vfio.k;
  const group = df.group;
  yield k.mutex_lock(group.group_lock);
  yield k.mutex_lock(device.dev_set!.lock);
  yield* vfio_df_close(df);
  let put: Kvm | null = null;
  if (device.open_count === 0 && device.kvm) {
    put = device.kvm;
    device.kvm = null;
  }
  yield k.mutex_unlock(device.dev_set!.lock);
  yield k.mutex_unlock(group.group_lock);
  if (put) yield* kvmRefSteps[vfio.pieces.kvm_ref].put(device, put);
}

/** vfio_device_fops */
export const vfio_device_fops: FileOps<KFile<VfioDeviceFile>> = Object.freeze({
  name: '[vfio-device]',
  *release(k: Kernel, f: KFile<VfioDeviceFile>): KGen<void> {
    const df = f.private_data;
    yield* k.fn('vfio_device_fops_release', (function* (): KGen<void> {
      yield* vfio_df_group_close(df);
      yield* vfio_device_put_registration(df.device);
      yield k.kfree(df);
    })());
  },
  *ioctl(k: Kernel, f: KFile<VfioDeviceFile>, cmd: number, arg: unknown): KGen<number> {
    const df = f.private_data;
    const device = df.device;
    if (!df.access_granted) return -E.EINVAL;
    if (cmd === VFIO_DEVICE_FEATURE) return -E.EINVAL; // no device_feature op (no migration for vfio-ap)
    if (!device.ops.ioctl) return -E.EINVAL;
    return yield* k.fn(`${device.ops.name} ioctl`, device.ops.ioctl(device, cmd, arg));
  },
});

/** vfio_device_open_file(): a device file with an open device, or -errno. */
export function* vfio_device_open_file(device: VfioDevice, group: VfioGroup): KGen<KFile<VfioDeviceFile> | number> {
  const k = device.vfio.k;
  const df: VfioDeviceFile = k.kzalloc('vfio_device_file', { device, group, access_granted: false });
  const ret: number = yield* vfio_df_group_open(df);
  if (ret) {
    yield k.kfree(df);
    return ret;
  }
  df.access_granted = true;
  return new KFile(vfio_device_fops, df);
}

// ---------------------------------------------------------------- ioctl helpers for drivers

/**
 * vfio_set_irqs_validate_and_prepare(): the generic SET_IRQS header checks. Returns 0 and the
 * payload size in `out.data_size`, or -EINVAL.
 */
export function vfio_set_irqs_validate_and_prepare(hdr: VfioIrqSet, num_irqs: number, max_irq_type: number, out: { data_size: number } | null): number {
  const minsz = VFIO_IRQ_SET_MINSZ;
  const U32_MAX = 0xffff_ffff;
  if (hdr.argsz < minsz || hdr.index >= max_irq_type || hdr.count >= U32_MAX - hdr.start || (hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) !== 0) return -E.EINVAL;
  if (out) out.data_size = 0;
  if (hdr.start >= num_irqs || hdr.start + hdr.count > num_irqs) return -E.EINVAL;
  let size: number;
  switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      return -E.EINVAL;
  }
  if (size) {
    if (hdr.argsz - minsz < hdr.count * size) return -E.EINVAL;
    if (!out) return -E.EINVAL;
    out.data_size = size * hdr.count;
  }
  return 0;
}

/**
 * get_user() of the i-th payload element after the SET_IRQS header (e.g. the eventfd): the
 * value, or null when it lies outside the caller's buffer (-EFAULT).
 */
export function vfio_irq_set_data(arg: unknown, i = 0): number | null {
  if (arg === null || typeof arg !== 'object') return null;
  const d = (arg as VfioIrqSet).data;
  if (!d || i >= d.length) return null;
  return d[i]!;
}


