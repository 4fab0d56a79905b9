// The built-in scenario library: synthetic locks5, the AP bus with a stand-in driver, vfio_ap.
import { registerScenario, getScenario } from '../scenario.js';
import { locks5 } from './locks5.js';
import { apScenarios } from './ap.js';
import { vfioApScenarios } from './vfio_ap.js';

export { locks5, defaultLocks5Pieces, LOCKS5_ORDER, type Locks5Pieces } from './locks5.js';
export { vfioApScenarios, vaOps, vaScenario, bootVfioAp, BareVfioUser, type VaWorld, type VaOp, type VfioApSetup, type UserB } from './vfio_ap.js';
export { apScenarios, apOps, ApStub, defaultApStubPieces, type ApStubPieces, type ApOp } from './ap.js';

let done = false;
/** Registers the built-in library (idempotent). */
export function registerBuiltins(): void {
  if (done) return;
  done = true;
  if (!getScenario('locks5')) registerScenario(locks5());
  for (const s of apScenarios()) registerScenario(s);
  for (const s of vfioApScenarios()) registerScenario(s);
}
