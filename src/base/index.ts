// The driver core (drivers/base): buses, devices, drivers, classes, binding.
export * from './types.js';
export * from './core.js';
export * from './bus.js';
export * from './dd.js';
export * from './driver.js';
export * from './class.js';
