// The mediated device core (drivers/vfio/mdev/mdev_core.c, mdev_sysfs.c, mdev_driver.c):
// the mdev bus, parents with their supported types, creation through `create`, removal through
// `<uuid>/remove`, available_instances accounting, and the sysfs links tools rely on.
//
// sysfs (parent "matrix" of vfio_ap):
//   <parent>/mdev_supported_types/<drv>-<type>/{create,device_api,name,available_instances,
//       [description],devices/<uuid> -> ../../../<uuid>}
//   <parent>/<uuid>/{remove,mdev_type -> ../mdev_supported_types/<drv>-<type>,subsystem,driver,
//       iommu_group,uevent,...}
//   /sys/bus/mdev/devices/<uuid>, /sys/bus/mdev/drivers/<driver>/, /sys/class/mdev_bus/<parent>
import { E, SideTable, type KGen, type Kernel, type Mutex, type RwSemaphore } from '../kernel/index.js';
import {
  Device,
  bus_register,
  class_compat_create_link,
  class_compat_register,
  class_compat_remove_link,
  dev_driver_string,
  device_add,
  device_children,
  device_del,
  device_driver_attach,
  device_remove_file_self,
  driver_register,
  driver_unregister,
  put_device,
  type AttributeGroup,
  type BusType,
  type ClassCompat,
  type DeviceDriver,
  type DriverCore,
} from '../base/index.js';
import { uuid_is_valid, type AttrOps, type KDir, type Ktype } from '../sysfs/index.js';
import { kstrtoull } from '../lib/kstrto.js';

/** mdev.ko on one kernel: the mdev bus, the mdev_bus compat class, the device list. */
export class Mdev {
  readonly k: Kernel;
  readonly bus: BusType;
  /** mdev_bus_compat_class: created by the first parent registration. */
  compat: ClassCompat | null = null;
  /** mdev_list, under mdev_list_lock */
  readonly mdev_list: MdevDevice[] = [];
  readonly mdev_list_lock: Mutex;

  constructor(readonly core: DriverCore) {
    this.k = core.k;
    this.mdev_list_lock = core.k.mutex_init('mdev_list_lock');
    this.bus = {
      name: 'mdev',
      // No driver matches automatically: mdev core binds with device_driver_attach().
      match: () => 0,
      *probe(_k, dev) {
        const drv = mdev_driver_of(dev.driver!);
        if (!drv?.probe) return 0;
        return yield* drv.probe(to_mdev_device(dev));
      },
      *remove(_k, dev) {
        const drv = mdev_driver_of(dev.driver!);
        if (drv?.remove) yield* drv.remove(to_mdev_device(dev));
      },
    };
    bus_register(core, this.bus);
  }
}

/** mdev_init() (subsys_initcall): registers the mdev bus on this kernel. */
export function mdev_init(core: DriverCore): Mdev {
  return new Mdev(core);
}

/**
 * struct mdev_type. The driver fills sysfs_name and pretty_name; mdev core the rest.
 * The directory is "<parent driver name>-<sysfs_name>", e.g. "vfio_ap-passthrough".
 */
export interface MdevType {
  readonly sysfs_name: string;
  readonly pretty_name?: string;
  parent?: MdevParent;
  kobj?: KDir;
  devices_kobj?: KDir;
}

/** The parts of struct device_driver an mdev driver sets (bus and probe are mdev core's). */
export interface MdevDriverBase {
  readonly name: string;
  readonly dev_groups?: readonly AttributeGroup<Device>[];
  readonly groups?: readonly AttributeGroup<DeviceDriver>[];
  readonly suppress_bind_attrs?: boolean;
}

/** struct mdev_driver */
export interface MdevDriver {
  /** The type's device_api attribute (VFIO_DEVICE_API_AP_STRING = "vfio-ap"). */
  readonly device_api: string;
  /** Without get_available: instances mdev core hands out (create → -EUSERS at 0). */
  readonly max_instances?: number;
  /** available_instances as the driver computes it (then mdev core does not count). */
  get_available?(type: MdevType): number;
  /** The type's optional `description` attribute. */
  show_description?(type: MdevType): string;
  /** Bound by mdev_device_create; 0 or -errno. */
  probe?(mdev: MdevDevice): KGen<number>;
  /** Called by device_del of the mdev (remove, parent unregistration, unbind). */
  remove?(mdev: MdevDevice): KGen<void>;
  readonly driver: MdevDriverBase;
  /** Set by mdev_register_driver. */
  drv?: DeviceDriver;
  mdev?: Mdev;
}

