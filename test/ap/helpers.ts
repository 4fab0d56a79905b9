// Test fixtures for the AP bus: a booted host and a minimal non-default AP driver
// standing in for vfio_ap (tests only; the real driver comes with src/vfio_ap).
import type { KGen, Kernel } from '../../src/kernel/index.js';
import { Host, type HostOptions } from '../../src/host/index.js';
import {
  AP_DEVICE_ID_MATCH_QUEUE_TYPE,
  type ApDevice,
  type ApDriver,
  type ApQueue,
} from '../../src/ap/index.js';
import { type ApMask, maskIds, formatApqn, apqn, type Apqn } from '../../src/hw/index.js';
import { driver_register } from '../../src/base/driver.js';

/** A non-default AP queue driver: binds whatever the masks do not reserve. */
export class NonDefaultDouble {
  readonly drv: ApDriver;
  /** APQNs "assigned to an mdev": in_use answers for them. */
  readonly assigned = new Map<Apqn, string>();
  readonly probed: string[] = [];
  readonly removed: string[] = [];
  constructor(h: Host, name = 'vfio_ap') {
    this.drv = {
      name,
      bus: h.ap.bus,
      flags: 0,
      ids: [10, 11, 12, 13, 14].map((t) => ({ match_flags: AP_DEVICE_ID_MATCH_QUEUE_TYPE, dev_type: t })),
      probe: (_k: Kernel, dev: ApDevice) => this.probe(dev),
      remove: (_k: Kernel, dev: ApDevice) => this.remove(dev),
      in_use: (k: Kernel, apm: ApMask, aqm: ApMask) => this.in_use(k, apm, aqm),
    };
  }
  private *probe(dev: ApDevice): KGen<number> {
    this.probed.push(dev.name);
    return 0;
  }
  private *remove(dev: ApDevice): KGen<void> {
    this.removed.push(dev.name);
  }
  private *in_use(k: Kernel, apm: ApMask, aqm: ApMask): KGen<number> {
    let busy = 0;
    for (const a of maskIds(apm))
      for (const d of maskIds(aqm)) {
        const owner = this.assigned.get(apqn(a, d));
        if (owner) {
          k.pr_warn(`vfio_ap_mdev ${owner}: Userspace may not re-assign queue ${formatApqn(apqn(a, d))} already assigned to ${owner}`);
          busy = 1;
        }
      }
    return busy;
  }
  register(h: Host): void {
    h.k.spawn('insmod', driver_register(this.drv));
    h.settle();
  }
}

/** A host without vfio_ap: these tests bring their own non-default driver. */
export function boot(opts: HostOptions = {}): Host {
  return Host.boot({ profile: 'default', vfio_ap: false, ...opts });
}

/** The name of the driver a queue is bound to, or null. */
export function driverOf(h: Host, name: string): string | null {
  const q = [...h.ap.queues.values()].find((x) => x.name === name) as ApQueue | undefined;
  return q?.driver?.name ?? null;
}

export const FULL = '0x' + 'f'.repeat(64) + '\n';
