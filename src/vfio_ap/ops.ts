// vfio_ap_ops.c, the matrix part: assignment of adapters, domains and control
// domains to an mdev (the six assign/unassign attributes and ap_config), their
// validation, linking of queues, hot unplug, and pushing the guest's AP
// configuration (the shadow APCB) into the VM's CRYCB.
import { E, Errno, type KGen } from '../kernel/index.js';
import { type ApMask, testBit, setBit, clearBit, maskIds, maskAnd, maskAndNot, maskIsEmpty, maskIntersects, copyMask, newMask } from '../hw/mask.js';
import { apqn, formatApqn, type Apqn } from '../hw/apqn.js';
import { kvm_arch_crypto_set_masks } from '../kvm/index.js';
import { eventfd_signal } from '../vfio/eventfd.js';
import type { ApQueue } from '../ap/ap_device.js';
import type { MatrixDev, MatrixMdev, VfioApQueue } from './private.js';
import { get_update_locks_for_mdev, release_update_locks, type UpdateLocks } from './locks.js';
import { filter_matrix, filter_cdoms, parse_id, ap_config_parse } from './matrix.js';
import { vfio_ap_mdev_reset_qlist } from './reset.js';

// ------------------------------------------------------------------ queues and links

/** vfio_ap_find_queue(): the vfio_ap queue object of an AP queue device bound to vfio_ap. */
export function vfio_ap_find_queue(md: MatrixDev, q: Apqn): VfioApQueue | null {
  const dev: ApQueue | undefined = md.bus.queues.get(q);
  if (!dev || dev.driver?.name !== 'vfio_ap') return null;
  return (dev.driver_data as VfioApQueue | null) ?? null;
}

export function vfio_ap_mdev_link_queue(mdev: MatrixMdev, q: VfioApQueue): void {
  if (q.matrix_mdev) return;
  q.matrix_mdev = mdev;
  mdev.qtable.set(q.apqn, q);
}

function vfio_ap_mdev_link_apqn(md: MatrixDev, mdev: MatrixMdev, a: Apqn): void {
  const q = vfio_ap_find_queue(md, a);
  if (q) vfio_ap_mdev_link_queue(mdev, q);
}

/** vfio_ap_unlink_queue_fr_mdev() */
export function vfio_ap_unlink_queue_fr_mdev(q: VfioApQueue): void {
  q.matrix_mdev?.qtable.delete(q.apqn);
}

/** vfio_ap_unlink_mdev_fr_queue() */
export function vfio_ap_unlink_mdev_fr_queue(q: VfioApQueue): void {
  q.matrix_mdev = null;
}

/** vfio_ap_mdev_link_adapter(): link every bound queue (apid, d) for d in the matrix. */
export function vfio_ap_mdev_link_adapter(md: MatrixDev, mdev: MatrixMdev, apid: number): void {
  for (const apqi of maskIds(mdev.matrix.aqm)) vfio_ap_mdev_link_apqn(md, mdev, apqn(apid, apqi));
}

export function vfio_ap_mdev_link_domain(md: MatrixDev, mdev: MatrixMdev, apqi: number): void {
  for (const apid of maskIds(mdev.matrix.apm)) vfio_ap_mdev_link_apqn(md, mdev, apqn(apid, apqi));
}

/**
 * vfio_ap_unlink_apqn_fr_mdev(): out of the qtable. The queue keeps its back
 * reference only if it is going to be reset (the reset needs the mdev's KVM);
 * otherwise it is cleared at once, so no queue ever points at a freed mdev
 * (mainline keeps it: spec 4.6).
 */
function vfio_ap_unlink_apqn_fr_mdev(mdev: MatrixMdev, a: Apqn, keepBackRef: boolean): VfioApQueue | null {
  const q = mdev.qtable.get(a);
  if (!q) return null;
  vfio_ap_unlink_queue_fr_mdev(q);
  if (!keepBackRef) vfio_ap_unlink_mdev_fr_queue(q);
  return q;
}

/** vfio_ap_unlink_fr_queues(): clear the back reference of every linked queue (mdev remove). */
export function vfio_ap_mdev_unlink_fr_queues(mdev: MatrixMdev): void {
  for (const q of mdev.qtable.values()) vfio_ap_unlink_mdev_fr_queue(q);
}

// ------------------------------------------------------------------ guest APCB

/** signal_guest_ap_cfg_changed(): the cfg_chg eventfd, if userspace registered one. */
export function* signal_guest_ap_cfg_changed(md: MatrixDev, mdev: MatrixMdev): KGen<void> {
  if (mdev.cfg_chg_trigger) yield* eventfd_signal(md.k, mdev.cfg_chg_trigger);
}

/**
 * vfio_ap_mdev_update_guest_apcb(): only an attached mdev has a guest: write the
 * shadow into its CRYCB (kvm->lock held by the caller) and tell QEMU.
 */
