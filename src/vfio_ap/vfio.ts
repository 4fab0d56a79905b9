// vfio_ap as an mdev/VFIO driver: mdev probe/remove (including removal while a
// guest uses the device), open/close of the VFIO device (attaching to and
// detaching from the VM: pqap hook, KVM reference, CRYCB), the request callback
// VFIO core calls while it waits for userspace to let go, and the device ioctls.
import { E, type KGen } from '../kernel/index.js';
import { kvm_get_kvm, kvm_put_kvm, kvm_arch_crypto_clear_masks, kvm_s390_pqap_hook_set, kvm_s390_pqap_hook_clear, type Kvm } from '../kvm/index.js';
import {
  vfio_alloc_device,
  vfio_put_device,
  vfio_register_emulated_iommu_dev,
  vfio_unregister_group_dev,
  vfio_set_irqs_validate_and_prepare,
  vfio_irq_set_data,
  type VfioDeviceOps,
} from '../vfio/vfio_main.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_FLAGS_AP,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_AP_REQ_IRQ_INDEX,
  VFIO_AP_CFG_CHG_IRQ_INDEX,
  VFIO_AP_NUM_IRQS,
  VFIO_DEVICE_INFO_MINSZ,
  VFIO_IRQ_INFO_MINSZ,
  copy_from_user,
  copy_to_user,
  type VfioDeviceInfo,
  type VfioIrqInfo,
  type VfioIrqSet,
} from '../vfio/uapi.js';
import { eventfd_ctx_fdget, eventfd_ctx_put, eventfd_signal, type EventFdCtx } from '../vfio/eventfd.js';
import { mdev_get_drvdata, mdev_set_drvdata, type MdevDevice } from '../vfio/mdev.js';
import type { Vfio } from '../vfio/vfio_main.js';
import { MatrixMdev, type MatrixDev, type MatrixVdev } from './private.js';
import { get_update_locks_for_mdev, get_update_locks_for_kvm, release_update_locks } from './locks.js';
import { vfio_ap_mdev_update_guest_apcb, signal_guest_ap_cfg_changed, vfio_ap_mdev_unlink_fr_queues } from './ops.js';
import { vfio_ap_mdev_reset_queues } from './reset.js';
import { handle_pqap, vfio_ap_mdev_dma_unmap } from './irq.js';

// ------------------------------------------------------------------ attach / detach

/** The pqap hook set/cleared under the VM's rwsem held for write. */
function* set_pqap_hook(kvm: Kvm, mdev: MatrixMdev | null): KGen<void> {
  if (mdev) yield* kvm_s390_pqap_hook_set(kvm, mdev);
  else yield* kvm_s390_pqap_hook_clear(kvm);
}

/**
 * vfio_ap_mdev_set_kvm(): attach to the VM at open. One mdev per VM (-EPERM); the
 * driver takes its own KVM reference and pushes the existing shadow as is.
 */
export function* vfio_ap_mdev_set_kvm(md: MatrixDev, mdev: MatrixMdev, kvm: Kvm): KGen<number> {
  if (!kvm.arch.crypto.crycbd) return 0; // no CRYCB: open, but nothing to attach
  const how = md.pieces.attachHook;
  // Mainline claims the hook before looking for another mdev on the VM.
  if (how === 'mainline-before-check') yield* set_pqap_hook(kvm, mdev);
  const k = md.k;
  yield k.mutex_lock(md.guests_lock);
  yield k.mutex_lock(kvm.lock);
  if (md.mdev_list.some((m) => m !== mdev && m.kvm === kvm)) {
    yield k.mutex_unlock(kvm.lock);
    yield k.mutex_unlock(md.guests_lock);
    return -E.EPERM!;
  }
  if (how === 'checked-under-kvm-lock') yield* set_pqap_hook(kvm, mdev);
  yield k.mutex_lock(md.mdevs_lock);
  if (how === 'under-mdevs-lock') yield* set_pqap_hook(kvm, mdev);
  yield* kvm_get_kvm(kvm);
  mdev.kvm = kvm;
  yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
  yield* release_update_locks(md, { kvm });
  return 0;
}

/**
 * vfio_ap_mdev_unset_kvm(): detach at close. The hook goes first (waiting for a
 * PQAP handler still running), then the guest loses every APQN, every linked queue
 * is reset (freeing its interrupt resources while the KVM is still known), and the
 * driver's KVM reference is dropped. The shadow stays as it was.
 */
export function* vfio_ap_mdev_unset_kvm(md: MatrixDev, mdev: MatrixMdev): KGen<void> {
  const kvm = mdev.kvm;
  if (!kvm || !kvm.arch.crypto.crycbd) return;
  const k = md.k;
  if (md.pieces.attachHook === 'under-mdevs-lock') {
    const l = yield* get_update_locks_for_kvm(md, kvm);
    yield* set_pqap_hook(kvm, null);
    yield* detach_body(md, mdev, kvm);
    yield* release_update_locks(md, l);
    return;
  }
  yield* set_pqap_hook(kvm, null);
  const l = yield* get_update_locks_for_kvm(md, kvm);
  yield* detach_body(md, mdev, kvm);
  yield* release_update_locks(md, l);
  void k;
}

