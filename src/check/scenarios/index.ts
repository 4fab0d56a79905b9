// The built-in scenario library. vfio_ap scenarios join here when src/vfio_ap lands.
import { registerScenario, getScenario } from '../scenario.js';
import { locks5 } from './locks5.js';
import { apScenarios } from './ap.js';

export { locks5, defaultLocks5Pieces, type Locks5Pieces } from './locks5.js';
export { apScenarios, apOps, ApStub, defaultApStubPieces, type ApStubPieces, type ApOp } from './ap.js';

let done = false;
/** Registers the built-in library (idempotent). */
export function registerBuiltins(): void {
  if (done) return;
  done = true;
  if (!getScenario('locks5')) registerScenario(locks5());
  for (const s of apScenarios()) registerScenario(s);
}