export function* vfio_ap_mdev_update_guest_apcb(md: MatrixDev, mdev: MatrixMdev): KGen<void> {
  if (!mdev.kvm) return;
  const s = mdev.shadow_apcb;
  yield* kvm_arch_crypto_set_masks(mdev.kvm, s.apm, s.aqm, s.adm);
  yield* signal_guest_ap_cfg_changed(md, mdev);
}

/** reset_queues_for_apids(): the linked queues of those adapters in the shadow's domains. */
export function* reset_queues_for_apids(md: MatrixDev, mdev: MatrixMdev, apm_reset: ApMask): KGen<void> {
  const qlist: VfioApQueue[] = [];
  const apqis = maskIds(mdev.shadow_apcb.aqm);
  for (const apid of maskIds(apm_reset))
    for (const apqi of apqis) {
      const q = mdev.qtable.get(apqn(apid, apqi));
      if (q) qlist.push(q);
    }
  if (qlist.length) yield* vfio_ap_mdev_reset_qlist(md, qlist);
}

/** Re-filter after queues were linked; push and reset filtered adapters on a change. */
export function* vfio_ap_mdev_refilter(md: MatrixDev, mdev: MatrixMdev): KGen<void> {
  const { changed, apm_filtered } = filter_matrix(md, mdev);
  if (changed) {
    yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
    yield* reset_queues_for_apids(md, mdev, apm_filtered);
  }
}

// ------------------------------------------------------------------ validation

/**
 * vfio_ap_mdev_verify_no_sharing(): no other mdev may hold an APQN of apm x aqm.
 * With assignee null (in_use) the message says the host cannot reserve it.
 */
export function vfio_ap_mdev_verify_no_sharing(md: MatrixDev, assignee: MatrixMdev | null, apm: ApMask, aqm: ApMask): number {
  for (const other of md.mdev_list) {
    if (other === assignee) continue;
    const a = maskAnd(apm, other.matrix.apm);
    if (maskIsEmpty(a)) continue;
    const q = maskAnd(aqm, other.matrix.aqm);
    if (maskIsEmpty(q)) continue;
    for (const apid of maskIds(a))
      for (const apqi of maskIds(q)) {
        const name = formatApqn(apqn(apid, apqi));
        if (assignee) md.k.dev_warn(assignee.mdev.dev.log, `Userspace may not assign queue ${name} to mdev: already assigned to ${other.uuid}`);
        else md.k.dev_warn(other.mdev.dev.log, `Can not reserve queue ${name} for host driver: in use by mdev`);
      }
    return -E.EADDRINUSE!;
  }
  return 0;
}

/**
 * vfio_ap_mdev_validate_masks(): on the whole candidate matrix, reservation for
 * the host's default drivers first (EADDRNOTAVAIL), then exclusivity (EADDRINUSE).
 */
export function* vfio_ap_mdev_validate_masks(md: MatrixDev, mdev: MatrixMdev): KGen<number> {
  const k = md.k;
  let reserved: boolean;
  if (md.pieces.assignLocking === 'query-takes-attr-mutex') {
    // The original design: the bus's reservation query takes the mask mutex itself,
    // nested inside the driver's locks (seed 003).
    yield k.mutex_lock(md.bus.ap_attr_mutex);
    reserved = md.bus.ap_apqn_in_matrix_owned_by_def_drv(mdev.matrix.apm, mdev.matrix.aqm);
    yield k.mutex_unlock(md.bus.ap_attr_mutex);
  } else {
    k.lockdep_assert_held(md.bus.ap_attr_mutex);
    reserved = md.bus.ap_apqn_in_matrix_owned_by_def_drv(mdev.matrix.apm, mdev.matrix.aqm);
  }
  if (reserved) return -E.EADDRNOTAVAIL!;
  return vfio_ap_mdev_verify_no_sharing(md, mdev, mdev.matrix.apm, mdev.matrix.aqm);
}

/** ap_matrix_overflow_check(): a set bit above a maximum is -ENODEV. */
function ap_matrix_overflow_check(mdev: MatrixMdev): number {
  const m = mdev.matrix;
  if (maskIds(m.apm).some((b) => b > m.apm_max)) return -E.ENODEV!;
  if (maskIds(m.aqm).some((b) => b > m.aqm_max)) return -E.ENODEV!;
  if (maskIds(m.adm).some((b) => b > m.adm_max)) return -E.ENODEV!;
  return 0;
}

// ------------------------------------------------------------------ locking around stores

/** The locks of assign_* and ap_config: ap_attr_mutex first in the fixed design. */
function* lock_for_assign(md: MatrixDev, mdev: MatrixMdev): KGen<UpdateLocks> {
  if (md.pieces.assignLocking === 'attr-mutex-first') yield md.k.mutex_lock(md.bus.ap_attr_mutex);
  return yield* get_update_locks_for_mdev(md, mdev);
}