function* detach_body(md: MatrixDev, mdev: MatrixMdev, kvm: Kvm): KGen<void> {
  yield* kvm_arch_crypto_clear_masks(kvm);
  yield* vfio_ap_mdev_reset_queues(md, mdev);
  // VFIO core holds its own reference across the open window: this put is never
  // the last one, so the VM is never destroyed here (seed 001).
  yield* kvm_put_kvm(kvm);
  mdev.kvm = null;
}

// ------------------------------------------------------------------ VFIO device ops

/** vfio_ap_mdev_open_device(): without a VM associated with the group: -EINVAL. */
function* vfio_ap_mdev_open_device(md: MatrixDev, vdev: MatrixVdev): KGen<number> {
  if (!vdev.kvm) return -E.EINVAL!;
  return yield* vfio_ap_mdev_set_kvm(md, vdev.matrix_mdev, vdev.kvm);
}

/** vfio_ap_mdev_request(): userspace should release the device; the guest loses AP now. */
export function* vfio_ap_mdev_request(md: MatrixDev, vdev: MatrixVdev, count: number): KGen<void> {
  const k = md.k;
  const mdev = vdev.matrix_mdev;
  const l = yield* get_update_locks_for_mdev(md, mdev);
  if (mdev.kvm) {
    yield* kvm_arch_crypto_clear_masks(mdev.kvm);
    yield* signal_guest_ap_cfg_changed(md, mdev);
  }
  if (mdev.req_trigger) {
    if (count % 10 === 0) k.dev_notice(mdev.mdev.dev.log, `Relaying device request to user (#${count})`);
    yield* eventfd_signal(k, mdev.req_trigger);
  } else if (count === 0) {
    k.dev_notice(mdev.mdev.dev.log, 'No device request registered, blocked until released by user');
  }
  yield* release_update_locks(md, l);
}

function vfio_ap_mdev_get_device_info(arg: unknown): number {
  const info = copy_from_user<VfioDeviceInfo>(arg);
  if (!info) return -E.EFAULT!;
  if (info.argsz < VFIO_DEVICE_INFO_MINSZ) return -E.EINVAL!;
  info.flags = VFIO_DEVICE_FLAGS_AP | VFIO_DEVICE_FLAGS_RESET;
  info.num_regions = 0;
  info.num_irqs = VFIO_AP_NUM_IRQS;
  return copy_to_user(arg, info, ['argsz', 'flags', 'num_regions', 'num_irqs']) ? 0 : -E.EFAULT!;
}

function vfio_ap_get_irq_info(arg: unknown): number {
  const info = copy_from_user<VfioIrqInfo>(arg);
  if (!info) return -E.EFAULT!;
  if (info.argsz < VFIO_IRQ_INFO_MINSZ || info.index >= VFIO_AP_NUM_IRQS) return -E.EINVAL!;
  switch (info.index) {
    case VFIO_AP_REQ_IRQ_INDEX:
    case VFIO_AP_CFG_CHG_IRQ_INDEX:
      info.count = 1;
      info.flags = VFIO_IRQ_INFO_EVENTFD;
      break;
    default:
      return -E.EINVAL!;
  }
  return copy_to_user(arg, info, ['argsz', 'flags', 'index', 'count']) ? 0 : -E.EFAULT!;
}

/** vfio_ap_set_request_irq() / vfio_ap_set_cfg_change_irq(): -1 clears, >= 0 installs. */
function vfio_ap_set_trigger(md: MatrixDev, mdev: MatrixMdev, which: 'req_trigger' | 'cfg_chg_trigger', arg: unknown): number {
  const fd = vfio_irq_set_data(arg, 0);
  if (fd === null) return -E.EFAULT!;
  if (fd === -1) {
    if (mdev[which]) eventfd_ctx_put(mdev[which]!);
    mdev[which] = null;
    return 0;
  }
  if (fd < -1) return -E.EINVAL!;
  const ctx: EventFdCtx | number = eventfd_ctx_fdget(md.k, fd);
  if (typeof ctx === 'number') return ctx;
  if (mdev[which]) eventfd_ctx_put(mdev[which]!);
  mdev[which] = ctx;
  return 0;
}

function vfio_ap_set_irqs(md: MatrixDev, mdev: MatrixMdev, arg: unknown): number {
  const hdr = copy_from_user<VfioIrqSet>(arg);
  if (!hdr) return -E.EFAULT!;
  const r = vfio_set_irqs_validate_and_prepare(hdr, 1, VFIO_AP_NUM_IRQS, { data_size: 0 });
  if (r) return r;
  if (!(hdr.flags & VFIO_IRQ_SET_DATA_EVENTFD)) return -E.EINVAL!;
  if ((hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) !== VFIO_IRQ_SET_ACTION_TRIGGER) return -E.EINVAL!;
  switch (hdr.index) {
    case VFIO_AP_REQ_IRQ_INDEX:
      return vfio_ap_set_trigger(md, mdev, 'req_trigger', arg);
    case VFIO_AP_CFG_CHG_IRQ_INDEX:
      return vfio_ap_set_trigger(md, mdev, 'cfg_chg_trigger', arg);
    default:
      return -E.EINVAL!;
  }
}

