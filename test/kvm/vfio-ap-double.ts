// A minimal vfio_ap + VFIO stand-in for the KVM tests (never shipped in src/): just enough of
// open/close (KVM attach/detach), the PQAP(AQIC) hook with NIB pinning and GISC registration,
// queue reset and the remove/request path to exercise KVM and the machine as vfio_ap does.
import type { KGen, Mutex } from '../../src/kernel/index.js';
import { AP_RESPONSE, apqnCard, apqnDomain, clearBit, encodeStatusWord, makeStatus, maskFromIds, testBit, type ApMask, type Apqn, type ApQueueStatus } from '../../src/hw/index.js';
import {
  kvm_arch_crypto_clear_masks,
  kvm_arch_crypto_set_masks,
  kvm_get_kvm,
  kvm_get_kvm_safe,
  kvm_is_gpa_in_memslot,
  kvm_pin_guest_page,
  kvm_put_kvm,
  kvm_s390_ap_aqic,
  kvm_s390_aqic_gisa_control,
  kvm_s390_gisc_register,
  kvm_s390_gisc_unregister,
  kvm_s390_pqap_hook_clear,
  kvm_s390_pqap_hook_set,
  kvm_unpin_guest_page,
  kvm_vfio_file_add,
  type CryptoHook,
  type Kvm,
  type KvmVcpu,
} from '../../src/kvm/index.js';
import type { World } from './helpers.js';

interface QueueDouble {
  apqn: Apqn;
  saved_iova: number;
  saved_isc: number;
  reset_rc: number;
}

export class MatrixDevDouble {
  readonly guests_lock: Mutex;
  readonly mdevs_lock: Mutex;
  constructor(readonly w: World) {
    this.guests_lock = w.k.mutex_init('&matrix_dev->guests_lock');
    this.mdevs_lock = w.k.mutex_init('&matrix_dev->mdevs_lock');
  }
}

/** matrix_mdev + its VFIO device (open count, VFIO core's kvm reference, the group's kvm pointer). */
export class MdevDouble {
  kvm: Kvm | null = null;
  pqap_hook: CryptoHook | null;
  readonly queues = new Map<Apqn, QueueDouble>();
  apm: ApMask;
  aqm: ApMask;
  adm: ApMask;
  /** VFIO side */
  groupKvm: Kvm | null = null;
  vfioKvm: Kvm | null = null;
  readonly dev_set: Mutex;
  req_count = 0;

  constructor(
    readonly md: MatrixDevDouble,
    apids: number[],
    apqis: number[],
  ) {
    this.apm = maskFromIds(apids);
    this.aqm = maskFromIds(apqis);
    this.adm = maskFromIds(apqis);
    for (const a of apids) for (const d of apqis) this.queues.set((a << 8) | d, { apqn: (a << 8) | d, saved_iova: 0, saved_isc: 0xff, reset_rc: 0 });
    this.dev_set = md.w.k.mutex_init('&dev_set->lock');
    this.pqap_hook = (vcpu) => this.handle_pqap(vcpu);
  }

  /** QEMU: KVM_DEV_VFIO_FILE_ADD for this device's group. */
  *associate(kvm: Kvm): KGen<number> {
    return yield* kvm_vfio_file_add(kvm, this, (to) => this.set_kvm(to));
  }

  *set_kvm(to: Kvm | null): KGen<void> {
    yield this.md.w.k.mutex_lock(this.dev_set);
    this.groupKvm = to;
    yield this.md.w.k.mutex_unlock(this.dev_set);
  }

  /** vfio_device_open → open_device (VFIO core takes its safe reference first). */
  *open(): KGen<number> {
    const k = this.md.w.k;
    yield k.mutex_lock(this.dev_set);
    if (this.groupKvm && (yield* kvm_get_kvm_safe(this.groupKvm))) this.vfioKvm = this.groupKvm;
    const rc = yield* k.fn('vfio_ap_mdev_open_device', this.open_device());
    if (rc !== 0 && this.vfioKvm) {
      yield k.mutex_unlock(this.dev_set);
      const kvm = this.vfioKvm;
      this.vfioKvm = null;
      yield* kvm_put_kvm(kvm);
      return rc;
    }
    yield k.mutex_unlock(this.dev_set);
    return rc;
  }

  private *open_device(): KGen<number> {
    const k = this.md.w.k;
    const kvm = this.vfioKvm;
    if (!kvm) return -22; // -EINVAL
    // Fixed design: refuse a second mdev before touching the VM's hook.
    yield k.down_read(kvm.arch.crypto.pqap_hook_rwsem);
    const busy = kvm.arch.crypto.pqap_hook !== null;
    yield k.up_read(kvm.arch.crypto.pqap_hook_rwsem);
    if (busy) return -1; // -EPERM
    yield* kvm_s390_pqap_hook_set(kvm, this);
    yield k.mutex_lock(this.md.guests_lock);
    yield k.mutex_lock(kvm.lock);
    yield k.mutex_lock(this.md.mdevs_lock);
    yield* kvm_get_kvm(kvm);
    this.kvm = kvm;
    yield* kvm_arch_crypto_set_masks(kvm, this.apm, this.aqm, this.adm);
    yield k.mutex_unlock(this.md.mdevs_lock);
    yield k.mutex_unlock(kvm.lock);
    yield k.mutex_unlock(this.md.guests_lock);
    return 0;
  }

