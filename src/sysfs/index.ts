// sysfs: the kernfs tree, attribute I/O with the kernel's semantics, and uevents.
export * from './kernfs.js';
export * from './uevent.js';
export * from './sysfs.js';
