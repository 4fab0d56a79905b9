// The lock order vfio_ap documents (Documentation/arch/s390/vfio-ap-locking.rst;
// vfio-ap-driver.md §7.2, per-operation lock sets §7.3), as data the checker holds the
// model to. Class names are the model's lockdep class names.
import type { LockOrder } from '../kernel/index.js';

export const VFIO_AP_LOCK_ORDER: LockOrder = Object.freeze({
  name: 'vfio-ap-locking',
  source: 'Documentation/arch/s390/vfio-ap-locking.rst; vfio-ap-driver.md §7.2-7.3',
  // ap_attr_mutex -> guests_lock -> kvm->lock -> (pqap_hook_rwsem write, newest tree)
  // -> mdevs_lock; the PQAP path takes the rwsem for read, then mdevs_lock.
  order: Object.freeze(['ap_attr_mutex', '&matrix_dev->guests_lock', '&kvm->lock', '&kvm->arch.crypto.pqap_hook_rwsem', '&matrix_dev->mdevs_lock']),
  nestings: Object.freeze([
    // assign_adapter/assign_domain/ap_config store; the AP bus's in_use callback
    Object.freeze(['ap_attr_mutex', '&matrix_dev->guests_lock'] as const),
    // every matrix update of an mdev attached to a guest
    Object.freeze(['&matrix_dev->guests_lock', '&kvm->lock'] as const),
    Object.freeze(['&kvm->lock', '&matrix_dev->mdevs_lock'] as const),
    // queue status read, in_use, mdev remove, updates without a guest
    Object.freeze(['&matrix_dev->guests_lock', '&matrix_dev->mdevs_lock'] as const),
    // attach claims the VM's pqap hook under kvm->lock
    Object.freeze(['&kvm->lock', '&kvm->arch.crypto.pqap_hook_rwsem'] as const),
    // the PQAP (AQIC) handler, called by KVM with the rwsem held for read
    Object.freeze(['&kvm->arch.crypto.pqap_hook_rwsem', '&matrix_dev->mdevs_lock'] as const),
  ]),
});
