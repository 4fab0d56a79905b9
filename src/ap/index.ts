// The host AP bus and the zcrypt default drivers.
export * from './ap_bus.js';
export * from './ap_device.js';
export * from './ap_queue_sm.js';
export * from './ap_poll.js';
export * from './mask_str.js';
export * from './zcrypt.js';
export { apCardAttrs, apCardGroups } from './ap_card_attrs.js';
export { apQueueAttrs, apQueueGroups } from './ap_queue_attrs.js';