function* unlock_for_assign(md: MatrixDev, l: UpdateLocks): KGen<void> {
  yield* release_update_locks(md, l);
  if (md.pieces.assignLocking === 'attr-mutex-first') yield md.k.mutex_unlock(md.bus.ap_attr_mutex);
}

/** Runs a store body under locks, turning a thrown Errno into its negative value. */
function* store(md: MatrixDev, locks: UpdateLocks, body: KGen<number>, unlock: (l: UpdateLocks) => KGen<void>): KGen<number> {
  const depth = md.k.opsDepth();
  let rc: number;
  try {
    // Its own frame (k.call): the body's steps do not resume through this wrapper.
    rc = (yield md.k.call(body)) as number;
  } catch (e) {
    md.k.opsRestore(depth);
    if (!(e instanceof Errno)) throw e;
    rc = -e.errno;
  }
  yield* unlock(locks);
  return rc;
}

// ------------------------------------------------------------------ adapters and domains

type Which = 'apm' | 'aqm';

/** assign_adapter_store / assign_domain_store */
export function* assign_store(md: MatrixDev, mdev: MatrixMdev, which: Which, buf: string): KGen<number> {
  const locks = yield* lock_for_assign(md, mdev);
  return yield* store(md, locks, assign_body(md, mdev, which, buf), (l) => unlock_for_assign(md, l));
}

function* assign_body(md: MatrixDev, mdev: MatrixMdev, which: Which, buf: string): KGen<number> {
  const id = parse_id(buf);
  const m = mdev.matrix;
  const max = which === 'apm' ? m.apm_max : m.aqm_max;
  if (id > max) return -E.ENODEV!;
  if (testBit(m[which], id)) return buf.length;
  setBit(m[which], id);
  const rc = yield* vfio_ap_mdev_validate_masks(md, mdev);
  if (rc) {
    clearBit(m[which], id);
    return rc;
  }
  if (which === 'apm') vfio_ap_mdev_link_adapter(md, mdev, id);
  else vfio_ap_mdev_link_domain(md, mdev, id);
  yield* vfio_ap_mdev_refilter(md, mdev);
  return buf.length;
}

/** unassign_adapter_store / unassign_domain_store (no ap_attr_mutex). */
export function* unassign_store(md: MatrixDev, mdev: MatrixMdev, which: Which, buf: string): KGen<number> {
  const locks = yield* get_update_locks_for_mdev(md, mdev);
  return yield* store(md, locks, unassign_body(md, mdev, which, buf), (l) => release_update_locks(md, l));
}

function* unassign_body(md: MatrixDev, mdev: MatrixMdev, which: Which, buf: string): KGen<number> {
  const id = parse_id(buf);
  const m = mdev.matrix;
  const max = which === 'apm' ? m.apm_max : m.aqm_max;
  if (id > max) return -E.ENODEV!;
  if (!testBit(m[which], id)) return buf.length;
  clearBit(m[which], id);
  const ids = newMask();
  setBit(ids, id);
  if (which === 'apm') yield* vfio_ap_mdev_hot_unplug_adapters(md, mdev, ids);
  else yield* vfio_ap_mdev_hot_unplug_domains(md, mdev, ids);
  return buf.length;
}

/**
 * vfio_ap_mdev_hot_unplug_adapters() / _domains(): unlink the queues of the ids
 * (pairs from the current other mask), drop the ids from the shadow, one push for
 * the batch, then reset the queues the guest had and forget their back references.
 */
export function* vfio_ap_mdev_hot_unplug_adapters(md: MatrixDev, mdev: MatrixMdev, apids: ApMask): KGen<void> {
  yield* hot_unplug(md, mdev, 'apm', apids);
}

export function* vfio_ap_mdev_hot_unplug_domains(md: MatrixDev, mdev: MatrixMdev, apqis: ApMask): KGen<void> {
  yield* hot_unplug(md, mdev, 'aqm', apqis);
}

function* hot_unplug(md: MatrixDev, mdev: MatrixMdev, which: Which, ids: ApMask): KGen<void> {
  const s = mdev.shadow_apcb;
  const qlist: VfioApQueue[] = [];
  let apcb_update = false;
  const other = which === 'apm' ? mdev.matrix.aqm : mdev.matrix.apm;
  for (const id of maskIds(ids)) {
    for (const o of maskIds(other)) {
      const [apid, apqi] = which === 'apm' ? [id, o] : [o, id];
      const inGuest = testBit(s.apm, apid) && testBit(s.aqm, apqi);
      const q = vfio_ap_unlink_apqn_fr_mdev(mdev, apqn(apid, apqi), inGuest);
      if (q && inGuest) qlist.push(q);
    }
    if (testBit(s[which], id)) {
      clearBit(s[which], id);
      apcb_update = true;
    }
  }
  if (apcb_update) yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
  if (qlist.length) yield* vfio_ap_mdev_reset_qlist(md, qlist);
  for (const q of qlist) vfio_ap_unlink_mdev_fr_queue(q);
}