/** struct mdev_parent */
export class MdevParent {
  dev: Device | null = null;
  mdev_driver: MdevDriver | null = null;
  types: MdevType[] = [];
  /** parent->unreg_sem */
  unreg_sem: RwSemaphore | null = null;
  /** parent->available_instances (drivers without get_available) */
  available_instances = 0;
  mdev_types_kset: KDir | null = null;
}

/** struct mdev_device */
export class MdevDevice {
  /** Created (probe done, links in place) and not yet being removed. */
  active = false;
  constructor(
    readonly dev: Device,
    readonly type: MdevType,
    /** Lower-case UUID = the device name. */
    readonly uuid: string,
  ) {}
  get parent(): MdevParent {
    return this.type.parent!;
  }
}

const mdevOfDev = new SideTable<Device, MdevDevice>('mdevOfDev');
const mdevDriverOf = new SideTable<DeviceDriver, MdevDriver>('mdevDriverOf');

/** to_mdev_device() */
export function to_mdev_device(dev: Device): MdevDevice {
  return mdevOfDev.get(dev)!;
}

/** The mdev_driver behind a bound device's driver. */
export function mdev_driver_of(drv: DeviceDriver): MdevDriver | null {
  return mdevDriverOf.get(drv) ?? null;
}

/** mdev_get_drvdata() / dev_get_drvdata(&mdev->dev) */
export function mdev_get_drvdata<T>(mdev: MdevDevice): T {
  return mdev.dev.driver_data as T;
}

export function mdev_set_drvdata(mdev: MdevDevice, data: unknown): void {
  mdev.dev.driver_data = data;
}

/** mtype_get_parent_dev() */
export function mtype_get_parent_dev(type: MdevType): Device {
  return type.parent!.dev!;
}

/** mdev_register_driver(): -EINVAL without device_api. */
export function* mdev_register_driver(mdev: Mdev, drv: MdevDriver): KGen<number> {
  if (!drv.device_api) return -E.EINVAL;
  const d: DeviceDriver = { ...drv.driver, bus: mdev.bus };
  drv.drv = d;
  drv.mdev = mdev;
  mdevDriverOf.set(d, drv);
  yield* driver_register(d);
  return 0;
}

export function* mdev_unregister_driver(drv: MdevDriver): KGen<void> {
  if (drv.drv) yield* driver_unregister(drv.drv);
}

// ---------------------------------------------------------------- type attributes

/** mdev_type_ktype: a missing show/store is -EIO. */
const mdev_type_ktype: Ktype = { name: 'mdev_type', missingOp: E.EIO, showFn: 'mdev_type_attr_show' };

const UUID_STRING_LEN = 36;

const mdev_type_attr_create: AttrOps<MdevType> = {
  name: 'create',
  mode: 0o200,
  *store(_k, type, buf) {
    const count = buf.length;
    if (count < UUID_STRING_LEN || count > UUID_STRING_LEN + 1) return -E.EINVAL;
    // guid_parse(): uuid_is_valid looks at the first 36 characters only.
    if (!uuid_is_valid(buf)) return -E.EINVAL;
    const ret: number = yield* mdev_device_create(type, buf.slice(0, UUID_STRING_LEN).toLowerCase());
    if (ret) return ret;
    return count;
  },
};

const mdev_type_attr_device_api: AttrOps<MdevType> = {
  name: 'device_api',
  mode: 0o444,
  *show(_k, type) {
    return `${type.parent!.mdev_driver!.device_api}\n`;
  },
};

const mdev_type_attr_name: AttrOps<MdevType> = {
  name: 'name',
  mode: 0o444,
  *show(_k, type) {
    return `${type.pretty_name ?? type.sysfs_name}\n`;
  },
};

const mdev_type_attr_available_instances: AttrOps<MdevType> = {
  name: 'available_instances',
  mode: 0o444,
  *show(_k, type) {
    const parent = type.parent!;
    const drv = parent.mdev_driver!;
    const n = drv.get_available ? drv.get_available(type) : parent.available_instances;
    return `${n >>> 0}\n`;
  },
};

const mdev_type_attr_description: AttrOps<MdevType> = {
  name: 'description',
  mode: 0o444,
  *show(_k, type) {
    return type.parent!.mdev_driver!.show_description!(type);
  },
};

const mdev_type_core_group: AttributeGroup<MdevType> = {
  attrs: [mdev_type_attr_create, mdev_type_attr_device_api, mdev_type_attr_name, mdev_type_attr_available_instances, mdev_type_attr_description],
  is_visible(type, attr) {
    if (attr === mdev_type_attr_description && !type.parent!.mdev_driver!.show_description) return 0;
    return attr.mode;
  },
};

