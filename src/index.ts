// apsim as a library: `import { Host, Kernel, … } from 'apsim'`. The runtime and the
// Host are top-level; each layer is also available as a namespace.
export * from './kernel/index.js';
export { Host, SysfsError, BOOT_SETTLE_NS, type HostOptions } from './host/index.js';
export * as hw from './hw/index.js';
export * as sysfs from './sysfs/index.js';
export * as base from './base/index.js';
export * as ap from './ap/index.js';
export * as kvm from './kvm/index.js';
export * as vfio from './vfio/index.js';
export * as qemu from './qemu/index.js';
export * as vfio_ap from './vfio_ap/index.js';
export * as check from './check/index.js';
