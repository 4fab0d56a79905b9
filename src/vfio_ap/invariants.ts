// The driver's invariants (vfio-ap-driver.md section 3, I1-I5) plus the
// consistency rules behind them, as a checker the tests run after every operation
// and the concurrency checker runs after every execution. Only meaningful at a
// quiescent point (no store, probe or scan in flight).
import { maskAnd, maskIds, testBit, formatMask, maskIsEmpty, maskIntersects, maskEqualsAnd, maskIsSubsetOfAnd, maskEqualsFirstBits } from '../hw/mask.js';
import { apqn, formatApqn } from '../hw/apqn.js';
import { kvm_s390_crycb_masks, kvm_s390_crycb_format, crycbWidths } from '../kvm/index.js';
import type { MatrixDev } from './private.js';
import { queue_passable } from './matrix.js';
import { vfio_ap_find_queue } from './ops.js';

export interface Violation {
  readonly invariant: 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'links' | 'crycb';
  readonly detail: string;
}

export function vfio_ap_check_invariants(md: MatrixDev): Violation[] {
  const out: Violation[] = [];
  const v = (invariant: Violation['invariant'], detail: string) => out.push({ invariant, detail });
  const list = md.mdev_list;
  // I1: no APQN in the matrix of two mdevs.
  for (let i = 0; i < list.length; i++)
    for (let j = i + 1; j < list.length; j++) {
      // (Masks are built only for the report: this runs after every checker execution.)
      if (!maskIntersects(list[i]!.matrix.apm, list[j]!.matrix.apm) || !maskIntersects(list[i]!.matrix.aqm, list[j]!.matrix.aqm)) continue;
      const a = maskAnd(list[i]!.matrix.apm, list[j]!.matrix.apm);
      const q = maskAnd(list[i]!.matrix.aqm, list[j]!.matrix.aqm);
      v('I1', `${formatApqn(apqn(maskIds(a)[0]!, maskIds(q)[0]!))} is assigned to ${list[i]!.uuid} and ${list[j]!.uuid}`);
    }
  for (const m of list) {
    // I2: nothing assigned is reserved for the host.
    if (md.bus.ap_apqn_in_matrix_owned_by_def_drv(m.matrix.apm, m.matrix.aqm)) v('I2', `${m.uuid} holds an APQN reserved for the host default drivers`);
    const s = m.shadow_apcb;
    const pending = !maskIsEmpty(m.apm_add) || !maskIsEmpty(m.aqm_add) || !maskIsEmpty(m.adm_add);
    // I3: shadow within matrix and host configuration.
    if (!maskIsSubsetOfAnd(s.apm, m.matrix.apm, md.info.apm)) v('I3', `${m.uuid}: shadow APM ${formatMask(s.apm)} not within matrix ∩ host`);
    if (!pending && !maskEqualsAnd(s.aqm, m.matrix.aqm, md.info.aqm)) v('I3', `${m.uuid}: shadow AQM ${formatMask(s.aqm)} != matrix ∩ host ${formatMask(maskAnd(m.matrix.aqm, md.info.aqm))}`);
    if (!pending && !maskEqualsAnd(s.adm, m.matrix.adm, md.info.adm)) v('I3', `${m.uuid}: shadow ADM != matrix ∩ host`);
    // I4: every APQN the guest gets is linked and was passable at the last filter
    // run (a reset that fails afterwards takes effect at the next one).
    for (const a of maskIds(s.apm))
      for (const d of maskIds(s.aqm)) {
        const q = m.qtable.get(apqn(a, d));
        if (!q) v('I4', `${m.uuid}: ${formatApqn(apqn(a, d))} is in the guest matrix but not linked`);
        else if (q.resetSeq < m.filterSeq && !queue_passable(q)) v('I4', `${m.uuid}: ${formatApqn(apqn(a, d))} is in the guest matrix but its last reset left RC ${q.reset_status.responseCode}`);
      }
    // Links: the qtable holds exactly the bound queues of matrix.apm x matrix.aqm.
    for (const [id, q] of m.qtable) {
      if (q.matrix_mdev !== m) v('links', `${m.uuid}: linked queue ${formatApqn(id)} points at another mdev`);
      if (!testBit(m.matrix.apm, id >> 8) || !testBit(m.matrix.aqm, id & 0xff)) v('links', `${m.uuid}: linked queue ${formatApqn(id)} is not assigned`);
    }
    for (const a of maskIds(m.matrix.apm))
      for (const d of maskIds(m.matrix.aqm)) {
        const q = vfio_ap_find_queue(md, apqn(a, d));
        if (q && !m.qtable.has(apqn(a, d))) v('links', `${m.uuid}: bound queue ${formatApqn(apqn(a, d))} is assigned but not linked`);
      }
    // I5: an attached mdev owns its VM's hook and a reference; no other mdev has the VM.
    if (m.kvm) {
      const kvm = m.kvm;
      if (kvm.arch.crypto.pqap_hook !== m) v('I5', `${m.uuid}: the VM's pqap hook does not point at this mdev`);
      if (kvm.users_count.read() < 2) v('I5', `${m.uuid}: the VM is not referenced by both VFIO and the driver (users_count ${kvm.users_count.read()})`);
      for (const o of list) if (o !== m && o.kvm === kvm) v('I5', `${m.uuid} and ${o.uuid} are attached to the same VM`);
      // The guest sees exactly the shadow (as far as its CRYCB format can hold).
      const w = crycbWidths(kvm_s390_crycb_format(kvm));
      const c = kvm_s390_crycb_masks(kvm);
      if (!maskEqualsFirstBits(c.apm, s.apm, w.apm) || !maskEqualsFirstBits(c.aqm, s.aqm, w.aqm) || !maskEqualsFirstBits(c.adm, s.adm, w.adm))
        v('crycb', `${m.uuid}: the guest's CRYCB differs from the shadow APCB`);
    }
  }
  return out;
}
