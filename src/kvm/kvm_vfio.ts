// KVM devices and the KVM-VFIO pseudo device (virt/kvm/kvm_main.c, virt/kvm/vfio.c).
//
// How VFIO plugs in
// -----------------
// Userspace (QEMU) associates a VFIO group/device file with a VM through the kvm-vfio device
// (KVM_DEV_VFIO_FILE_ADD). KVM then calls back into VFIO: vfio_file_set_kvm(file, kvm). apsim's
// VFIO layer provides that callback as a generator and registers it together with the file:
//
//     const rc = yield* kvm_vfio_file_add(kvm, group, (kvm) => vfio_file_set_kvm(group, kvm));
//
// Contract of `setKvm(kvm | null)`:
//   * setKvm(kvm) runs inside kvm_vfio_file_add, with the kvm-vfio device's `&kv->lock` held.
//     It must only *remember* the pointer (VFIO's group->kvm), not take a reference: the pointer is
//     valid during the callback only (seed 000). VFIO takes its own reference later, at first open,
//     with kvm_get_kvm_safe(), and must drop it after close *without* holding the lock that its
//     setKvm callback takes (seed 001).
//   * setKvm(null) runs (a) from kvm_vfio_file_del, with `&kv->lock` held, and (b) from VM
//     destruction: kvm_put_kvm → kvm_destroy_vm → kvm_destroy_devices → kvm-vfio destroy, in the
//     task that dropped the last kvm reference, with no KVM lock held, while users_count is 0 and
//     the VM's vCPUs and CRYCB are already freed. If that task holds the lock setKvm takes (VFIO's
//     group lock, as 2023's close path did), it deadlocks on itself: that is seed 001.
//
// The device fd reference is folded into the VM fd's (see kvm.ts): kvm_vfio_file_add creates the
// VM's kvm-vfio device on first use, as QEMU's vfio_kvm_device_add_fd does.

import type { KGen } from '../kernel/ops.js';
import type { Mutex } from '../kernel/locks.js';
import { E } from '../kernel/errno.js';
import type { Kvm } from './kvm.js';

/** struct kvm_device_ops, the parts used. */
export interface KvmDeviceOps {
  readonly name: string;
  /** Called under kvm->lock when the device is created. */
  create(dev: KvmDevice): void;
  /** Called by kvm_destroy_devices during VM destruction; frees the device. */
  destroy(dev: KvmDevice): KGen<void>;
}

/** struct kvm_device */
export interface KvmDevice<P = unknown> {
  readonly ops: KvmDeviceOps;
  readonly kvm: Kvm;
  private: P;
}

/** VFIO's callback: vfio_file_set_kvm(file, kvm) for one file. */
export type VfioSetKvm = (kvm: Kvm | null) => KGen<void>;

/** struct kvm_vfio_file */
export interface KvmVfioFile {
  /** The VFIO group or device file (opaque to KVM; compared by identity). */
  readonly file: object;
  readonly set_kvm: VfioSetKvm;
}

/** struct kvm_vfio: the kvm-vfio device's private data. */
export interface KvmVfio {
  readonly lock: Mutex;
  readonly file_list: KvmVfioFile[];
}

/** kvm_vfio_file_set_kvm(): calls VFIO's exported vfio_file_set_kvm for this file. */
function* kvm_vfio_file_set_kvm(kvm: Kvm, kvf: KvmVfioFile, to: Kvm | null): KGen<void> {
  yield* kvm.host.k.fn('vfio_file_set_kvm', kvf.set_kvm(to));
}

/**
 * kvm_vfio_destroy(): every attached VFIO file gets set_kvm(NULL) and is released (fput), then the
 * device is freed. Runs from kvm_destroy_devices, i.e. inside VM destruction.
 */
function* kvm_vfio_destroy(dev: KvmDevice): KGen<void> {
  const k = dev.kvm.host.k;
  const kv = dev.private as KvmVfio;
  for (const kvf of kv.file_list.splice(0)) {
    yield* kvm_vfio_file_set_kvm(dev.kvm, kvf, null);
    yield k.kfree(kvf);
  }
  yield k.kfree(kv);
  yield k.kfree(dev);
}

