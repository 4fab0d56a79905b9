// The replaceable pieces of vfio_ap: the few places where the fixed driver and
// documented historical or mainline designs differ. Production code calls these
// by name; a kernel profile or a checker mutant swaps one piece, so no scattered
// "if (mainline)" lives in the driver.

/** How the reservation check of assign/ap_config is locked (seed 003). */
export type AssignLocking =
  /** Fixed design: ap_attr_mutex first, then guests_lock ...; the bus query takes no lock. */
  | 'attr-mutex-first'
  /** Original design: guests_lock ... first; the reservation query takes ap_attr_mutex inside. */
  | 'query-takes-attr-mutex';

/** How in_use takes guests_lock (called by the AP bus with ap_attr_mutex held). */
export type InUseLocking = 'blocking' | 'trylock';

/** Where attach (open with a KVM) sets the VM's pqap hook. */
export type AttachHook =
  /** Fixed: after the -EPERM check, under kvm->lock, before mdevs_lock. */
  | 'checked-under-kvm-lock'
  /** Mainline: before taking any driver lock, so a rejected second open steals the hook. */
  | 'mainline-before-check'
  /** Seed 004 v3: the rwsem is taken for write while holding the matrix (mdevs) lock. */
  | 'under-mdevs-lock';

/** Which control domains on_config_changed removes from the guest. */
export type CfgRemoveCdoms =
  /** Fixed: removed from the host and assigned to the mdev. */
  | 'removed-and-assigned'
  /** Mainline quirk: "removed but not assigned", so lost control domains stay plugged. */
  | 'mainline-andnot';

/** What mdev remove does while the device is open (seed 004). */
export type RemoveWhileOpen =
  /** Fixed: VFIO core waits (request every 10 s) and the driver cleans up fully. */
  | 'wait-and-clean'
  /** Seed 004 v3: return -EBUSY; mdev core removes the device anyway and the object leaks. */
  | 'ebusy-leak';

export interface VfioApPieces {
  assignLocking: AssignLocking;
  inUseLocking: InUseLocking;
  attachHook: AttachHook;
  cfgRemoveCdoms: CfgRemoveCdoms;
  removeWhileOpen: RemoveWhileOpen;
  /** The lock a new mdev is put on mdev_list under (mainline <= 6.17: mdevs_lock). */
  mdevListLock: 'guests_lock' | 'mdevs_lock';
  /** probe_queue: status group and allocation after (fixed) or before (mainline) the locks. */
  probeQueueOrder: 'locks-first' | 'alloc-first';
  /** on_config_changed pushes when the shadow changed (fixed) or whenever it is non-empty (mainline). */
  cfgRemovePush: 'on-change' | 'when-nonempty';
  /**
   * on_config_changed / on_scan_complete take kvm->lock only for attached mdevs
   * (fixed) or always (mainline <= 6.17: a NULL dereference for a detached mdev).
   */
  cfgKvmLock: 'if-attached' | 'always';
  /** on_scan_complete's "filtered adapters": zeroed (fixed) or uninitialised (mainline). */
  scanCompleteFiltered: 'zeroed' | 'uninitialised';
  /** A reset answered RC 01: release the interrupt resources (newest) or WARN (mainline). */
  resetRc01: 'release' | 'warn';
  /**
   * Where get_update_locks_for_queue reads the queue's back reference to its mdev:
   * under guests_lock (the kernel) or before taking it (an earlier version of this
   * model, whose use-after-free apsim check found).
   */
  queueMdevRead: 'under-guests-lock' | 'before-guests-lock';
}

/** The default profile: the fixed behaviour of the spec. */
export const defaultVfioApPieces: Readonly<VfioApPieces> = Object.freeze({
  assignLocking: 'attr-mutex-first',
  inUseLocking: 'blocking',
  attachHook: 'checked-under-kvm-lock',
  cfgRemoveCdoms: 'removed-and-assigned',
  removeWhileOpen: 'wait-and-clean',
  mdevListLock: 'guests_lock',
  probeQueueOrder: 'locks-first',
  cfgRemovePush: 'on-change',
  cfgKvmLock: 'if-attached',
  scanCompleteFiltered: 'zeroed',
  resetRc01: 'release',
  queueMdevRead: 'under-guests-lock',
});

/** The `mainline` kernel profile: the [MAINLINE-QUIRK]s of the spec that have a piece. */
export const mainlineVfioApPieces: Readonly<VfioApPieces> = Object.freeze({
  ...defaultVfioApPieces,
  attachHook: 'mainline-before-check',
  cfgRemoveCdoms: 'mainline-andnot',
  mdevListLock: 'mdevs_lock',
  probeQueueOrder: 'alloc-first',
  cfgRemovePush: 'when-nonempty',
  cfgKvmLock: 'always',
  scanCompleteFiltered: 'uninitialised',
  resetRc01: 'warn',
} satisfies VfioApPieces);
