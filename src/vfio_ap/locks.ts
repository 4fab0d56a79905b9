// The lock helpers of vfio_ap_ops.c. Every path that changes what a guest sees
// takes guests_lock -> kvm->lock (if the mdev is attached) -> mdevs_lock, in that
// order (Documentation/arch/s390/vfio-ap-locking.rst); assign and ap_config take
// ap_attr_mutex before all of them.
import type { KGen } from '../kernel/index.js';
import type { Kvm } from '../kvm/index.js';
import type { Apqn } from '../hw/apqn.js';
import { testBit } from '../hw/mask.js';
import type { MatrixDev, MatrixMdev, VfioApQueue } from './private.js';

/** What a get_update_locks_* call locked, so the release unlocks exactly that. */
export interface UpdateLocks {
  readonly kvm: Kvm | null;
}

/**
 * guests_lock, then the kvm->lock of the mdev `owner()` names once guests_lock is held
 * (mdev.kvm and the back references only change under it), then mdevs_lock.
 */
function* lock_for_owner(md: MatrixDev, owner: () => MatrixMdev | null): KGen<UpdateLocks> {
  const k = md.k;
  yield k.mutex_lock(md.guests_lock);
  const kvm = owner()?.kvm ?? null;
  if (kvm) yield k.mutex_lock(kvm.lock);
  yield k.mutex_lock(md.mdevs_lock);
  return { kvm };
}

/** get_update_locks_for_mdev(): guests_lock, the mdev's kvm->lock if attached, mdevs_lock. */
export function get_update_locks_for_mdev(md: MatrixDev, mdev: MatrixMdev | null): KGen<UpdateLocks> {
  return lock_for_owner(md, () => mdev);
}

/** release_update_locks_for_mdev() */
export function* release_update_locks(md: MatrixDev, l: UpdateLocks): KGen<void> {
  const k = md.k;
  yield k.mutex_unlock(md.mdevs_lock);
  if (l.kvm) yield k.mutex_unlock(l.kvm.lock);
  yield k.mutex_unlock(md.guests_lock);
}

/** get_update_locks_for_kvm(): guests_lock, kvm->lock, mdevs_lock (attach/detach). */
export function* get_update_locks_for_kvm(md: MatrixDev, kvm: Kvm): KGen<UpdateLocks> {
  const k = md.k;
  yield k.mutex_lock(md.guests_lock);
  yield k.mutex_lock(kvm.lock);
  yield k.mutex_lock(md.mdevs_lock);
  return { kvm };
}

/** vfio_ap_mdev_for_queue(): the first mdev (list order) whose matrix holds the APQN. */
export function vfio_ap_mdev_for_apqn(md: MatrixDev, apqn: Apqn): MatrixMdev | null {
  const apid = apqn >> 8;
  const apqi = apqn & 0xff;
  for (const m of md.mdev_list) if (testBit(m.matrix.apm, apid) && testBit(m.matrix.aqm, apqi)) return m;
  return null;
}

/**
 * get_update_locks_by_apqn(): guests_lock first (so no mdev can change), then the
 * owning mdev's kvm->lock and mdevs_lock. Returns the owner (or null) and the locks.
 */
export function* get_update_locks_by_apqn(md: MatrixDev, apqn: Apqn): KGen<{ owner: MatrixMdev | null; locks: UpdateLocks }> {
  let owner: MatrixMdev | null = null;
  const locks = yield* lock_for_owner(md, () => (owner = vfio_ap_mdev_for_apqn(md, apqn)));
  return { owner, locks };
}

/**
 * get_update_locks_for_queue(): by the queue's back-reference to its mdev, read only
 * once guests_lock is held — mdev remove clears it (unlink_fr_queues) under that lock
 * before freeing the mdev, so a pointer read earlier may be stale (found by
 * `apsim check` on vfio-ap-pair:remove-B+hmc-rm-dom1).
 */
export function get_update_locks_for_queue(md: MatrixDev, q: VfioApQueue): KGen<UpdateLocks> {
  if (md.pieces.queueMdevRead === 'before-guests-lock') {
    const early = q.matrix_mdev;
    return lock_for_owner(md, () => early);
  }
  return lock_for_owner(md, () => q.matrix_mdev);
}
