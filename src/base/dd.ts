// drivers/base/dd.c: binding devices and drivers. Probe and remove run with the
// device lock held (device_lock), as in the kernel; a probe's -ENODEV/-ENXIO
// means "not mine" silently, any other error is logged and the next driver tries.
import { Errno, E, type KGen, type Kernel } from '../kernel/index.js';
import { device_add_groups, device_is_bound, device_lock, device_remove_groups, device_uevent, device_unlock, put_device, get_device, type Device } from './core.js';
import { EPROBE_DEFER, type DeviceDriver, type ProbeResult } from './types.js';

/** driver_match_device(): the bus' match (> 0 match, 0 no, < 0 error); no match op = match. */
export function driver_match_device(drv: DeviceDriver, dev: Device): number {
  const m = drv.bus.match;
  if (!m) return 1;
  const r = m.call(drv.bus, dev, drv);
  return typeof r === 'boolean' ? (r ? 1 : 0) : r;
}

/** driver_sysfs_add(): /sys/bus/<bus>/drivers/<drv>/<dev> and <dev>/driver. */
function driver_sysfs_add(dev: Device): void {
  const s = dev.core.sysfs;
  const dkobj = dev.driver!.p!.kobj;
  s.createLink(dkobj, dev.kobj!, dev.name);
  s.createLink(dev.kobj!, dkobj, 'driver');
}

function driver_sysfs_remove(dev: Device): void {
  const s = dev.core.sysfs;
  const drv = dev.driver;
  if (drv?.p) {
    const l = drv.p.kobj.children.get(dev.name);
    if (l && l.type === 'link') s.remove(l);
  }
  const d = dev.kobj?.children.get('driver');
  if (d && d.type === 'link') s.remove(d);
}

/** Runs the probe callback; a thrown Errno counts as its negative return. */
function* call_probe(k: Kernel, body: KGen<ProbeResult>): KGen<number> {
  const depth = k.opsDepth();
  try {
    return (yield* body) ?? 0;
  } catch (e) {
    k.opsRestore(depth);
    if (e instanceof Errno) return -e.errno;
    throw e;
  }
}

/** call_driver_probe(): the bus' probe if it has one, else the driver's; logs failures. */
function* call_driver_probe(dev: Device, drv: DeviceDriver): KGen<number> {
  const k = dev.core.k;
  let ret = 0;
  if (dev.bus?.probe) ret = yield* call_probe(k, k.fn(`${dev.bus.name}_probe`, dev.bus.probe(k, dev)));
  else if (drv.probe) ret = yield* call_probe(k, k.fn(`${drv.name}_probe`, drv.probe(k, dev)));
  switch (ret) {
    case 0:
    case -EPROBE_DEFER:
    case -E.ENODEV:
    case -E.ENXIO:
      break; // dev_dbg only
    default:
      k.dev_err(dev.log, `probe with driver ${drv.name} failed with error ${ret}`);
  }
  return ret;
}

/**
 * really_probe(): 0 when bound; a positive errno when the probe failed (the
 * caller may try the next driver); a negative errno for other failures.
 */
function* really_probe(dev: Device, drv: DeviceDriver): KGen<number> {
  const k = dev.core.k;
  k.lockdep_assert_held(dev.mutex);
  dev.driver = drv;
  driver_sysfs_add(dev);
  let ret = yield* call_driver_probe(dev, drv);
  if (ret) {
    ret = -ret;
    driver_sysfs_remove(dev);
    dev.driver = null;
    dev.driver_data = null;
    return ret;
  }
  device_add_groups(dev, drv.dev_groups);
  driver_bound(dev);
  return 0;
}

/** driver_bound(): on the driver's device list, then the "bind" uevent. */
function driver_bound(dev: Device): void {
  const k = dev.core.k;
  if (device_is_bound(dev)) {
    k.dev_warn(dev.log, 'driver_bound: device already bound');
    return;
  }
  dev.driver!.p!.devices.add(dev);
  device_uevent(dev, 'bind');
}

/** __driver_probe_device(): ENODEV if dead or unregistered, EBUSY if bound. */
function* __driver_probe_device(drv: DeviceDriver, dev: Device): KGen<number> {
  if (dev.dead || !dev.registered) return -E.ENODEV;
  if (dev.driver) return -E.EBUSY;
  if (!drv.p) return -E.ENODEV; // driver being unregistered
  return yield* really_probe(dev, drv);
}

/** driver_probe_device(): must be called with the device lock held. */
export function driver_probe_device(drv: DeviceDriver, dev: Device): KGen<number> {
  return dev.core.k.fn('driver_probe_device', __driver_probe_device(drv, dev));
}

/**
 * device_attach() / device_initial_probe(): tries the bus' drivers in
 * registration order under the device lock. Returns 1 if bound, 0 if no driver
 * took it, a negative errno if the walk stopped on an error.
 */
export function device_attach(dev: Device): KGen<number> {
  return dev.core.k.fn('device_attach', __device_attach(dev));
}

