// QEMU for s390x guests with AP pass-through: the process and its vfio-ap device, the ap-bus,
// the CFG_CHG → CRW → CHSC SEI path, and the guest kernel's AP bus as the host observes it.
export * from './qemu.js';
export * from './guest_ap.js';