/** vfio_ap_mdev_ioctl(): every command under mdevs_lock; unknown ones -EOPNOTSUPP. */
function* vfio_ap_mdev_ioctl(md: MatrixDev, vdev: MatrixVdev, cmd: number, arg: unknown): KGen<number> {
  const k = md.k;
  const mdev = vdev.matrix_mdev;
  yield k.mutex_lock(md.mdevs_lock);
  let ret: number;
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO:
      ret = vfio_ap_mdev_get_device_info(arg);
      break;
    case VFIO_DEVICE_RESET:
      ret = yield* vfio_ap_mdev_reset_queues(md, mdev);
      break;
    case VFIO_DEVICE_GET_IRQ_INFO:
      ret = vfio_ap_get_irq_info(arg);
      break;
    case VFIO_DEVICE_SET_IRQS:
      ret = vfio_ap_set_irqs(md, mdev, arg);
      break;
    default:
      ret = -E.EOPNOTSUPP!;
  }
  yield k.mutex_unlock(md.mdevs_lock);
  return ret;
}

/** vfio_ap_matrix_dev_ops */
export function vfio_ap_matrix_dev_ops(md: MatrixDev): VfioDeviceOps<MatrixVdev> {
  return {
    name: 'vfio-ap',
    // The vfio_device is embedded in the matrix_mdev: both go together.
    *release(vdev) {
      yield md.k.kfree(vdev.matrix_mdev);
    },
    open_device: (vdev) => vfio_ap_mdev_open_device(md, vdev),
    *close_device(vdev) {
      yield* vfio_ap_mdev_unset_kvm(md, vdev.matrix_mdev);
    },
    ioctl: (vdev, cmd, arg) => vfio_ap_mdev_ioctl(md, vdev, cmd, arg),
    request: (vdev, count) => vfio_ap_mdev_request(md, vdev, count),
    dma_unmap: (vdev, iova, length) => vfio_ap_mdev_dma_unmap(md, vdev.matrix_mdev, iova, length),
  };
}

// ------------------------------------------------------------------ mdev probe / remove

/** vfio_ap_mdev_probe(): a new mdev: its VFIO device, then onto mdev_list. */
export function* vfio_ap_mdev_probe(md: MatrixDev, vfio: Vfio, ops: VfioDeviceOps<MatrixVdev>, mdev: MdevDevice): KGen<number> {
  const k = md.k;
  const matrix_mdev = k.kzalloc('ap_matrix_mdev', new MatrixMdev(vfio, mdev, ops, md.info));
  matrix_mdev.pqap_hook = (vcpu) => handle_pqap(md, vcpu);
  const vdev = yield* vfio_alloc_device(matrix_mdev.vdev, 'vfio_device');
  if (typeof vdev === 'number') {
    yield k.kfree(matrix_mdev);
    return vdev;
  }
  const ret: number = yield* vfio_register_emulated_iommu_dev(vdev);
  if (ret) {
    yield* vfio_put_device(vdev);
    return ret;
  }
  mdev_set_drvdata(mdev, matrix_mdev);
  const lock = md.pieces.mdevListLock === 'guests_lock' ? md.guests_lock : md.mdevs_lock;
  yield k.mutex_lock(lock);
  md.mdev_list.unshift(matrix_mdev);
  yield k.mutex_unlock(lock);
  return 0;
}

/**
 * vfio_ap_mdev_remove(): VFIO core first waits until userspace closed the device
 * (asking through the request callback every 10 s); then the queues are reset, the
 * mdev leaves the list and is freed. Never fails.
 */
export function* vfio_ap_mdev_remove(md: MatrixDev, mdev: MdevDevice): KGen<void> {
  const k = md.k;
  const matrix_mdev = mdev_get_drvdata<MatrixMdev>(mdev);
  if (md.pieces.removeWhileOpen === 'ebusy-leak' && matrix_mdev.vdev.open_count > 0) {
    // Seed 004 v3: -EBUSY, which mdev core ignores: the device goes, the object stays.
    k.dev_warn(mdev.dev.log, 'vfio_ap_mdev_remove: device in use, -EBUSY');
    return;
  }
  yield* vfio_unregister_group_dev(matrix_mdev.vdev);
  yield k.mutex_lock(md.guests_lock);
  yield k.mutex_lock(md.mdevs_lock);
  yield* vfio_ap_mdev_reset_queues(md, matrix_mdev);
  vfio_ap_mdev_unlink_fr_queues(matrix_mdev);
  const i = md.mdev_list.indexOf(matrix_mdev);
  if (i >= 0) md.mdev_list.splice(i, 1);
  yield k.mutex_unlock(md.mdevs_lock);
  yield k.mutex_unlock(md.guests_lock);
  yield* vfio_put_device(matrix_mdev.vdev);
}
