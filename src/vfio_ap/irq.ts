// Guest interrupt control for passed-through queues: the PQAP(AQIC) handler KVM
// calls through the VM's pqap hook, interrupt enable (NIB pinning, guest ISC
// registration with the GIB, AQIC with the GISA) and disable, release of those
// resources, and the DMA-unmap notification.
import type { KGen } from '../kernel/index.js';
import { AP_RESPONSE, makeStatus, encodeStatusWord, type ApQueueStatus } from '../hw/status.js';
import { formatApqn, type Apqn } from '../hw/apqn.js';
import {
  kvm_is_gpa_in_memslot,
  kvm_pin_guest_page,
  kvm_unpin_guest_page,
  kvm_s390_gisc_register,
  kvm_s390_gisc_unregister,
  kvm_s390_aqic_gisa_control,
  kvm_s390_ap_aqic,
  type KvmVcpu,
} from '../kvm/index.js';
import { PAGE_SIZE } from '../kvm/memslot.js';
import { VFIO_AP_ISC_INVALID, type MatrixDev, type MatrixMdev, type VfioApQueue } from './private.js';
import { vfio_ap_dbf, vfio_ap_warn } from './log.js';

const EOPNOTSUPP = -95;

/** vfio_ap_mdev_get_queue(): the queue linked to this mdev (qtable membership only). */
export function vfio_ap_mdev_get_queue(mdev: MatrixMdev, apqn: Apqn): VfioApQueue | undefined {
  return mdev.qtable.get(apqn);
}

/**
 * vfio_ap_free_aqic_resources(): unregister the guest ISC and unpin the NIB page.
 * Both need the mdev the queue is (or was last) linked to; the GISC needs its KVM.
 */
export function* vfio_ap_free_aqic_resources(md: MatrixDev, q: VfioApQueue): KGen<void> {
  const k = md.k;
  const mdev = q.matrix_mdev;
  if (q.saved_isc !== VFIO_AP_ISC_INVALID && !k.WARN_ON(!(mdev && mdev.kvm), 'vfio_ap_free_aqic_resources: no KVM for the saved guest ISC')) {
    kvm_s390_gisc_unregister(mdev!.kvm!, q.saved_isc);
    q.saved_isc = VFIO_AP_ISC_INVALID;
  }
  if (q.saved_iova && !k.WARN_ON(!mdev, 'vfio_ap_free_aqic_resources: NIB pinned without an mdev')) {
    // vfio_unpin_pages(): the page was pinned through the guest's memory.
    if (mdev!.kvm) kvm_unpin_guest_page(mdev!.kvm, q.saved_iova);
    q.saved_iova = 0;
  }
  yield* [];
}

/** vfio_ap_wait_for_irqclear(): up to 5 TAPQs 20 ms apart until I=0. */
function* vfio_ap_wait_for_irqclear(md: MatrixDev, apqn: Apqn): KGen<void> {
  const k = md.k;
  let st: ApQueueStatus = makeStatus(0);
  for (let retry = 5; retry > 0; retry--) {
    st = md.bus.machine.tapq(apqn).status;
    switch (st.responseCode) {
      case AP_RESPONSE.NORMAL:
      case AP_RESPONSE.RESET_IN_PROGRESS:
        if (!st.irqEnabled) return;
        yield k.msleep(20);
        break;
      case AP_RESPONSE.BUSY:
        yield k.msleep(20);
        break;
      default:
        vfio_ap_warn(md, 'vfio_ap_wait_for_irqclear', `vfio_ap_wait_for_irqclear: tapq rc ${hex2(st.responseCode)}: ${hex4(apqn)}`);
        return;
    }
  }
  vfio_ap_warn(md, 'vfio_ap_wait_for_irqclear', `vfio_ap_wait_for_irqclear: tapq rc ${hex2(st.responseCode)}: ${hex4(apqn)}`);
}

/** vfio_ap_irq_disable(): AQIC(IR=0) with retries, wait for I=0, free the resources. */
export function* vfio_ap_irq_disable(md: MatrixDev, q: VfioApQueue): KGen<ApQueueStatus> {
  const k = md.k;
  let st: ApQueueStatus = makeStatus(0);
  let done = false;
  for (let retries = 5; retries >= 0 && !done; retries--) {
    st = md.bus.machine.aqic(q.apqn, { ir: false, isc: 0 }, 0).status;
    switch (st.responseCode) {
      case AP_RESPONSE.OTHERWISE_CHANGED:
      case AP_RESPONSE.NORMAL:
        yield* vfio_ap_wait_for_irqclear(md, q.apqn);
        done = true;
        break;
      case AP_RESPONSE.RESET_IN_PROGRESS:
      case AP_RESPONSE.BUSY:
        yield k.msleep(20);
        break;
      default:
        vfio_ap_warn(md, 'vfio_ap_irq_disable', `vfio_ap_irq_disable: ap_aqic status ${st.responseCode}`);
        done = true;
    }
  }
  if (!done) vfio_ap_warn(md, 'vfio_ap_irq_disable', `vfio_ap_irq_disable: ap_aqic status ${st.responseCode}`);
  yield* vfio_ap_free_aqic_resources(md, q);
  return st;
}

/** vfio_ap_validate_nib(): GR2 must be a non-zero address inside a guest memory slot. */
function vfio_ap_validate_nib(vcpu: KvmVcpu): number | null {
  const nib = Number(vcpu.gprs[2]! & 0xffff_ffff_ffffn);
  if (!nib || !kvm_is_gpa_in_memslot(vcpu.kvm, nib)) return null;
  return nib;
}