function* __device_attach(dev: Device): KGen<number> {
  let ret = 0;
  yield device_lock(dev);
  try {
    if (dev.dead) ret = 0;
    else if (dev.driver) ret = device_is_bound(dev) ? 1 : 0;
    else
      for (const drv of dev.bus?.p ? [...dev.bus.p.drivers.values()] : []) {
        // __device_attach_driver()
        const m = driver_match_device(drv, dev);
        if (m === 0) continue;
        if (m < 0) {
          ret = m;
          break;
        }
        const r = yield* driver_probe_device(drv, dev);
        if (r < 0) {
          ret = r;
          break;
        }
        if (r === 0) {
          ret = 1;
          break;
        }
      }
  } finally {
    yield device_unlock(dev);
  }
  return ret;
}

/** device_initial_probe() (no asynchronous probing in the model). */
export const device_initial_probe = device_attach;

function* device_driver_lock(dev: Device): KGen<void> {
  if (dev.parent && dev.bus?.need_parent_lock) yield device_lock(dev.parent);
  yield device_lock(dev);
}

function* device_driver_unlock(dev: Device): KGen<void> {
  yield device_unlock(dev);
  if (dev.parent && dev.bus?.need_parent_lock) yield device_unlock(dev.parent);
}

/**
 * device_driver_attach(): bind this driver (the bind attribute). 0 or a negative
 * errno: EBUSY if bound, ENODEV if the device is going away, the probe's error,
 * EAGAIN for a deferred probe.
 */
export function device_driver_attach(drv: DeviceDriver, dev: Device): KGen<number> {
  return dev.core.k.fn('device_driver_attach', device_driver_attach_body(drv, dev));
}

function* device_driver_attach_body(drv: DeviceDriver, dev: Device): KGen<number> {
  yield* device_driver_lock(dev);
  let ret: number;
  try {
    ret = yield* driver_probe_device(drv, dev);
  } finally {
    yield* device_driver_unlock(dev);
  }
  if (ret > 0) ret = -ret;
  if (ret === -EPROBE_DEFER) return -E.EAGAIN;
  return ret;
}

/** driver_attach(): probe every matching device of the bus with this driver. */
export function driver_attach(drv: DeviceDriver): KGen<number> {
  return drv.bus.p!.core.k.fn('driver_attach', driver_attach_body(drv));
}

function* driver_attach_body(drv: DeviceDriver): KGen<number> {
  const p = drv.bus.p;
  if (!p) return -E.EINVAL;
  for (const dev of [...p.devices]) {
    if (!p.devices.has(dev)) continue;
    // __driver_attach(): errors are dropped, the next device is tried.
    if (driver_match_device(drv, dev) <= 0) continue;
    get_device(dev);
    yield* device_driver_lock(dev);
    try {
      yield* driver_probe_device(drv, dev);
    } finally {
      yield* device_driver_unlock(dev);
    }
    put_device(dev);
  }
  return 0;
}

/** __device_release_driver(): under the device lock; the "unbind" uevent last. */
function* __device_release_driver(dev: Device): KGen<void> {
  const k = dev.core.k;
  const drv = dev.driver;
  if (!drv) return;
  driver_sysfs_remove(dev);
  // device_remove(): the driver's device attributes, then the remove callback.
  yield* device_remove_groups(dev, drv.dev_groups);
  if (dev.bus?.remove) yield* k.fn(`${dev.bus.name}_remove`, dev.bus.remove(k, dev));
  else if (drv.remove) yield* k.fn(`${drv.name}_remove`, drv.remove(k, dev));
  // device_unbind_cleanup()
  dev.driver = null;
  dev.driver_data = null;
  drv.p?.devices.delete(dev);
  device_uevent(dev, 'unbind');
}

/** device_release_driver_internal(): only if bound to drv (null: any driver). */
function* device_release_driver_internal(dev: Device, drv: DeviceDriver | null, lockParent: boolean): KGen<void> {
  const pl = lockParent && dev.parent !== null && dev.bus?.need_parent_lock === true;
  if (pl) yield device_lock(dev.parent!);
  yield device_lock(dev);
  try {
    if (drv === null || drv === dev.driver) yield* __device_release_driver(dev);
  } finally {
    yield device_unlock(dev);
    if (pl) yield device_unlock(dev.parent!);
  }
}

/** device_release_driver(): unbind whatever driver is bound. */
export function device_release_driver(dev: Device): KGen<void> {
  return dev.core.k.fn('device_release_driver', device_release_driver_internal(dev, null, false));
}

/** device_driver_detach(): the unbind attribute's path (parent lock if the bus needs it). */
export function device_driver_detach(dev: Device): KGen<void> {
  return dev.core.k.fn('device_driver_detach', device_release_driver_internal(dev, null, true));
}

/** driver_detach(): unbind every device of the driver, last bound first. */
export function driver_detach(drv: DeviceDriver): KGen<void> {
  return drv.bus.p!.core.k.fn('driver_detach', driver_detach_body(drv));
}

function* driver_detach_body(drv: DeviceDriver): KGen<void> {
  const p = drv.p;
  if (!p) return;
  for (;;) {
    let last: Device | undefined;
    for (const d of p.devices) last = d;
    if (last === undefined) return;
    get_device(last);
    yield* device_release_driver_internal(last, drv, true);
    // Not released (bound elsewhere meanwhile): drop it from our list anyway.
    p.devices.delete(last);
    put_device(last);
  }
}