function mdev_type_add(parent: MdevParent, type: MdevType): void {
  const s = parent.dev!.core.sysfs;
  type.parent = parent;
  const kobj = s.mkobj(parent.mdev_types_kset!, `${dev_driver_string(parent.dev!)}-${type.sysfs_name}`, mdev_type_ktype, type, null);
  for (const a of mdev_type_core_group.attrs) {
    const mode = mdev_type_core_group.is_visible!(type, a);
    if (mode) s.createFile(kobj, a, type, mode);
  }
  type.kobj = kobj;
  type.devices_kobj = s.mkdir(kobj, 'devices');
}

// ---------------------------------------------------------------- parents

/**
 * mdev_register_parent(): `mdev_supported_types/` with one directory per type, the
 * /sys/class/mdev_bus/<parent> link, "MDEV: Registered" and a change uevent with
 * MDEV_STATE=registered (mdevctl's udev rule starts the auto mdevs on it). 0 or -errno.
 */
export function* mdev_register_parent(parent: MdevParent, dev: Device, mdev_driver: MdevDriver, types: MdevType[]): KGen<number> {
  const k = dev.core.k;
  const mdev = mdev_driver.mdev;
  if (!mdev || !dev.kobj) return -E.EINVAL;
  parent.unreg_sem = k.init_rwsem('&parent->unreg_sem');
  parent.dev = dev;
  parent.mdev_driver = mdev_driver;
  parent.types = types;
  parent.available_instances = mdev_driver.max_instances ?? 0;
  mdev.compat ??= class_compat_register(dev.core, 'mdev_bus');
  // parent_create_sysfs_files()
  parent.mdev_types_kset = dev.core.sysfs.mkset(dev.kobj, 'mdev_supported_types');
  for (const t of types) mdev_type_add(parent, t);
  class_compat_create_link(mdev.compat, dev, null);
  k.dev_info(dev.log, 'MDEV: Registered');
  dev.core.sysfs.kobject_uevent(dev.kobj, 'change', ['MDEV_STATE=registered']);
  yield k.sched_point('mdev_register_parent');
  return 0;
}

/** mdev_unregister_parent(): removes every mdev of the parent (each waits for its release). */
export function* mdev_unregister_parent(parent: MdevParent): KGen<void> {
  const dev = parent.dev!;
  const k = dev.core.k;
  const mdev = parent.mdev_driver!.mdev!;
  k.dev_info(dev.log, 'MDEV: Unregistering');
  yield k.down_write(parent.unreg_sem!);
  if (mdev.compat) yield* class_compat_remove_link(mdev.compat, dev, null);
  for (const child of device_children(dev)) if (child.bus === mdev.bus) yield* mdev_device_remove_common(to_mdev_device(child));
  // parent_remove_sysfs_files()
  if (parent.mdev_types_kset) yield* dev.core.sysfs.remove_gen(k, parent.mdev_types_kset);
  parent.mdev_types_kset = null;
  yield k.up_write(parent.unreg_sem!);
  if (dev.kobj) dev.core.sysfs.kobject_uevent(dev.kobj, 'change', ['MDEV_STATE=unregistered']);
}

// ---------------------------------------------------------------- devices

const mdev_attr_remove: AttrOps<Device> = {
  name: 'remove',
  mode: 0o200,
  *store(_k, dev, buf) {
    const mdev = to_mdev_device(dev);
    const v = kstrtoull(buf, 0);
    if (typeof v === 'number') return -E.EINVAL;
    if (v !== 0n && (yield* device_remove_file_self(dev, mdev_attr_remove))) {
      const ret: number = yield* mdev_device_remove(mdev);
      if (ret) return ret;
    }
    return buf.length;
  },
};

const mdev_device_groups: readonly AttributeGroup<Device>[] = [{ attrs: [mdev_attr_remove] }];

/**
 * mdev_device_create(): duplicate → -EEXIST, no instance left → -EUSERS, parent going away →
 * -ENODEV, the driver's probe error otherwise. uuid: the lower-case canonical UUID.
 */
export function mdev_device_create(type: MdevType, uuid: string): KGen<number> {
  return type.parent!.dev!.core.k.fn('mdev_device_create', __mdev_device_create(type, uuid));
}

