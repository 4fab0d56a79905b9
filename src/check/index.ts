// apsim check: the concurrency checker.
export * from './scenario.js';
export * from './execution.js';
export * from './engine.js';
export * from './lock_order.js';
export * from './token.js';
export * from './mutants.js';
export * from './strategies/index.js';
export * from './scenarios/index.js';