  /** vfio_device_fops_release → close_device; VFIO core's put after dev_set is released. */
  *close(): KGen<void> {
    const k = this.md.w.k;
    yield k.mutex_lock(this.dev_set);
    yield* k.fn('vfio_ap_mdev_close_device', this.close_device());
    const kvm = this.vfioKvm;
    this.vfioKvm = null;
    yield k.mutex_unlock(this.dev_set);
    if (kvm) yield* kvm_put_kvm(kvm);
  }

  private *close_device(): KGen<void> {
    const k = this.md.w.k;
    const kvm = this.kvm;
    if (!kvm) return;
    yield* kvm_s390_pqap_hook_clear(kvm);
    yield k.mutex_lock(this.md.guests_lock);
    yield k.mutex_lock(kvm.lock);
    yield k.mutex_lock(this.md.mdevs_lock);
    yield* kvm_arch_crypto_clear_masks(kvm);
    for (const q of this.queues.values()) this.reset_queue(q);
    yield* kvm_put_kvm(kvm); // never the last: VFIO core still holds one
    this.kvm = null;
    yield k.mutex_unlock(this.md.mdevs_lock);
    yield k.mutex_unlock(kvm.lock);
    yield k.mutex_unlock(this.md.guests_lock);
  }

  /** ZAPQ (completion not awaited here) and release of the queue's interrupt resources. */
  reset_queue(q: QueueDouble): number {
    const m = this.md.w.m;
    const r = m.zapq(q.apqn);
    q.reset_rc = r.status.responseCode;
    this.free_aqic_resources(q);
    return q.reset_rc;
  }

  free_aqic_resources(q: QueueDouble): void {
    if (q.saved_isc !== 0xff && this.kvm) kvm_s390_gisc_unregister(this.kvm, q.saved_isc);
    if (q.saved_iova && this.kvm) kvm_unpin_guest_page(this.kvm, q.saved_iova);
    q.saved_isc = 0xff;
    q.saved_iova = 0;
  }

  /** The pqap hook (vfio_ap's handle_pqap). */
  *handle_pqap(vcpu: KvmVcpu): KGen<number> {
    const k = this.md.w.k;
    if (!vcpu.sie_block.eca_aiv) return -95;
    yield k.mutex_lock(this.md.mdevs_lock);
    const apqn = Number(vcpu.gprs[0]! & 0xffffn);
    const gr1 = vcpu.gprs[1]!;
    const ir = ((gr1 >> 47n) & 1n) === 1n;
    const isc = Number(gr1 & 7n);
    const nib = Number(vcpu.gprs[2]!);
    let st: ApQueueStatus = makeStatus(AP_RESPONSE.Q_NOT_AVAIL);
    const q = this.queues.get(apqn);
    if (this.kvm && q) st = ir ? this.irq_enable(q, isc, nib) : this.irq_disable(q);
    vcpu.gprs[1] = BigInt(encodeStatusWord(st));
    yield k.mutex_unlock(this.md.mdevs_lock);
    return 0;
  }

  private irq_enable(q: QueueDouble, isc: number, nib: number): ApQueueStatus {
    const kvm = this.kvm!;
    if (nib === 0 || !kvm_is_gpa_in_memslot(kvm, nib)) return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
    const h_nib = kvm_pin_guest_page(kvm, nib);
    if (h_nib < 0) return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
    const nisc = kvm_s390_gisc_register(kvm, isc);
    if (nisc < 0) {
      kvm_unpin_guest_page(kvm, nib);
      return makeStatus(AP_RESPONSE.INVALID_ADDRESS);
    }
    const r = kvm_s390_ap_aqic(kvm, q.apqn, kvm_s390_aqic_gisa_control(kvm, isc, nisc), h_nib);
    if (r.status.responseCode === 0) {
      this.free_aqic_resources(q);
      q.saved_iova = nib;
      q.saved_isc = isc;
    } else {
      kvm_s390_gisc_unregister(kvm, isc);
      kvm_unpin_guest_page(kvm, nib);
    }
    return r.status;
  }

  private irq_disable(q: QueueDouble): ApQueueStatus {
    const r = kvm_s390_ap_aqic(this.kvm!, q.apqn, { ir: false, isc: 0 }, 0);
    this.free_aqic_resources(q);
    return r.status;
  }

  /** The VFIO request callback (mdev remove while open): the guest loses its AP access at once. */
  *request(): KGen<void> {
    const k = this.md.w.k;
    yield k.mutex_lock(this.md.guests_lock);
    const kvm = this.kvm;
    if (kvm) yield k.mutex_lock(kvm.lock);
    yield k.mutex_lock(this.md.mdevs_lock);
    if (kvm) yield* kvm_arch_crypto_clear_masks(kvm);
    this.req_count++;
    yield k.mutex_unlock(this.md.mdevs_lock);
    if (kvm) yield k.mutex_unlock(kvm.lock);
    yield k.mutex_unlock(this.md.guests_lock);
  }

  /** Filter an adapter out of the guest (after a failed reset). */
  *unplug_adapter(apid: number): KGen<void> {
    const k = this.md.w.k;
    const kvm = this.kvm!;
    yield k.mutex_lock(this.md.guests_lock);
    yield k.mutex_lock(kvm.lock);
    yield k.mutex_lock(this.md.mdevs_lock);
    clearBit(this.apm, apid);
    yield* kvm_arch_crypto_set_masks(kvm, this.apm, this.aqm, this.adm);
    yield k.mutex_unlock(this.md.mdevs_lock);
    yield k.mutex_unlock(kvm.lock);
    yield k.mutex_unlock(this.md.guests_lock);
  }

  inShadow(q: Apqn): boolean {
    return testBit(this.apm, apqnCard(q)) && testBit(this.aqm, apqnDomain(q));
  }
}
