// drivers/base/driver.c and the driver half of bus.c: registering a driver
// creates /sys/bus/<bus>/drivers/<name> (uevent, bind, unbind and its groups),
// binds it to matching devices, then announces it with an "add" uevent
// (SUBSYSTEM=drivers).
import { Errno, E, type KGen } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import { sysfs_create_groups, sysfs_remove_groups, type DriverCore } from './core.js';
import { driver_attr_bind, driver_attr_unbind } from './bus.js';
import { driver_attach, driver_detach } from './dd.js';
import { driver_ktype, type BusType, type DeviceDriver } from './types.js';

const driver_attr_uevent: AttrOps<DeviceDriver> = {
  name: 'uevent',
  mode: 0o200,
  *store(_k, drv, buf) {
    const p = drv.p;
    if (!p) return -E.ENODEV;
    const r = drv.bus.p!.core.sysfs.kobject_synth_uevent(p.kobj, buf);
    return r ? r : buf.length;
  },
};

/** driver_find(): the registered driver of that name on the bus. */
export function driver_find(name: string, bus: BusType): DeviceDriver | null {
  return bus.p?.drivers.get(name) ?? null;
}

/**
 * driver_register(): EINVAL if the bus is not registered, EBUSY if a driver of
 * that name exists (both logged as the kernel does); thrown as Errno.
 */
export function driver_register(drv: DeviceDriver): KGen<void> {
  const bp = drv.bus.p;
  if (!bp) throw new Errno(E.EINVAL, `Driver '${drv.name}' was unable to register with bus_type '${drv.bus.name}' because the bus was not initialized.`);
  return bp.core.k.fn('driver_register', driver_register_body(bp.core, drv));
}

function* driver_register_body(core: DriverCore, drv: DeviceDriver): KGen<void> {
  const k = core.k;
  const s = core.sysfs;
  const bp = drv.bus.p!;
  if (driver_find(drv.name, drv.bus)) {
    k.pr_err(`Error: Driver '${drv.name}' is already registered, aborting...`);
    throw new Errno(E.EBUSY, `driver ${drv.name} already registered`);
  }
  // bus_add_driver()
  const kobj = s.mkobj(bp.drivers_kset, drv.name, driver_ktype, drv, bp.drivers_kset);
  drv.p = { kobj, devices: new Set() };
  bp.drivers.set(drv.name, drv);
  if (bp.drivers_autoprobe) yield* driver_attach(drv);
  s.createFile(kobj, driver_attr_uevent, drv);
  sysfs_create_groups(s, kobj, drv.bus.drv_groups, drv);
  if (!drv.suppress_bind_attrs) {
    s.createFile(kobj, driver_attr_unbind, drv);
    s.createFile(kobj, driver_attr_bind, drv);
  }
  // driver_add_groups()
  sysfs_create_groups(s, kobj, drv.groups, drv);
  s.kobject_uevent(kobj, 'add');
}

/** driver_unregister(): removes the files, unbinds every device, "remove" uevent. */
export function driver_unregister(drv: DeviceDriver): KGen<void> {
  const bp = drv.bus.p;
  if (!bp || !drv.p) return (function* () {})();
  return bp.core.k.fn('driver_unregister', driver_unregister_body(bp.core, drv));
}

function* driver_unregister_body(core: DriverCore, drv: DeviceDriver): KGen<void> {
  const k = core.k;
  const s = core.sysfs;
  const p = drv.p!;
  const bp = drv.bus.p!;
  yield* sysfs_remove_groups(k, s, p.kobj, drv.groups);
  // bus_remove_driver()
  if (!drv.suppress_bind_attrs) {
    yield* s.remove_child_gen(k, p.kobj, 'bind');
    yield* s.remove_child_gen(k, p.kobj, 'unbind');
  }
  yield* sysfs_remove_groups(k, s, p.kobj, drv.bus.drv_groups);
  yield* s.remove_child_gen(k, p.kobj, 'uevent');
  bp.drivers.delete(drv.name);
  yield* driver_detach(drv);
  s.kobject_uevent(p.kobj, 'remove');
  yield* s.remove_gen(k, p.kobj);
  drv.p = null;
}

/** driver_create_file() */
export function driver_create_file(drv: DeviceDriver, attr: AttrOps<DeviceDriver>): void {
  if (!drv.p) throw new Errno(E.EINVAL, `driver ${drv.name} not registered`);
  drv.bus.p!.core.sysfs.createFile(drv.p.kobj, attr, drv);
}

export function* driver_remove_file(drv: DeviceDriver, attr: AttrOps<DeviceDriver>): KGen<void> {
  const p = drv.p;
  if (!p) return;
  const core = drv.bus.p!.core;
  yield* core.sysfs.remove_child_gen(core.k, p.kobj, attr.name);
}
