// apsim as a library: `import { Kernel, ... } from 'apsim'`.
export * from './kernel/index.js';
