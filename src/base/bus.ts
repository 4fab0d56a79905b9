// drivers/base/bus.c: /sys/bus/<bus>/{devices,drivers,drivers_probe,
// drivers_autoprobe,uevent}, the bus' device and driver lists, and the
// bind/unbind driver attributes.
import { Errno, E, type KGen } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import { sysfs_create_groups, sysfs_remove_groups, device_add_groups, device_remove_groups, type Device, type DriverCore } from './core.js';
import { device_attach, device_driver_attach, device_driver_detach, device_release_driver, driver_match_device } from './dd.js';
import { bus_ktype, type BusType, type DeviceDriver } from './types.js';

/** sysfs_streq(): equal, ignoring one trailing newline on either side. */
export function sysfs_streq(a: string, b: string): boolean {
  const ta = a.endsWith('\n') ? a.slice(0, -1) : a;
  const tb = b.endsWith('\n') ? b.slice(0, -1) : b;
  return ta === tb;
}

/** bus_find_device_by_name(): the device named buf (sysfs_streq) on the bus, or null. */
export function bus_find_device_by_name(bus: BusType, buf: string): Device | null {
  const p = bus.p;
  if (!p) return null;
  const name = buf.endsWith('\n') ? buf.slice(0, -1) : buf;
  return p.byName.get(name) ?? null;
}

/** The bus' devices in registration order (a snapshot, like a klist walk). */
export function bus_devices(bus: BusType): Device[] {
  return bus.p ? [...bus.p.devices] : [];
}

/** The bus' drivers in registration order. */
export function bus_drivers(bus: BusType): DeviceDriver[] {
  return bus.p ? [...bus.p.drivers.values()] : [];
}

/** bus_for_each_dev(): stops at the first non-zero return of fn. */
export function* bus_for_each_dev(bus: BusType, fn: (dev: Device) => KGen<number>): KGen<number> {
  if (!bus.p) return -E.EINVAL;
  for (const dev of bus_devices(bus)) {
    if (!bus.p.devices.has(dev)) continue; // removed meanwhile
    const r = yield* fn(dev);
    if (r) return r;
  }
  return 0;
}

// ---------------------------------------------------------------- bus attributes

const bus_attr_uevent: AttrOps<BusType> = {
  name: 'uevent',
  mode: 0o200,
  *store(_k, bus, buf) {
    const p = bus.p;
    if (!p) return -E.EINVAL;
    const r = p.core.sysfs.kobject_synth_uevent(p.subsys, buf);
    return r ? r : buf.length;
  },
};

const bus_attr_drivers_autoprobe: AttrOps<BusType> = {
  name: 'drivers_autoprobe',
  mode: 0o644,
  *show(_k, bus) {
    if (!bus.p) throw new Errno(E.EINVAL);
    return `${bus.p.drivers_autoprobe ? 1 : 0}\n`;
  },
  *store(_k, bus, buf) {
    if (!bus.p) return -E.EINVAL;
    bus.p.drivers_autoprobe = buf[0] !== '0';
    return buf.length;
  },
};

const bus_attr_drivers_probe: AttrOps<BusType> = {
  name: 'drivers_probe',
  mode: 0o200,
  *store(k, bus, buf) {
    return yield* k.fn('drivers_probe_store', drivers_probe_store(bus, buf));
  },
};

function* drivers_probe_store(bus: BusType, buf: string): KGen<number> {
  const dev = bus_find_device_by_name(bus, buf);
  if (!dev) return -E.ENODEV;
  return (yield* bus_rescan_devices_helper(dev)) === 0 ? buf.length : -E.EINVAL;
}

/** bus_create_file() */
export function bus_create_file(bus: BusType, attr: AttrOps<BusType>): void {
  const p = bus.p;
  if (!p) throw new Errno(E.EINVAL, `bus ${bus.name} not registered`);
  p.core.sysfs.createFile(p.subsys, attr, bus);
}

export function* bus_remove_file(bus: BusType, attr: AttrOps<BusType>): KGen<void> {
  const p = bus.p;
  if (!p) return;
  yield* p.core.sysfs.remove_child_gen(p.core.k, p.subsys, attr.name);
}

/**
 * bus_register(): /sys/bus/<name> (an "add" uevent with SUBSYSTEM=bus), its uevent
 * file, devices/ and drivers/, drivers_probe, drivers_autoprobe (1) and the bus
 * groups. Throws Errno EEXIST for a duplicate name.
 */
export function bus_register(core: DriverCore, bus: BusType): void {
  const s = core.sysfs;
  if (core.buses.has(bus.name)) throw new Errno(E.EEXIST, `bus ${bus.name} already registered`);
  const subsys = s.mkset(core.bus_kset, bus.name, bus_ktype);
  subsys.priv = bus;
  subsys.kset = core.bus_kset;
  s.kobject_uevent(subsys, 'add');
  bus.p = {
    core,
    subsys,
    devices_kset: s.mkset(subsys, 'devices'),
    drivers_kset: s.mkset(subsys, 'drivers'),
    drivers_autoprobe: true,
    devices: new Set(),
    byName: new Map(),
    drivers: new Map(),
  };
  s.createFile(subsys, bus_attr_uevent, bus);
  s.createFile(subsys, bus_attr_drivers_probe, bus);
  s.createFile(subsys, bus_attr_drivers_autoprobe, bus);
  sysfs_create_groups(s, subsys, bus.bus_groups, bus);
  core.buses.set(bus.name, bus);
}

