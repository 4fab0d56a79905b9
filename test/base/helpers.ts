// A small AP-like world for driver-core tests: bus "ap" with root device
// /sys/devices/ap, cards "cardXX" and queues "XX.YYYY", drivers cex4card,
// cex4queue and vfio_ap.
import { Kernel, Errno, E, type KGen } from '../../src/kernel/index.js';
import { runInTask, UeventEnv } from '../../src/sysfs/index.js';
import {
  DriverCore, Device, bus_register, device_add, driver_register, root_device_register,
  device_lock_assert, type BusType, type DeviceDriver, type DeviceType,
} from '../../src/base/index.js';

export const card_type: DeviceType = { name: 'ap_card' };
export const queue_type: DeviceType = { name: 'ap_queue' };

export interface World {
  k: Kernel;
  core: DriverCore;
  bus: BusType;
  root: Device;
  cex4card: DeviceDriver;
  cex4queue: DeviceDriver;
  vfio_ap: DeviceDriver;
  /** Queue names vfio_ap may take (others: cex4queue). */
  forVfio: Set<string>;
  /** Probe results to inject: device name -> negative errno. */
  probeFail: Map<string, number>;
  probed: string[];
  removed: string[];
  run<T>(body: KGen<T>, comm?: string): T;
}

export function makeWorld(opts: { drivers?: boolean; seed?: number } = {}): World {
  const k = new Kernel({ seed: opts.seed ?? 1 });
  const core = new DriverCore(k);
  const forVfio = new Set<string>();
  const probeFail = new Map<string, number>();
  const probed: string[] = [];
  const removed: string[] = [];
  const bus: BusType = {
    name: 'ap',
    match(dev, drv) {
      if (dev.type === card_type) return drv.name === 'cex4card';
      if (dev.type === queue_type) return drv.name === (forVfio.has(dev.name) ? 'vfio_ap' : 'cex4queue');
      return false;
    },
    uevent(dev: Device, env: UeventEnv) {
      if (dev.type === card_type) {
        env.add('DEV_TYPE=000D');
        env.add('MODALIAS=ap:t0D');
      }
      return 0;
    },
  };
  const mk = (name: string): DeviceDriver => ({
    name,
    bus,
    *probe(kk, dev) {
      device_lock_assert(dev);
      kk.lockdep_assert_held(dev.mutex);
      yield kk.sched_point(`${name} probe ${dev.name}`);
      probed.push(`${name}:${dev.name}`);
      const f = probeFail.get(dev.name);
      if (f !== undefined) {
        if (f === -E.EIO) throw new Errno(E.EIO);
        return f;
      }
      return 0;
    },
    *remove(kk, dev) {
      device_lock_assert(dev);
      yield kk.sched_point(`${name} remove ${dev.name}`);
      removed.push(`${name}:${dev.name}`);
    },
  });
  const w: World = {
    k, core, bus, root: null as unknown as Device,
    cex4card: mk('cex4card'), cex4queue: mk('cex4queue'), vfio_ap: mk('vfio_ap'),
    forVfio, probeFail, probed, removed,
    run: (body, comm = 'modprobe') => runInTask(k, comm, body),
  };
  bus_register(core, bus);
  w.root = w.run(root_device_register(core, 'ap'));
  w.root.bus = bus; // as ap_bus_init does after registering the root device
  if (opts.drivers !== false) {
    w.run(driver_register(w.cex4card));
    w.run(driver_register(w.cex4queue));
    w.run(driver_register(w.vfio_ap));
  }
  return w;
}

export function newCard(w: World, id: number): Device {
  const d = new Device(w.core, `card${id.toString(16).padStart(2, '0')}`);
  d.parent = w.root;
  d.bus = w.bus;
  d.type = card_type;
  return d;
}

export function newQueue(w: World, card: Device, dom: number): Device {
  const d = new Device(w.core, `${card.name.slice(4)}.${dom.toString(16).padStart(4, '0')}`);
  d.parent = card;
  d.bus = w.bus;
  d.type = queue_type;
  return d;
}

export function addCard(w: World, id: number, doms: number[] = []): { card: Device; queues: Device[] } {
  const card = newCard(w, id);
  w.run(device_add(card), 'kworker/u8:0');
  const queues = doms.map((d) => {
    const q = newQueue(w, card, d);
    w.run(device_add(q), 'kworker/u8:0');
    return q;
  });
  return { card, queues };
}

/** "ACTION DEVPATH" of every uevent so far (after a sequence number). */
export function events(w: World, after = 0): string[] {
  return w.core.sysfs.uevents.list(after).map((e) => `${e.action} ${e.devpath}`);
}

export function assertClean(w: World): void {
  if (w.k.bugs.length) throw new Error(`bugs: ${w.k.bugs.map((b) => b.title).join('; ')}`);
  if (w.k.lockdep.stats().reports) throw new Error('lockdep reports');
}
