// VFIO + mdev core: the mdev bus and sysfs ABI, VFIO devices/groups/containers, device files
// and ioctls, eventfds, IOMMU groups. See README.md for how a driver and QEMU plug in.
export * from './file.js';
export * from './eventfd.js';
export * from './uapi.js';
export * from './iommu.js';
export * from './vfio_main.js';
export * from './group.js';
export * from './mdev.js';
export * from './user.js';