/** kvm_vfio_ops */
export const kvm_vfio_ops: KvmDeviceOps = Object.freeze({
  name: 'kvm-vfio',
  create(dev: KvmDevice): void {
    const k = dev.kvm.host.k;
    // Only one kvm-vfio device per VM (kvm_vfio_create returns -EBUSY for a second one).
    dev.private = k.kzalloc('kvm_vfio', { lock: k.mutex_init('&kv->lock'), file_list: [] } satisfies KvmVfio);
  },
  destroy: kvm_vfio_destroy,
});

/** kvm_ioctl_create_device(): creates a device on the VM under kvm->lock. */
export function* kvm_create_device(kvm: Kvm, ops: KvmDeviceOps): KGen<KvmDevice | number> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_ioctl_create_device', (function* (): KGen<KvmDevice | number> {
    yield k.mutex_lock(kvm.lock);
    if (ops === kvm_vfio_ops && kvm_vfio_device(kvm)) {
      yield k.mutex_unlock(kvm.lock);
      return -E.EBUSY;
    }
    const dev: KvmDevice = k.kzalloc('kvm_device', { ops, kvm, private: null });
    ops.create(dev);
    kvm.devices.push(dev);
    yield k.mutex_unlock(kvm.lock);
    return dev;
  })());
}

/** The VM's kvm-vfio device, if userspace created one. */
export function kvm_vfio_device(kvm: Kvm): KvmDevice<KvmVfio> | null {
  return (kvm.devices.find((d) => d.ops === kvm_vfio_ops) as KvmDevice<KvmVfio> | undefined) ?? null;
}

/**
 * KVM_DEV_VFIO_FILE_ADD: attach a VFIO file to the VM (creating the kvm-vfio device on first use)
 * and call setKvm(kvm) under &kv->lock. 0, or -EEXIST if the file is already attached.
 */
export function* kvm_vfio_file_add(kvm: Kvm, file: object, setKvm: VfioSetKvm): KGen<number> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_vfio_file_add', (function* (): KGen<number> {
    let dev = kvm_vfio_device(kvm);
    if (!dev) {
      const d: KvmDevice | number = yield* kvm_create_device(kvm, kvm_vfio_ops);
      if (typeof d === 'number') dev = kvm_vfio_device(kvm); // lost a creation race: use the winner's
      else dev = d as KvmDevice<KvmVfio>;
      if (!dev) return -E.ENODEV;
    }
    const kv = dev.private;
    yield k.mutex_lock(kv.lock);
    if (kv.file_list.some((f) => f.file === file)) {
      yield k.mutex_unlock(kv.lock);
      return -E.EEXIST;
    }
    const kvf: KvmVfioFile = k.kzalloc('kvm_vfio_file', { file, set_kvm: setKvm });
    kv.file_list.push(kvf);
    yield* kvm_vfio_file_set_kvm(kvm, kvf, kvm);
    yield k.mutex_unlock(kv.lock);
    return 0;
  })());
}

/** KVM_DEV_VFIO_FILE_DEL: detach; set_kvm(NULL) under &kv->lock. -ENOENT if not attached. */
export function* kvm_vfio_file_del(kvm: Kvm, file: object): KGen<number> {
  const k = kvm.host.k;
  return yield* k.fn('kvm_vfio_file_del', (function* (): KGen<number> {
    const dev = kvm_vfio_device(kvm);
    if (!dev) return -E.ENOENT;
    const kv = dev.private;
    yield k.mutex_lock(kv.lock);
    const i = kv.file_list.findIndex((f) => f.file === file);
    if (i < 0) {
      yield k.mutex_unlock(kv.lock);
      return -E.ENOENT;
    }
    const [kvf] = kv.file_list.splice(i, 1);
    yield* kvm_vfio_file_set_kvm(kvm, kvf!, null);
    yield k.kfree(kvf!);
    yield k.mutex_unlock(kv.lock);
    return 0;
  })());
}
