// Guest interruption state area (GISA) and the guest-ISC registration with the GISA interruption
// block (GIB), arch/s390/kvm/interrupt.c (spec 4.5).
//
// A pass-through AP queue delivers its interruptions straight into the guest: AQIC is issued with
// the GISA origin, the guest ISC (gisc) and the host GIB ISC; the adapter then sets the guest's
// NIB and the gisc bit in the GISA's interruption-pending mask (IPM). When no vCPU is in SIE the
// GIB raises a host interruption on the GIB ISC (an "alert") so that a vCPU gets kicked.
// kvm_s390_gisc_register/unregister keep a reference count per guest ISC; the first user sets the
// ISC's bit in the GISA interruption-alert mask (IAM), the last one clears it.

import type { AqicControl } from '../hw/registers.js';
import type { InterruptEvent } from '../hw/machine.js';
import type { Apqn } from '../hw/apqn.js';
import type { ApResult } from '../hw/status.js';
import { E } from '../kernel/errno.js';
import type { Kvm, KvmHost } from './kvm.js';
import { kvm_s390_vcpus_in_sie } from './vcpu.js';

export const MAX_ISC = 7;

/** kvm->arch.gisa_int (struct kvm_s390_gisa_interrupt). */
export class KvmS390GisaInterrupt {
  /** Physical address of the GISA; 0 = the VM has none. */
  origin = 0;
  /** Interruption-alert mask (0x80 >> gisc) and the per-gisc reference counts. */
  readonly alert = { mask: 0, ref_count: [0, 0, 0, 0, 0, 0, 0, 0] };
  /** Interruption-pending mask: guest ISCs with a pending adapter interruption. */
  ipm = 0;
  /** apsim: every adapter interruption the machine delivered into this GISA, in order. */
  readonly delivered: InterruptEvent[] = [];
}

/** kvm_s390_gisa_init(): the GISA lives in sie_page2 (below 2 GiB, 16-byte aligned). */
export function kvm_s390_gisa_init(kvm: Kvm): void {
  kvm.arch.gisa_int.origin = kvm.arch.crypto.crycb.addr + 0x1000;
}

/** kvm_s390_gisa_destroy(): warns, as the kernel does, if guest ISCs are still registered. */
export function kvm_s390_gisa_destroy(kvm: Kvm): void {
  const gi = kvm.arch.gisa_int;
  if (!gi.origin) return;
  kvm.host.k.WARN_ON(gi.alert.mask !== 0, `unexpected non zero alert.mask 0x${gi.alert.mask.toString(16).padStart(2, '0')}`);
  gi.alert.mask = 0;
  gi.origin = 0;
}

/**
 * kvm_s390_gisc_register(): -ENODEV without a GISA, -ERANGE for gisc > 7; else counts the user and
 * returns the host GIB ISC to put into AQIC. (A spinlock in the kernel: no scheduling point.)
 */
export function kvm_s390_gisc_register(kvm: Kvm, gisc: number): number {
  const gi = kvm.arch.gisa_int;
  if (!gi.origin) return -E.ENODEV;
  if (!Number.isInteger(gisc) || gisc < 0 || gisc > MAX_ISC) return -E.ERANGE;
  if (++gi.alert.ref_count[gisc]! === 1) gi.alert.mask |= 0x80 >> gisc;
  return kvm.host.gib.nisc;
}

/**
 * kvm_s390_gisc_unregister(). The kernel would let the count go negative silently; apsim WARNs on
 * an unregister without a matching register (unbalanced) and leaves the count at 0.
 */
export function kvm_s390_gisc_unregister(kvm: Kvm, gisc: number): number {
  const gi = kvm.arch.gisa_int;
  if (!gi.origin) return -E.ENODEV;
  if (!Number.isInteger(gisc) || gisc < 0 || gisc > MAX_ISC) return -E.ERANGE;
  if (kvm.host.k.WARN_ON(gi.alert.ref_count[gisc] === 0, `kvm_s390_gisc_unregister(${gisc}) without registration`)) return 0;
  if (--gi.alert.ref_count[gisc]! === 0) gi.alert.mask &= ~(0x80 >> gisc);
  return 0;
}

/** GISA origin as AQIC wants it (virt_to_phys(kvm->arch.gisa_int.origin)). */
export function kvm_s390_gisa_origin(kvm: Kvm): number {
  return kvm.arch.gisa_int.origin;
}

/**
 * The AQIC control word vfio_ap builds to pass a queue's interruptions through to the guest:
 * IR=1, ISC = host GIB ISC (from kvm_s390_gisc_register), gisc = guest ISC, GISA origin.
 */
export function kvm_s390_aqic_gisa_control(kvm: Kvm, gisc: number, nisc: number): AqicControl {
  return { ir: true, isc: nisc, gisc, gisa: kvm_s390_gisa_origin(kvm) };
}

/** Issues AQIC on the machine (ap_aqic). `hostNib` is the host address of the pinned NIB byte. */
export function kvm_s390_ap_aqic(kvm: Kvm, apqn: Apqn, ctrl: AqicControl, hostNib: number): ApResult {
  return kvm.host.machine.aqic(apqn, ctrl, hostNib);
}

/**
 * Machine → GISA: an adapter interruption that carries a GISA origin is made pending in that VM's
 * GISA (IPM bit of the guest ISC). If no vCPU of the VM is in SIE and the ISC is in the alert mask,
 * the GIB alerts the host. Interruptions for a GISA no live VM owns are dropped (counted nowhere).
 */
export function kvm_s390_gisa_deliver(host: KvmHost, e: InterruptEvent): void {
  if (!e.gisa) return;
  const kvm = host.vm_list.find((v) => v.arch.gisa_int.origin === e.gisa);
  if (!kvm) return;
  const gi = kvm.arch.gisa_int;
  const bit = 0x80 >> (e.gisc & 7);
  gi.ipm |= bit;
  gi.delivered.push(e);
  if (kvm_s390_vcpus_in_sie(kvm).length === 0 && (gi.alert.mask & bit) !== 0) host.gib.alerts++;
}