function* __mdev_device_create(type: MdevType, uuid: string): KGen<number> {
  const parent = type.parent!;
  const pdev = parent.dev!;
  const k = pdev.core.k;
  const drv = parent.mdev_driver!;
  const mdev_core = drv.mdev!;
  yield k.mutex_lock(mdev_core.mdev_list_lock);
  if (mdev_core.mdev_list.some((m) => m.uuid === uuid)) {
    yield k.mutex_unlock(mdev_core.mdev_list_lock);
    return -E.EEXIST;
  }
  if (!drv.get_available) {
    if (parent.available_instances === 0) {
      yield k.mutex_unlock(mdev_core.mdev_list_lock);
      return -E.EUSERS;
    }
    parent.available_instances--;
  }
  const dev = new Device(pdev.core, uuid);
  dev.parent = pdev;
  dev.bus = mdev_core.bus;
  dev.groups = mdev_device_groups;
  // Not kzalloc'ed: its release runs from put_device(), which cannot sleep in the model.
  const mdev = new MdevDevice(dev, type, uuid);
  mdevOfDev.set(dev, mdev);
  dev.release = () => mdev_device_release(mdev);
  mdev_core.mdev_list.push(mdev);
  yield k.mutex_unlock(mdev_core.mdev_list_lock);

  // Parent unregistration started?
  const got: boolean = yield k.down_read_trylock(parent.unreg_sem!);
  if (!got) {
    put_device(dev);
    return -E.ENODEV;
  }
  let ret = 0;
  try {
    yield* device_add(dev);
  } catch (e) {
    ret = -((e as { errno?: number }).errno ?? E.ENOMEM);
  }
  if (ret) {
    yield k.up_read(parent.unreg_sem!);
    put_device(dev);
    return ret;
  }
  ret = yield* device_driver_attach(drv.drv!, dev);
  if (ret) {
    yield* device_del(dev);
    yield k.up_read(parent.unreg_sem!);
    put_device(dev);
    return ret;
  }
  // mdev_create_sysfs_files()
  const s = pdev.core.sysfs;
  s.createLink(type.devices_kobj!, dev.kobj!, dev.name);
  s.createLink(dev.kobj!, type.kobj!, 'mdev_type');
  mdev.active = true;
  k.dev_dbg(dev.log, 'MDEV: created');
  yield k.up_read(parent.unreg_sem!);
  return 0;
}

/** mdev_device_release(): the last put_device of the mdev. */
function mdev_device_release(mdev: MdevDevice): void {
  const parent = mdev.parent;
  const core = parent.mdev_driver!.mdev!;
  const k = core.k;
  const i = core.mdev_list.indexOf(mdev);
  if (i >= 0) core.mdev_list.splice(i, 1);
  if (!parent.mdev_driver!.get_available) parent.available_instances++;
  k.dev_dbg(mdev.dev.log, 'MDEV: destroying');
}

/** mdev_device_remove(): -ENODEV unknown, -EAGAIN not (yet/any more) active. */
export function mdev_device_remove(mdev: MdevDevice): KGen<number> {
  return mdev.dev.core.k.fn('mdev_device_remove', __mdev_device_remove(mdev));
}

function* __mdev_device_remove(mdev: MdevDevice): KGen<number> {
  const parent = mdev.parent;
  const core = parent.mdev_driver!.mdev!;
  const k = core.k;
  yield k.mutex_lock(core.mdev_list_lock);
  if (!core.mdev_list.includes(mdev)) {
    yield k.mutex_unlock(core.mdev_list_lock);
    return -E.ENODEV;
  }
  if (!mdev.active) {
    yield k.mutex_unlock(core.mdev_list_lock);
    return -E.EAGAIN;
  }
  mdev.active = false;
  yield k.mutex_unlock(core.mdev_list_lock);
  const got: boolean = yield k.down_read_trylock(parent.unreg_sem!);
  if (!got) return -E.ENODEV;
  yield* mdev_device_remove_common(mdev);
  yield k.up_read(parent.unreg_sem!);
  return 0;
}

/** mdev_device_remove_common(): links, device_del (the driver's remove runs), last put. */
function* mdev_device_remove_common(mdev: MdevDevice): KGen<void> {
  const dev = mdev.dev;
  const k = dev.core.k;
  const s = dev.core.sysfs;
  if (dev.kobj) yield* s.remove_child_gen(k, dev.kobj, 'mdev_type');
  if (mdev.type.devices_kobj) yield* s.remove_child_gen(k, mdev.type.devices_kobj, dev.name);
  yield* device_del(dev);
  put_device(dev);
}

/** The mdev with this UUID, if it exists. */
export function mdev_find(mdev: Mdev, uuid: string): MdevDevice | null {
  const u = uuid.toLowerCase();
  return mdev.mdev_list.find((m) => m.uuid === u) ?? null;
}
