// Per-object attachments (the kernel's "private data" pointers kept by another
// subsystem: an mdev's parent device, a device's IOMMU group). Stored on the key
// object under a private symbol rather than in a WeakMap, so that world snapshots
// (snapshot.ts), which walk objects, save and restore them with their owner.
import { noteReshape } from './snapshot.js';

export class SideTable<K extends object, V> {
  private readonly sym: symbol;
  constructor(name: string) {
    this.sym = Symbol(name);
  }
  get(key: K): V | undefined {
    return (key as Record<symbol, V | undefined>)[this.sym];
  }
  set(key: K, value: V): void {
    if (!(this.sym in key)) noteReshape(key);
    (key as Record<symbol, V | undefined>)[this.sym] = value;
  }
  /** Clears the attachment (kept as an undefined slot: objects keep their shape). */
  delete(key: K): void {
    if (this.sym in key) (key as Record<symbol, V | undefined>)[this.sym] = undefined;
  }
}
