// KVM for s390 crypto pass-through: VM lifetime, kvm->lock, vCPUs and SIE blocking, the CRYCB,
// PQAP interception with the pqap hook, GISA/GISC and guest memory pins, the kvm-vfio device, and
// guest AP instructions under APIE. See README.md in this directory for how VFIO and vfio_ap plug in.
export * from './kvm.js';
export * from './vcpu.js';
export * from './crycb.js';
export * from './priv.js';
export * from './gisa.js';
export * from './memslot.js';
export * from './kvm_vfio.js';
export * from './sie.js';