/** bus_unregister(): drivers and devices must be gone already. */
export function* bus_unregister(core: DriverCore, bus: BusType): KGen<void> {
  const p = bus.p;
  if (!p) return;
  yield* sysfs_remove_groups(core.k, core.sysfs, p.subsys, bus.bus_groups);
  core.sysfs.kobject_uevent(p.subsys, 'remove');
  yield* core.sysfs.remove_gen(core.k, p.subsys);
  core.buses.delete(bus.name);
  bus.p = null;
}

// ---------------------------------------------------------------- devices on the bus

/** bus_add_device(): bus dev_groups, /sys/bus/<bus>/devices/<name> and "subsystem". */
export function bus_add_device(dev: Device): void {
  const bus = dev.bus!;
  const p = bus.p!;
  const s = dev.core.sysfs;
  device_add_groups(dev, bus.dev_groups);
  s.createLink(p.devices_kset, dev.kobj!, dev.name);
  s.createLink(dev.kobj!, p.subsys, 'subsystem');
  p.devices.add(dev);
  p.byName.set(dev.name, dev);
}

/** bus_probe_device(): device_initial_probe() if the bus autoprobes. */
export function* bus_probe_device(dev: Device): KGen<void> {
  const p = dev.bus?.p;
  if (!p) return;
  if (p.drivers_autoprobe) yield* device_attach(dev);
}

/** bus_remove_device(): drops the links and groups, then releases the driver. */
export function* bus_remove_device(dev: Device): KGen<void> {
  const bus = dev.bus!;
  const p = bus.p;
  if (!p) return;
  const s = dev.core.sysfs;
  const k = dev.core.k;
  yield* s.remove_child_gen(k, dev.kobj!, 'subsystem');
  const l = p.devices_kset.children.get(dev.name);
  if (l && l.type === 'link') s.remove(l);
  yield* device_remove_groups(dev, bus.dev_groups);
  p.devices.delete(dev);
  if (p.byName.get(dev.name) === dev) p.byName.delete(dev.name);
  yield* device_release_driver(dev);
}

/** bus_rescan_devices_helper(): attach an unbound device; errors < 0 only. */
export function* bus_rescan_devices_helper(dev: Device): KGen<number> {
  let ret = 0;
  if (!dev.driver) {
    const lockParent = dev.parent !== null && dev.bus?.need_parent_lock === true;
    const core = dev.core;
    if (lockParent) yield core.k.mutex_lock(dev.parent!.mutex);
    ret = yield* device_attach(dev);
    if (lockParent) yield core.k.mutex_unlock(dev.parent!.mutex);
  }
  return ret < 0 ? ret : 0;
}

/** bus_rescan_devices(): tries to attach every unbound device of the bus. */
export function bus_rescan_devices(bus: BusType): KGen<number> {
  return bus_for_each_dev(bus, bus_rescan_devices_helper);
}

/** device_reprobe(): unbind (if bound) and probe again. */
export function* device_reprobe(dev: Device): KGen<number> {
  if (dev.driver) yield* device_driver_detach(dev);
  return yield* bus_rescan_devices_helper(dev);
}

// ---------------------------------------------------------------- bind / unbind

/**
 * bind_store(): the device named buf on the driver's bus, if the driver matches
 * it, is probed with this driver. ENODEV: no such device (also on another bus)
 * or no match; EBUSY: already bound; a probe error is returned as is.
 */
export const driver_attr_bind: AttrOps<DeviceDriver> = {
  name: 'bind',
  mode: 0o200,
  *store(k, drv, buf) {
    return yield* k.fn('bind_store', bind_store(drv, buf));
  },
};

export function* bind_store(drv: DeviceDriver, buf: string): KGen<number> {
  const dev = bus_find_device_by_name(drv.bus, buf);
  let err = -E.ENODEV;
  if (dev && driver_match_device(drv, dev) > 0) {
    err = yield* device_driver_attach(drv, dev);
    if (!err) err = buf.length;
  }
  return err;
}

/** unbind_store(): ENODEV unless the named device is bound to this driver. */
export const driver_attr_unbind: AttrOps<DeviceDriver> = {
  name: 'unbind',
  mode: 0o200,
  *store(k, drv, buf) {
    return yield* k.fn('unbind_store', unbind_store(drv, buf));
  },
};

export function* unbind_store(drv: DeviceDriver, buf: string): KGen<number> {
  const dev = bus_find_device_by_name(drv.bus, buf);
  if (dev && dev.driver === drv) {
    yield* device_driver_detach(dev);
    return buf.length;
  }
  return -E.ENODEV;
}
