// Preloaded into every test process: property tests run with a fixed fast-check seed
// so the suite is deterministic (set FC_SEED to explore other inputs).
import fc from 'fast-check';

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 0x5eed;
fc.configureGlobal({ seed });