/** vfio_ap_irq_enable(): pin the NIB, register the guest ISC, AQIC with the GISA. */
export function* vfio_ap_irq_enable(md: MatrixDev, q: VfioApQueue, isc: number, vcpu: KvmVcpu): KGen<ApQueueStatus> {
  const nib = vfio_ap_validate_nib(vcpu);
  if (nib === null) {
    vfio_ap_dbf(md, `vfio_ap_irq_enable: invalid NIB address: nib=0x${vcpu.gprs[2]!.toString(16)}, apqn=0x${hex4(q.apqn)}`);
    return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
  }
  const mdev = q.matrix_mdev!;
  const kvm = mdev.kvm!;
  // vfio_pin_pages(): exactly one page must be pinned.
  const hva = kvm_pin_guest_page(kvm, nib);
  if (hva < 0) {
    vfio_ap_dbf(md, `vfio_ap_irq_enable: pin of NIB 0x${nib.toString(16)} failed: rc=${hva}, apqn=0x${hex4(q.apqn)}`);
    return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
  }
  const h_nib = hva + (nib % PAGE_SIZE);
  const nisc = kvm_s390_gisc_register(kvm, isc);
  if (nisc < 0) {
    vfio_ap_dbf(md, `vfio_ap_irq_enable: gisc registration failed: nisc=${nisc}, isc=${isc}, apqn=0x${hex4(q.apqn)}`);
    kvm_unpin_guest_page(kvm, nib);
    return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
  }
  const st = kvm_s390_ap_aqic(kvm, q.apqn, kvm_s390_aqic_gisa_control(kvm, isc, nisc), h_nib).status;
  switch (st.responseCode) {
    case AP_RESPONSE.NORMAL:
      // Release the previous configuration (if any), keep the new one.
      yield* vfio_ap_free_aqic_resources(md, q);
      q.saved_iova = nib;
      q.saved_isc = isc;
      break;
    case AP_RESPONSE.OTHERWISE_CHANGED:
      kvm_s390_gisc_unregister(kvm, isc);
      kvm_unpin_guest_page(kvm, nib);
      break;
    default:
      md.k.pr_warn(`vfio_ap_irq_enable: apqn ${hex4(q.apqn)}: response: ${hex2(st.responseCode)}`);
      // The kernel leaves the new pin and ISC registration in place here (a leak).
      yield* vfio_ap_irq_disable(md, q);
  }
  if (st.responseCode !== AP_RESPONSE.NORMAL) vfio_ap_dbf(md, `vfio_ap_irq_enable: NIB registration failed: apqn=0x${hex4(q.apqn)}, rc=${st.responseCode}`);
  return st;
}

/**
 * handle_pqap(): vfio_ap's PQAP(AQIC) handler, called by KVM with the VM's
 * pqap_hook_rwsem held for read. Only mdevs_lock is taken here.
 */
export function* handle_pqap(md: MatrixDev, vcpu: KvmVcpu): KGen<number> {
  const k = md.k;
  const apqn = Number(vcpu.gprs[0]! & 0xffffn);
  if (!vcpu.sie_block.eca_aiv) {
    vfio_ap_dbf(md, `handle_pqap: AIV facility not installed: apqn=0x${hex4(apqn)}, eca=0`);
    return EOPNOTSUPP;
  }
  yield k.mutex_lock(md.mdevs_lock);
  let st: ApQueueStatus = makeStatus(AP_RESPONSE.Q_NOT_AVAIL);
  const owner = vcpu.kvm.arch.crypto.pqap_hook as MatrixMdev | null;
  if (!owner) {
    vfio_ap_dbf(md, `handle_pqap: PQAP(AQIC) hook not registered with the vfio_ap driver: apqn=0x${hex4(apqn)}`);
  } else if (!owner.kvm) {
    vfio_ap_dbf(md, `handle_pqap: mdev ${owner.uuid} not in use: apqn=0x${hex4(apqn)}`);
  } else {
    const q = vfio_ap_mdev_get_queue(owner, apqn);
    if (!q) {
      vfio_ap_dbf(md, `handle_pqap: Queue ${formatApqn(apqn)} not bound to the vfio_ap driver`);
    } else {
      const gr1 = vcpu.gprs[1]!;
      // IR is bit 16 of GR1 in IBM numbering: value bit 47.
      if ((gr1 >> 47n) & 1n) st = yield* vfio_ap_irq_enable(md, q, Number(gr1 & 7n), vcpu);
      else st = yield* vfio_ap_irq_disable(md, q);
    }
  }
  vcpu.gprs[1] = BigInt(encodeStatusWord(st));
  yield k.mutex_unlock(md.mdevs_lock);
  return 0;
}

/** vfio_ap_mdev_dma_unmap(): disable interrupts of queues whose NIB was in the range. */
export function* vfio_ap_mdev_dma_unmap(md: MatrixDev, mdev: MatrixMdev, iova: number, length: number): KGen<void> {
  const k = md.k;
  yield k.mutex_lock(md.mdevs_lock);
  for (const q of mdev.qtable.values()) if (q.saved_iova >= iova && q.saved_iova < iova + length) yield* vfio_ap_irq_disable(md, q);
  yield k.mutex_unlock(md.mdevs_lock);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
