// Guest memory, minimally: the memory slots userspace registered (KVM_SET_USER_MEMORY_REGION)
// and per-page pin counts. vfio_ap validates an AQIC notification-indicator-byte (NIB) address
// against the memslots (kvm_is_gpa_in_memslot) and pins the page that holds it for as long as the
// queue's interruptions are enabled (spec 4.5, vfio-ap-driver 6.4). In Linux the pin goes through
// VFIO (vfio_pin_pages on the emulated IOMMU); apsim keeps the counts here, on the VM, so that an
// unbalanced pin/unpin is visible wherever the driver model lives.

import type { Kvm } from './kvm.js';
import { E } from '../kernel/errno.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** One guest memory slot: guest physical [base, base + size) backed by host memory at hostBase. */
export interface KvmMemorySlot {
  readonly slot: number;
  /** Guest physical address of the first byte (page aligned). */
  readonly base: number;
  readonly size: number;
  /** Host (userspace) address the slot is mapped from; used to form the host NIB address. */
  readonly hostBase: number;
}

export interface KvmMemoryRegion {
  base: number;
  size: number;
}

export class KvmMemslots {
  readonly slots: KvmMemorySlot[] = [];
  /** Pin count per guest page frame number. */
  readonly pinned = new Map<number, number>();
  /** Pins and unpins ever done (for balance assertions). */
  pins = 0;
  unpins = 0;

  constructor(regions: readonly KvmMemoryRegion[], hostBase: number) {
    let host = hostBase;
    regions.forEach((r, i) => {
      if (!Number.isSafeInteger(r.base) || !Number.isSafeInteger(r.size) || r.base < 0 || r.size <= 0 || r.base % PAGE_SIZE || r.size % PAGE_SIZE)
        throw new RangeError(`memslot ${i}: base and size must be page-aligned, size > 0: ${r.base}+${r.size}`);
      this.slots.push({ slot: i, base: r.base, size: r.size, hostBase: host });
      host += r.size;
    });
  }

  /** Total pages currently pinned (sum of counts). */
  get pinnedPages(): number {
    let n = 0;
    for (const c of this.pinned.values()) n += c;
    return n;
  }
}

function slotOf(kvm: Kvm, gpa: number): KvmMemorySlot | undefined {
  if (!Number.isSafeInteger(gpa) || gpa < 0) return undefined;
  return kvm.memslots.slots.find((s) => gpa >= s.base && gpa < s.base + s.size);
}

/** kvm_is_gpa_in_memslot(): is the guest physical address backed by a memslot? */
export function kvm_is_gpa_in_memslot(kvm: Kvm, gpa: number): boolean {
  return slotOf(kvm, gpa) !== undefined;
}

/** gpa_to_hva(): host address of a guest byte, or undefined outside every memslot. */
export function gpa_to_hva(kvm: Kvm, gpa: number): number | undefined {
  const s = slotOf(kvm, gpa);
  return s === undefined ? undefined : s.hostBase + (gpa - s.base);
}

/**
 * Pins the guest page that holds `gpa` (what vfio_pin_pages does for vfio_ap's NIB) and returns
 * the host address of that byte, or -EFAULT when gpa is outside every memslot.
 */
export function kvm_pin_guest_page(kvm: Kvm, gpa: number): number {
  const hva = gpa_to_hva(kvm, gpa);
  if (hva === undefined) return -E.EFAULT;
  const ms = kvm.memslots;
  const gfn = Math.floor(gpa / PAGE_SIZE);
  ms.pinned.set(gfn, (ms.pinned.get(gfn) ?? 0) + 1);
  ms.pins++;
  return hva;
}

/** Unpins the page holding gpa. Unpinning a page that is not pinned is a WARN (unbalanced). */
export function kvm_unpin_guest_page(kvm: Kvm, gpa: number): number {
  const ms = kvm.memslots;
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const c = ms.pinned.get(gfn) ?? 0;
  if (kvm.host.k.WARN_ON(c === 0, `unpin of guest page 0x${gfn.toString(16)} that is not pinned`)) return -E.EINVAL;
  if (c === 1) ms.pinned.delete(gfn);
  else ms.pinned.set(gfn, c - 1);
  ms.unpins++;
  return 0;
}
