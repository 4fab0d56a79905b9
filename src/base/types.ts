// The driver-model structures (include/linux/device.h, device/bus.h,
// device/driver.h, device/class.h) as far as the simulation needs them.
// Bus types, drivers and classes are plain object literals written by the
// subsystems (ap, vfio_ap, mdev); registration attaches their private part (p).
import { E, type KGen, type Kernel } from '../kernel/index.js';
import type { AttrOps, KDir, Kset, Ktype, UeventEnv } from '../sysfs/index.js';
import type { Device, DriverCore } from './core.js';

/** struct attribute_group: a named group gets its own subdirectory. */
export interface AttributeGroup<O = any> {
  readonly name?: string;
  readonly attrs: readonly AttrOps<O>[];
  /** Mode to create attr with, 0 to leave it out (default: attr.mode). */
  is_visible?(obj: O, attr: AttrOps<O>): number;
}

/** The return of a probe: 0/undefined for success or a negative errno (or throw Errno). */
export type ProbeResult = number | void;

/** struct bus_type */
export interface BusType {
  readonly name: string;
  /** > 0 (or true) matches, 0 (false) does not, < 0 an error (-EPROBE_DEFER ...). */
  match?(dev: Device, drv: DeviceDriver): number | boolean;
  /** Called instead of the driver's probe when set (the bus calls the driver). */
  probe?(k: Kernel, dev: Device): KGen<ProbeResult>;
  remove?(k: Kernel, dev: Device): KGen<void>;
  /** Adds the bus' uevent variables (MODALIAS ...); non-zero drops the event. */
  uevent?(dev: Device, env: UeventEnv): number | void;
  readonly dev_groups?: readonly AttributeGroup<Device>[];
  readonly bus_groups?: readonly AttributeGroup<BusType>[];
  readonly drv_groups?: readonly AttributeGroup<DeviceDriver>[];
  /** Lock the parent device too around probe/remove (USB). */
  readonly need_parent_lock?: boolean;
  /** Set by bus_register (struct subsys_private). */
  p?: SubsysPrivate | null;
}

/** struct device_driver */
export interface DeviceDriver {
  readonly name: string;
  readonly bus: BusType;
  probe?(k: Kernel, dev: Device): KGen<ProbeResult>;
  remove?(k: Kernel, dev: Device): KGen<void>;
  /** Driver attributes in /sys/bus/<bus>/drivers/<name>/. */
  readonly groups?: readonly AttributeGroup<DeviceDriver>[];
  /** Attributes added to every device the driver binds (removed on unbind). */
  readonly dev_groups?: readonly AttributeGroup<Device>[];
  /** No bind/unbind files. */
  readonly suppress_bind_attrs?: boolean;
  /** Set by driver_register (struct driver_private). */
  p?: DriverPrivate | null;
}

/** struct device_type */
export interface DeviceType {
  /** DEVTYPE= in uevents. */
  readonly name?: string;
  readonly groups?: readonly AttributeGroup<Device>[];
  uevent?(dev: Device, env: UeventEnv): number | void;
}

/** struct class */
export interface Class {
  readonly name: string;
  readonly dev_groups?: readonly AttributeGroup<Device>[];
  dev_uevent?(dev: Device, env: UeventEnv): number | void;
  /** Set by class_register. */
  p?: ClassPrivate | null;
}

/** struct subsys_private of a bus. */
export interface SubsysPrivate {
  readonly core: DriverCore;
  /** /sys/bus/<name> */
  readonly subsys: Kset;
  readonly devices_kset: Kset;
  readonly drivers_kset: Kset;
  drivers_autoprobe: boolean;
  /** klist_devices, in registration order, and an index by name. */
  readonly devices: Set<Device>;
  readonly byName: Map<string, Device>;
  readonly drivers: Map<string, DeviceDriver>;
}

export interface DriverPrivate {
  /** /sys/bus/<bus>/drivers/<name> */
  readonly kobj: KDir;
  /** klist_devices: bound devices in bind order. */
  readonly devices: Set<Device>;
}

export interface ClassPrivate {
  /** /sys/class/<name> */
  readonly subsys: Kset;
  readonly devices: Set<Device>;
  /** Glue directories "<parent>/<class>" by parent directory. */
  readonly glue: Map<KDir, KDir>;
}

/** A class_compat (class_compat_register): /sys/class/<name> with links only. */
export interface ClassCompat {
  readonly name: string;
  readonly kobj: KDir;
}

// kobj_types: what a missing show/store gives and the sysfs_ops->show name.
export const device_ktype: Ktype = { name: 'device', missingOp: E.EIO, showFn: 'dev_attr_show' };
export const bus_ktype: Ktype = { name: 'bus', missingOp: 0, showFn: 'bus_attr_show' };
export const driver_ktype: Ktype = { name: 'driver', missingOp: E.EIO, showFn: 'drv_attr_show' };
export const class_ktype: Ktype = { name: 'class', missingOp: E.EIO, showFn: 'class_attr_show' };

/** Probe deferral (include/linux/errno.h), kernel-internal. */
export const EPROBE_DEFER = 517;