// ------------------------------------------------------------------ control domains

/** assign_control_domain_store: no reservation and no exclusivity check. */
export function* assign_control_domain_store(md: MatrixDev, mdev: MatrixMdev, buf: string): KGen<number> {
  const locks = yield* get_update_locks_for_mdev(md, mdev);
  return yield* store(
    md,
    locks,
    (function* (): KGen<number> {
      const id = parse_id(buf);
      if (id > mdev.matrix.adm_max) return -E.ENODEV!;
      if (testBit(mdev.matrix.adm, id)) return buf.length;
      setBit(mdev.matrix.adm, id);
      if (filter_cdoms(mdev, md.info)) yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
      return buf.length;
    })(),
    (l) => release_update_locks(md, l),
  );
}

/** unassign_control_domain_store */
export function* unassign_control_domain_store(md: MatrixDev, mdev: MatrixMdev, buf: string): KGen<number> {
  const locks = yield* get_update_locks_for_mdev(md, mdev);
  return yield* store(
    md,
    locks,
    (function* (): KGen<number> {
      const id = parse_id(buf);
      if (id > mdev.matrix.adm_max) return -E.ENODEV!;
      if (!testBit(mdev.matrix.adm, id)) return buf.length;
      clearBit(mdev.matrix.adm, id);
      if (testBit(mdev.shadow_apcb.adm, id)) {
        clearBit(mdev.shadow_apcb.adm, id);
        yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
      }
      return buf.length;
    })(),
    (l) => release_update_locks(md, l),
  );
}

// ------------------------------------------------------------------ ap_config

/**
 * ap_config_store: replaces all three masks at once. Validation (reservation,
 * exclusivity, then range) runs on the new masks; on success removed adapters and
 * domains are hot-unplugged with the old matrix in place, then the new masks are
 * installed, new queues linked, and the shadow re-filtered.
 */
export function* ap_config_store(md: MatrixDev, mdev: MatrixMdev, buf: string): KGen<number> {
  const locks = yield* lock_for_assign(md, mdev);
  return yield* store(md, locks, ap_config_body(md, mdev, buf), (l) => unlock_for_assign(md, l));
}

function* ap_config_body(md: MatrixDev, mdev: MatrixMdev, buf: string): KGen<number> {
  const m = mdev.matrix;
  const old = { apm: copyMask(m.apm), aqm: copyMask(m.aqm), adm: copyMask(m.adm) };
  const nw = ap_config_parse(buf);
  const install = (x: { apm: ApMask; aqm: ApMask; adm: ApMask }) => {
    m.apm = copyMask(x.apm);
    m.aqm = copyMask(x.aqm);
    m.adm = copyMask(x.adm);
  };
  install(nw);
  let rc = yield* vfio_ap_mdev_validate_masks(md, mdev);
  if (!rc) rc = ap_matrix_overflow_check(mdev);
  if (rc) {
    install(old);
    return rc;
  }
  const removed = { apm: maskAndNot(old.apm, nw.apm), aqm: maskAndNot(old.aqm, nw.aqm) };
  const added = { apm: maskAndNot(nw.apm, old.apm), aqm: maskAndNot(nw.aqm, old.aqm) };
  // Unplug with the old bitmaps in place: the pairs to unlink are the old ones.
  install(old);
  yield* vfio_ap_mdev_hot_unplug_adapters(md, mdev, removed.apm);
  yield* vfio_ap_mdev_hot_unplug_domains(md, mdev, removed.aqm);
  install(nw);
  for (const apid of maskIds(added.apm)) vfio_ap_mdev_link_adapter(md, mdev, apid);
  for (const apqi of maskIds(added.aqm)) vfio_ap_mdev_link_domain(md, mdev, apqi);
  const f = filter_matrix(md, mdev);
  const cd = filter_cdoms(mdev, md.info);
  if (f.changed || cd) {
    yield* vfio_ap_mdev_update_guest_apcb(md, mdev);
    yield* reset_queues_for_apids(md, mdev, f.apm_filtered);
  }
  // The byte count written, not the truncated length.
  return buf.length;
}

/** Does any APQN of apm x aqm belong to some mdev's matrix? (in_use's question) */
export function matrix_intersects_any(md: MatrixDev, apm: ApMask, aqm: ApMask): boolean {
  return md.mdev_list.some((m) => maskIntersects(apm, m.matrix.apm) && maskIntersects(aqm, m.matrix.aqm));
}
