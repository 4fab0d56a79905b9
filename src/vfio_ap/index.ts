// The vfio_ap driver (drivers/s390/crypto/vfio_ap_*.c).
export * from './private.js';
export * from './pieces.js';
export * from './matrix.js';
export * from './locks.js';
export * from './ops.js';
export * from './queue.js';
export * from './reset.js';
export * from './irq.js';
export * from './vfio.js';
export * from './attrs.js';
export * from './drv.js';
export * from './invariants.js';
export * from './lock_order.js';
