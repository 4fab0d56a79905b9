// vfio_ap as an AP queue driver: probe/remove of queue devices not reserved for
// the host (linking them to the owning mdev and hot plugging/unplugging their
// adapter), the queue's `status` attribute, the in_use callback the AP bus asks
// before reserving queues for the host, and the host configuration callbacks
// (on_config_changed, on_scan_complete).
import { E, type KGen, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import type { Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { sysfs_create_group, sysfs_remove_group } from '../base/core.js';
import { type ApMask, testBit, setBit, clearBit, maskAnd, maskAndNot, maskIsEmpty, maskIntersects, maskEquals, maskIds, newMask, copyMask } from '../hw/mask.js';
import { apqn, apqnCard, apqnDomain } from '../hw/apqn.js';
import type { Kvm } from '../kvm/index.js';
import { AP_RESPONSE } from '../hw/status.js';
import { decodeHwinfo, type QciInfo } from '../hw/registers.js';
import { AP_DEVICE_TYPE_CEX4, AP_DEVICE_ID_MATCH_QUEUE_TYPE, type ApDevice, type ApDriver, type ApQueue } from '../ap/ap_device.js';
import { VfioApQueue, VFIO_AP_DRV_NAME, infoFromQci, type MatrixDev, type MatrixMdev } from './private.js';
import { get_update_locks_by_apqn, get_update_locks_for_queue, release_update_locks, vfio_ap_mdev_for_apqn } from './locks.js';
import {
  vfio_ap_mdev_link_queue,
  vfio_ap_unlink_queue_fr_mdev,
  vfio_ap_mdev_update_guest_apcb,
  vfio_ap_mdev_refilter,
  vfio_ap_mdev_verify_no_sharing,
  reset_queues_for_apids,
} from './ops.js';
import { filter_matrix, filter_cdoms } from './matrix.js';
import { apq_reset_check, vfio_ap_mdev_reset_queue } from './reset.js';

export const AP_QUEUE_ASSIGNED = 'assigned';
export const AP_QUEUE_UNASSIGNED = 'unassigned';
export const AP_QUEUE_IN_USE = 'in use';

// ------------------------------------------------------------------ status attribute

function statusGroup(md: MatrixDev): AttributeGroup<Device> {
  const status: AttrOps<Device> = {
    name: 'status',
    mode: 0o444,
    *show(k: Kernel, dev: Device) {
      yield k.mutex_lock(md.guests_lock);
      yield k.mutex_lock(md.mdevs_lock);
      const q = dev.driver_data as VfioApQueue | null;
      let s = AP_QUEUE_UNASSIGNED;
      const mdev = q ? vfio_ap_mdev_for_apqn(md, q.apqn) : null;
      if (q && mdev) {
        const inGuest = testBit(mdev.shadow_apcb.apm, apqnCard(q.apqn)) && testBit(mdev.shadow_apcb.aqm, apqnDomain(q.apqn));
        s = mdev.kvm && inGuest ? AP_QUEUE_IN_USE : AP_QUEUE_ASSIGNED;
      }
      yield k.mutex_unlock(md.mdevs_lock);
      yield k.mutex_unlock(md.guests_lock);
      return `${s}\n`;
    },
  };
  return { attrs: [status] };
}

// ------------------------------------------------------------------ probe / remove

/** vfio_ap_mdev_probe_queue(): a queue device was bound to vfio_ap. */
export function* vfio_ap_mdev_probe_queue(md: MatrixDev, apdev: ApQueue): KGen<number> {
  const k = md.k;
  const alloc = (): VfioApQueue => {
    sysfs_create_group(md.bus.core.sysfs, apdev.kobj!, md.queueStatusGroup, apdev);
    const q = k.kzalloc('vfio_ap_queue', new VfioApQueue(apdev.qid, apdev));
    q.reset_work = k.INIT_WORK('apq_reset_check', () => apq_reset_check(md, q));
    return q;
  };
  // Mainline creates the status file and the object before it takes any lock.
  const early = md.pieces.probeQueueOrder === 'alloc-first' ? alloc() : null;
  const { owner, locks } = yield* get_update_locks_by_apqn(md, apdev.qid);
  const q = early ?? alloc();
  if (owner) {
    vfio_ap_mdev_link_queue(owner, q);
    // With adds pending from a host configuration change, on_scan_complete filters
    // once for all new queues.
    if (maskIsEmpty(owner.apm_add) && maskIsEmpty(owner.aqm_add)) yield* vfio_ap_mdev_refilter(md, owner);
  }
  apdev.driver_data = q;
  yield* release_update_locks(md, locks);
  return 0;
}

/** vfio_ap_mdev_remove_queue(): the queue device is unbound from vfio_ap or gone. */
export function* vfio_ap_mdev_remove_queue(md: MatrixDev, apdev: ApQueue): KGen<void> {
  const k = md.k;
  yield* sysfs_remove_group(k, md.bus.core.sysfs, apdev.kobj!, md.queueStatusGroup);
  const q = apdev.driver_data as VfioApQueue | null;
  if (!q) return;
  const locks = yield* get_update_locks_for_queue(md, q);
  const mdev = q.matrix_mdev;
  const apid = apqnCard(q.apqn);
  const apqi = apqnDomain(q.apqn);
  let done = false;
  if (mdev && testBit(mdev.shadow_apcb.apm, apid) && testBit(mdev.shadow_apcb.aqm, apqi)) {
    // A single queue cannot leave a guest: its whole adapter does.
    clearBit(mdev.shadow_apcb.apm, apid);
    yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
    const apids = newMask();
    setBit(apids, apid);
    yield* reset_queues_for_apids(md, mdev, apids);
    done = true;
  }
  // A queue no longer in the host configuration would answer ZAPQ with RC 01.
  if (!done && testBit(md.info.apm, apid) && testBit(md.info.aqm, apqi)) {
    yield* vfio_ap_mdev_reset_queue(md, q);
    yield k.flush_work(q.reset_work!);
  }
  if (mdev) vfio_ap_unlink_queue_fr_mdev(q);
  apdev.driver_data = null;
  yield k.kfree(q);
  yield* release_update_locks(md, locks);
}

// ------------------------------------------------------------------ in_use

/**
 * vfio_ap_mdev_resource_in_use(): called by the AP bus with ap_attr_mutex held
 * before it reserves apm x aqm for the host. Busy if any mdev's matrix holds one.
 */
export function* vfio_ap_mdev_resource_in_use(md: MatrixDev, apm: ApMask, aqm: ApMask): KGen<number> {
  const k = md.k;
  if (md.pieces.inUseLocking === 'trylock') {
    // Seed 003 v18: back off instead of waiting for an assign in progress.
    if (!(yield k.mutex_trylock(md.guests_lock))) return -E.EBUSY!;
    if (!(yield k.mutex_trylock(md.mdevs_lock))) {
      yield k.mutex_unlock(md.guests_lock);
      return -E.EBUSY!;
    }
  } else {
    yield k.mutex_lock(md.guests_lock);
    yield k.mutex_lock(md.mdevs_lock);
  }
  const ret = vfio_ap_mdev_verify_no_sharing(md, null, apm, aqm);
  yield k.mutex_unlock(md.mdevs_lock);
  yield k.mutex_unlock(md.guests_lock);
  return ret;
}

// ------------------------------------------------------------------ host configuration changes

/**
 * vfio_ap_filter_apid_by_qtype(): new adapters of unknown type or older than CEX4
 * are dropped (TAPQ on the new domains decides; without new domains nothing is).
 */
function vfio_ap_filter_apid_by_qtype(md: MatrixDev, apm: ApMask, aqm: ApMask): void {
  const m = md.bus.machine;
  const apqis = maskIds(aqm);
  for (const apid of maskIds(apm)) {
    for (const apqi of apqis) {
      const r = m.tapq(apqn(apid, apqi), { t: true });
      let cleared: boolean;
      switch (r.status.responseCode) {
        case AP_RESPONSE.NORMAL:
        case AP_RESPONSE.RESET_IN_PROGRESS:
        case AP_RESPONSE.DECONFIGURED:
        case AP_RESPONSE.CHECKSTOPPED:
        case AP_RESPONSE.BUSY:
          // The queue is valid, so its type is: vfio_ap supports CEX4 and newer.
          cleared = decodeHwinfo(r.hwinfo).at < AP_DEVICE_TYPE_CEX4;
          break;
        default:
          // Unknown type: it cannot be told whether vfio_ap supports it.
          cleared = true;
      }
      if (cleared) {
        clearBit(apm, apid);
        break;
      }
    }
  }
}

/** vfio_ap_mdev_hot_unplug_cfg(): lost host ids leave the shadow; one push if it changed. */
function* vfio_ap_mdev_hot_unplug_cfg(md: MatrixDev, mdev: MatrixMdev, aprem: ApMask, aqrem: ApMask, cdrem: ApMask): KGen<void> {
  const s = mdev.shadow_apcb;
  const before = { apm: copyMask(s.apm), aqm: copyMask(s.aqm), adm: copyMask(s.adm) };
  // Mainline's bitmap_andnot() results mean "something is left", not "something changed".
  let nonempty = false;
  if (!maskIsEmpty(aprem)) nonempty = !maskIsEmpty((s.apm = maskAndNot(s.apm, aprem))) || nonempty;
  if (!maskIsEmpty(aqrem)) nonempty = !maskIsEmpty((s.aqm = maskAndNot(s.aqm, aqrem))) || nonempty;
  if (!maskIsEmpty(cdrem)) nonempty = !maskIsEmpty((s.adm = maskAndNot(s.adm, cdrem))) || nonempty;
  const changed = !maskEquals(before.apm, s.apm) || !maskEquals(before.aqm, s.aqm) || !maskEquals(before.adm, s.adm);
  if (md.pieces.cfgRemovePush === 'when-nonempty' ? nonempty : changed) yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
}

/**
 * kvm->lock of an mdev for the config callbacks: only when attached (fixed), or
 * always (mainline <= 6.17: mutex_lock(&matrix_mdev->kvm->lock) with kvm NULL).
 */
function* cfg_lock_kvm(md: MatrixDev, mdev: MatrixMdev): KGen<Kvm | null> {
  const kvm = mdev.kvm;
  if (!kvm && md.pieces.cfgKvmLock === 'always') throw new Error(`Unable to handle kernel pointer dereference in virtual kernel address space: matrix_mdev->kvm (NULL) of ${mdev.uuid}`);
  if (kvm) yield md.k.mutex_lock(kvm.lock);
  return kvm;
}

/** vfio_ap_mdev_on_cfg_remove(): per mdev, under its kvm->lock (if attached) and mdevs_lock. */
function* vfio_ap_mdev_on_cfg_remove(md: MatrixDev, cur: QciInfo, prev: QciInfo): KGen<void> {
  const k = md.k;
  const aprem = maskAndNot(prev.apm, cur.apm);
  const aqrem = maskAndNot(prev.aqm, cur.aqm);
  const cdremAll = maskAndNot(prev.adm, cur.adm);
  if (maskIsEmpty(aprem) && maskIsEmpty(aqrem) && maskIsEmpty(cdremAll)) return;
  for (const mdev of md.mdev_list) {
    const kvm = yield* cfg_lock_kvm(md, mdev);
    yield k.mutex_lock(md.mdevs_lock);
    const a = maskAnd(aprem, mdev.matrix.apm);
    const q = maskAnd(aqrem, mdev.matrix.aqm);
    const c = md.pieces.cfgRemoveCdoms === 'mainline-andnot' ? maskAndNot(cdremAll, mdev.matrix.adm) : maskAnd(cdremAll, mdev.matrix.adm);
    if (!maskIsEmpty(a) || !maskIsEmpty(q) || !maskIsEmpty(c)) yield* vfio_ap_mdev_hot_unplug_cfg(md, mdev, a, q, c);
    yield k.mutex_unlock(md.mdevs_lock);
    if (kvm) yield k.mutex_unlock(kvm.lock);
  }
}

/** vfio_ap_mdev_on_cfg_add(): remember, per mdev, which of its ids just appeared. */
function* vfio_ap_mdev_on_cfg_add(md: MatrixDev, cur: QciInfo, prev: QciInfo): KGen<void> {
  const k = md.k;
  const apm_add = maskAndNot(cur.apm, prev.apm);
  const aqm_add = maskAndNot(cur.aqm, prev.aqm);
  const adm_add = maskAndNot(cur.adm, prev.adm);
  if (maskIsEmpty(apm_add) && maskIsEmpty(aqm_add) && maskIsEmpty(adm_add)) return;
  if (md.mdev_list.length === 0) return;
  vfio_ap_filter_apid_by_qtype(md, apm_add, aqm_add);
  yield k.mutex_lock(md.mdevs_lock);
  for (const mdev of md.mdev_list) {
    mdev.apm_add = maskAnd(mdev.matrix.apm, apm_add);
    mdev.aqm_add = maskAnd(mdev.matrix.aqm, aqm_add);
    mdev.adm_add = maskAnd(mdev.matrix.adm, adm_add);
  }
  yield k.mutex_unlock(md.mdevs_lock);
}

/** vfio_ap_on_cfg_changed(): guests_lock for the whole callback; then info := cur. */
export function* vfio_ap_on_cfg_changed(md: MatrixDev, cur: QciInfo, prev: QciInfo): KGen<void> {
  const k = md.k;
  yield k.mutex_lock(md.guests_lock);
  yield* vfio_ap_mdev_on_cfg_remove(md, cur, prev);
  yield* vfio_ap_mdev_on_cfg_add(md, cur, prev);
  md.info = infoFromQci(cur);
  yield k.mutex_unlock(md.guests_lock);
}

/** vfio_ap_mdev_on_scan_complete() for one mdev with pending adds. */
function* vfio_ap_mdev_on_scan_complete(md: MatrixDev, mdev: MatrixMdev): KGen<void> {
  const k = md.k;
  const kvm = yield* cfg_lock_kvm(md, mdev);
  yield k.mutex_lock(md.mdevs_lock);
  // Mainline never initialised this set: whatever the stack held (here: the run's
  // PRNG picks among the guest's adapters) got its queues reset.
  let apm_filtered = md.pieces.scanCompleteFiltered === 'uninitialised' ? garbageApids(md, mdev) : newMask();
  let do_hotplug = false;
  if (maskIntersects(mdev.matrix.apm, mdev.apm_add) || maskIntersects(mdev.matrix.aqm, mdev.aqm_add)) {
    const f = filter_matrix(md, mdev);
    do_hotplug = f.changed;
    apm_filtered = f.apm_filtered;
  }
  if (maskIntersects(mdev.matrix.adm, mdev.adm_add)) do_hotplug = filter_cdoms(mdev, md.info) || do_hotplug;
  if (do_hotplug) yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
  yield* reset_queues_for_apids(md, mdev, apm_filtered);
  yield k.mutex_unlock(md.mdevs_lock);
  if (kvm) yield k.mutex_unlock(kvm.lock);
}

function garbageApids(md: MatrixDev, mdev: MatrixMdev): ApMask {
  const m = newMask();
  for (const a of maskIds(mdev.shadow_apcb.apm)) if (md.k.rng.chance(0.5)) setBit(m, a);
  return m;
}

/** vfio_ap_on_scan_complete(): hot plug what appeared, in one filter pass per mdev. */
export function* vfio_ap_on_scan_complete(md: MatrixDev): KGen<void> {
  const k = md.k;
  yield k.mutex_lock(md.guests_lock);
  for (const mdev of md.mdev_list) {
    if (maskIsEmpty(mdev.apm_add) && maskIsEmpty(mdev.aqm_add) && maskIsEmpty(mdev.adm_add)) continue;
    yield* vfio_ap_mdev_on_scan_complete(md, mdev);
    mdev.apm_add = newMask();
    mdev.aqm_add = newMask();
    mdev.adm_add = newMask();
  }
  yield k.mutex_unlock(md.guests_lock);
}

// ------------------------------------------------------------------ the AP driver

/** vfio_ap_drv: the AP queue driver for CEX4..CEX8 queues, without the default flag. */
export function vfio_ap_queue_driver(md: MatrixDev): ApDriver {
  return {
    name: VFIO_AP_DRV_NAME,
    bus: md.bus.bus,
    flags: 0,
    ids: Object.freeze([10, 11, 12, 13, 14].map((t) => Object.freeze({ match_flags: AP_DEVICE_ID_MATCH_QUEUE_TYPE, dev_type: t }))),
    probe: (_k: Kernel, dev: ApDevice) => vfio_ap_mdev_probe_queue(md, dev as ApQueue),
    remove: (_k: Kernel, dev: ApDevice) => vfio_ap_mdev_remove_queue(md, dev as ApQueue),
    in_use: (_k: Kernel, apm: ApMask, aqm: ApMask) => vfio_ap_mdev_resource_in_use(md, apm, aqm),
    on_config_changed: (_k: Kernel, cur: QciInfo, prev: QciInfo) => vfio_ap_on_cfg_changed(md, cur, prev),
    on_scan_complete: () => vfio_ap_on_scan_complete(md),
  };
}

export { statusGroup };
