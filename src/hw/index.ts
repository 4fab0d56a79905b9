// Public API of the simulated IBM Z machine (src/hw). Nothing here knows about Linux.

export * from './apqn.js';
export * from './mask.js';
export * from './errors.js';
export * from './status.js';
export * from './registers.js';
export * from './profile.js';
export * from './profiles.js';
export * from './hmc.js';
export * from './machine.js';
export * from './instructions.js';
