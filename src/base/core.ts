// drivers/base/core.c: struct device, device_add/device_del, the device uevent
// environment and the "uevent" attribute, attribute groups, and where in
// /sys/devices a device's directory goes (get_device_parent).
import { Errno, E, type DevLike, type KGen, type Kernel, type Mutex, type OpToken } from '../kernel/index.js';
import { Sysfs, UeventEnv, type AttrOps, type KAttr, type KDir, type KNode, type Kset, type KsetUeventOps, type KobjAction } from '../sysfs/index.js';
import { bus_add_device, bus_probe_device, bus_remove_device } from './bus.js';
import { class_add_device, class_remove_device, get_class_parent } from './class.js';
import { device_ktype, type AttributeGroup, type BusType, type Class, type DeviceDriver, type DeviceType } from './types.js';

/**
 * The driver core of one simulated kernel: the top of /sys and the global ksets
 * (devices_kset, bus_kset, class_kset), plus registries by name.
 */
export class DriverCore {
  readonly sysfs: Sysfs;
  /** /sys/devices, with device_uevent_ops. */
  readonly devices_kset: Kset;
  /** /sys/bus */
  readonly bus_kset: Kset;
  /** /sys/class */
  readonly class_kset: Kset;
  readonly buses = new Map<string, BusType>();
  readonly classes = new Map<string, Class>();
  private virtualDir: KDir | null = null;

  constructor(
    readonly k: Kernel,
    sysfs?: Sysfs,
  ) {
    const s = (this.sysfs = sysfs ?? new Sysfs(k));
    this.devices_kset = s.mkset(s.root, 'devices');
    this.devices_kset.uevent_ops = device_uevent_ops;
    this.bus_kset = s.mkset(s.root, 'bus');
    this.bus_kset.uevent_ops = { filter: (kobj) => kobj.ktype?.name === 'bus' };
    this.class_kset = s.mkset(s.root, 'class');
    // The rest of the usual top level, empty unless someone fills it.
    for (const d of ['block', 'dev', 'firmware', 'fs', 'hypervisor', 'kernel', 'module', 'power']) s.mkdirp(`${s.mountpoint}/${d}`);
    s.mkdirp(`${s.mountpoint}/dev/block`);
    s.mkdirp(`${s.mountpoint}/dev/char`);
  }

  /** /sys/devices/virtual, created on first use (virtual_device_parent). */
  get virtual_dir(): KDir {
    if (this.virtualDir === null || this.virtualDir.removed) this.virtualDir = this.sysfs.mkdir(this.devices_kset, 'virtual');
    return this.virtualDir;
  }
}

/** struct device. Construct, fill in parent/bus/class/type/groups, then device_add(). */
export class Device {
  parent: Device | null = null;
  bus: BusType | null = null;
  class: Class | null = null;
  type: DeviceType | null = null;
  /** The bound driver (dev->driver); set during probe, cleared on unbind. */
  driver: DeviceDriver | null = null;
  groups: readonly AttributeGroup<Device>[] | null = null;
  /** dev_get_drvdata() */
  driver_data: unknown = null;
  /** driver_override (see driver_set_override); buses decide how to use it. */
  driver_override: string | null = null;
  /** dev->mutex, lockdep class "&dev->mutex" (device_lock). */
  readonly mutex: Mutex;
  /** The sysfs directory once added (dev->kobj). */
  kobj: KDir | null = null;
  /** Set at the start of device_del (dev->p->dead): no new binding. */
  dead = false;
  /** kobject state_in_sysfs */
  registered = false;
  /** Reference count (get_device / put_device). */
  refcount = 1;
  /** Called when the last reference is put. */
  release: ((dev: Device) => void) | null = null;

  /** device_initialize() */
  constructor(
    readonly core: DriverCore,
    /** dev_name(); fixed once added. */
    public name: string,
  ) {
    this.mutex = core.k.mutex_init('&dev->mutex');
    // device_initialize(): the driver core nests device locks in ways lockdep
    // cannot express, so the kernel exempts them from validation.
    core.k.lockdep_set_novalidate_class(this.mutex);
  }

  /** The sysfs path, e.g. "/sys/devices/ap/card05" (null before device_add). */
  get path(): string | null {
    return this.kobj ? this.kobj.path : null;
  }

  /** kobject_get_path(): "/devices/ap/card05", the DEVPATH of its uevents. */
  get devpath(): string | null {
    return this.kobj ? this.kobj.path.slice(this.core.sysfs.mountpoint.length) : null;
  }

  /** For k.dev_err() and friends: "<driver or bus or class> <name>: ...". */
  get log(): DevLike {
    return { driver: dev_driver_string(this), devName: this.name };
  }
}

/** dev_driver_string(): the bound driver's name, else the bus' or class' name. */
export function dev_driver_string(dev: Device): string {
  return dev.driver?.name ?? dev.bus?.name ?? dev.class?.name ?? '';
}

export function device_lock(dev: Device): OpToken {
  return dev.core.k.mutex_lock(dev.mutex);
}

export function device_unlock(dev: Device): OpToken {
  return dev.core.k.mutex_unlock(dev.mutex);
}

/** Resumes with true if acquired. */
export function device_trylock(dev: Device): OpToken {
  return dev.core.k.mutex_trylock(dev.mutex);
}

export function device_lock_assert(dev: Device): void {
  dev.core.k.lockdep_assert_held(dev.mutex);
}

export function get_device(dev: Device): Device {
  dev.refcount++;
  return dev;
}

export function put_device(dev: Device | null): void {
  if (dev === null) return;
  if (--dev.refcount === 0) dev.release?.(dev);
}

/** device_is_registered() */
export function device_is_registered(dev: Device): boolean {
  return dev.registered;
}

/** device_is_bound(): the driver core finished binding (driver_bound ran). */
export function device_is_bound(dev: Device): boolean {
  return dev.driver?.p?.devices.has(dev) ?? false;
}

// ---------------------------------------------------------------- uevents

/** dev_uevent(): DEVTYPE, DRIVER, then the bus', class' and type's variables. */
export function dev_uevent(dev: Device, env: UeventEnv): number {
  let r = 0;
  if (dev.type?.name) env.add(`DEVTYPE=${dev.type.name}`);
  if (dev.driver) env.add(`DRIVER=${dev.driver.name}`);
  if (dev.bus?.uevent) r = dev.bus.uevent(dev, env) ?? 0;
  if (dev.class?.dev_uevent) r = dev.class.dev_uevent(dev, env) ?? 0;
  if (dev.type?.uevent) r = dev.type.uevent(dev, env) ?? 0;
  return r;
}

function kobjDevice(kobj: KDir): Device | null {
  return kobj.ktype === device_ktype ? (kobj.priv as Device) : null;
}

/** device_uevent_ops: only devices with a bus or class send uevents. */
export const device_uevent_ops: KsetUeventOps = {
  filter(kobj) {
    const dev = kobjDevice(kobj);
    return dev !== null && (dev.bus !== null || dev.class !== null);
  },
  name(kobj) {
    const dev = kobjDevice(kobj)!;
    return dev.bus?.name ?? dev.class?.name ?? null;
  },
  uevent(kobj, env) {
    return dev_uevent(kobjDevice(kobj)!, env);
  },
};

/** kobject_uevent() on a device. */
export function device_uevent(dev: Device, action: KobjAction, extraEnv?: readonly string[]): number {
  if (dev.kobj === null) return -E.EINVAL;
  return dev.core.sysfs.kobject_uevent(dev.kobj, action, extraEnv);
}

/**
 * The device "uevent" attribute (0644). Reading prints what dev_uevent() adds, one
 * "KEY=value" per line (not ACTION/DEVPATH/SUBSYSTEM/SEQNUM); writing sends a
 * synthetic uevent.
 */
export const dev_attr_uevent: AttrOps<Device> = {
  name: 'uevent',
  mode: 0o644,
  *show(_k, dev) {
    if (!device_uevent_ops.filter!(dev.kobj!)) return '';
    const env = new UeventEnv();
    if (dev_uevent(dev, env)) return '';
    return env.envp.map((v) => `${v}\n`).join('');
  },
  *store(k, dev, buf) {
    const rc = dev.core.sysfs.kobject_synth_uevent(dev.kobj!, buf);
    if (rc) {
      k.dev_err(dev.log, `uevent: failed to send synthetic uevent: ${rc}`);
      return rc;
    }
    return buf.length;
  },
};

// ---------------------------------------------------------------- attribute groups

/** sysfs_create_group() on a kobject directory; the owner object is passed to show/store. */
export function sysfs_create_group(sysfs: Sysfs, kobj: KDir, grp: AttributeGroup, obj: unknown): void {
  let dir = kobj;
  if (grp.name) {
    const existing = kobj.children.get(grp.name);
    dir = existing && existing.type === 'dir' ? (existing as KDir) : sysfs.mkdir(kobj, grp.name);
  }
  for (const a of grp.attrs) {
    const mode = grp.is_visible ? grp.is_visible(obj, a) : a.mode;
    if (!mode) continue;
    sysfs.createFileLazy(dir, a, obj, mode);
  }
}

export function sysfs_create_groups(sysfs: Sysfs, kobj: KDir, groups: readonly AttributeGroup[] | null | undefined, obj: unknown): void {
  if (!groups) return;
  // Attribute groups are `static const` in the kernel: frozen, world snapshots skip them.
  Object.freeze(groups);
  for (const g of groups) {
    Object.freeze(g.attrs);
    Object.freeze(g);
    sysfs_create_group(sysfs, kobj, g, obj);
  }
}

/** sysfs_remove_group(): waits for show/store calls still running on them. */
export function* sysfs_remove_group(k: Kernel, sysfs: Sysfs, kobj: KDir, grp: AttributeGroup): KGen<void> {
  if (grp.name) {
    yield* sysfs.remove_child_gen(k, kobj, grp.name);
    return;
  }
  for (const a of grp.attrs) {
    const n = kobj.children.get(a.name);
    if (n && n.type === 'file') yield* sysfs.remove_gen(k, n);
  }
}

export function* sysfs_remove_groups(k: Kernel, sysfs: Sysfs, kobj: KDir, groups: readonly AttributeGroup[] | null | undefined): KGen<void> {
  if (groups) for (const g of groups) yield* sysfs_remove_group(k, sysfs, kobj, g);
}

/** device_add_groups() */
export function device_add_groups(dev: Device, groups: readonly AttributeGroup<Device>[] | null | undefined): void {
  sysfs_create_groups(dev.core.sysfs, dev.kobj!, groups, dev);
}

export function device_remove_groups(dev: Device, groups: readonly AttributeGroup<Device>[] | null | undefined): KGen<void> {
  return sysfs_remove_groups(dev.core.k, dev.core.sysfs, dev.kobj!, groups);
}

/** device_create_file() */
export function device_create_file(dev: Device, attr: AttrOps<Device>): KNode {
  return dev.core.sysfs.createFile(dev.kobj!, attr, dev);
}

/** device_remove_file(): waits for running show/store calls on it. */
export function* device_remove_file(dev: Device, attr: AttrOps<Device>): KGen<void> {
  if (dev.kobj) yield* dev.core.sysfs.remove_child_gen(dev.core.k, dev.kobj, attr.name);
}

/** device_remove_file_self(): from attr's own store (e.g. an mdev's "remove"). */
export function* device_remove_file_self(dev: Device, attr: AttrOps<Device>): KGen<boolean> {
  const n = dev.kobj?.children.get(attr.name);
  if (!n || n.type !== 'file') return false;
  return yield* dev.core.sysfs.remove_self_gen(dev.core.k, n as KAttr);
}

// ---------------------------------------------------------------- add / del

/**
 * get_device_parent(): a class device without parent goes to
 * /sys/devices/virtual/<class>/, one whose parent has no class into a
 * "<parent>/<class>/" glue directory; otherwise the parent's directory, or
 * /sys/devices.
 */
function get_device_parent(dev: Device): KDir {
  const core = dev.core;
  if (dev.class) return get_class_parent(dev, dev.class);
  if (dev.parent) return dev.parent.kobj!;
  return core.devices_kset;
}

/**
 * device_add(): creates /sys/devices/.../<name> with its uevent file, class links,
 * attribute groups and bus links, sends "add", then probes drivers (bus_probe_device).
 * Throws Errno (EINVAL no name, EEXIST duplicate, ENODEV parent gone).
 */
export function device_add(dev: Device): KGen<void> {
  return dev.core.k.fn('device_add', device_add_body(dev));
}

function* device_add_body(dev: Device): KGen<void> {
  const core = dev.core;
  const sysfs = core.sysfs;
  if (!dev.name) throw new Errno(E.EINVAL, 'device_add: no name');
  if (dev.kobj !== null) throw new Errno(E.EEXIST, `device_add: ${dev.name} already added`);
  if (dev.parent && (dev.parent.kobj === null || dev.parent.kobj.removed)) throw new Errno(E.ENODEV, `device_add: parent of ${dev.name} is gone`);
  if (dev.bus && !dev.bus.p) throw new Errno(E.EINVAL, `device_add: bus ${dev.bus.name} not registered`);
  const parentKobj = get_device_parent(dev);
  dev.kobj = sysfs.mkobj(parentKobj, dev.name, device_ktype, dev, core.devices_kset);
  dev.registered = true;
  if (dev.parent) get_device(dev.parent);
  device_create_file(dev, dev_attr_uevent);
  if (dev.class) class_add_device(dev, dev.class);
  // device_add_attrs(): class groups, type groups, the device's own groups.
  if (dev.class) device_add_groups(dev, dev.class.dev_groups);
  if (dev.type) device_add_groups(dev, dev.type.groups);
  device_add_groups(dev, dev.groups);
  if (dev.bus) bus_add_device(dev);
  device_uevent(dev, 'add');
  if (dev.bus) yield* bus_probe_device(dev);
}

/** device_register() = device_initialize() (the constructor) + device_add(). */
export function device_register(dev: Device): KGen<void> {
  return device_add(dev);
}

/**
 * device_del(): marks the device dead (under its lock), removes its links and
 * attributes, unbinds the driver (bus_remove_device), sends "remove" and removes
 * the directory.
 */
export function device_del(dev: Device): KGen<void> {
  return dev.core.k.fn('device_del', device_del_body(dev));
}

function* device_del_body(dev: Device): KGen<void> {
  const core = dev.core;
  const k = core.k;
  const kobj = dev.kobj;
  if (kobj === null) return;
  yield device_lock(dev);
  dev.dead = true; // kill_device()
  yield device_unlock(dev);
  if (dev.class) yield* class_remove_device(dev, dev.class);
  yield* device_remove_file(dev, dev_attr_uevent);
  // device_remove_attrs()
  yield* device_remove_groups(dev, dev.groups);
  if (dev.type) yield* device_remove_groups(dev, dev.type.groups);
  if (dev.class) yield* device_remove_groups(dev, dev.class.dev_groups);
  if (dev.bus) yield* bus_remove_device(dev);
  device_uevent(dev, 'remove');
  const glue = kobj.parent;
  yield* core.sysfs.remove_gen(k, kobj);
  dev.registered = false;
  // cleanup_glue_dir(): an empty class glue directory goes away with its last device.
  if (dev.class && glue && glue.children.size === 0 && dev.class.p?.glue.get(glue.parent!) === glue) {
    dev.class.p.glue.delete(glue.parent!);
    core.sysfs.remove(glue);
  }
  const parent = dev.parent;
  put_device(parent);
}

/** device_unregister() = device_del() + put_device(). */
export function* device_unregister(dev: Device): KGen<void> {
  yield* device_del(dev);
  put_device(dev);
}

/** root_device_register(): /sys/devices/<name>, no bus or class (so no uevents). */
export function* root_device_register(core: DriverCore, name: string): KGen<Device> {
  const dev = new Device(core, name);
  yield* device_register(dev);
  return dev;
}

export function root_device_unregister(dev: Device): KGen<void> {
  return device_unregister(dev);
}

/** device_for_each_child() over the registered children, in registration order. */
export function device_children(dev: Device): Device[] {
  const out: Device[] = [];
  if (!dev.kobj) return out;
  const walk = (d: KDir): void => {
    for (const c of d.children.values())
      if (c.type === 'dir') {
        const cd = c as KDir;
        if (cd.ktype === device_ktype) {
          const child = cd.priv as Device;
          if (child.parent === dev) out.push(child);
        } else if (cd.ktype === null || cd.ktype.name !== 'device') walk(cd); // glue / group dirs
      }
  };
  walk(dev.kobj);
  return out;
}

/**
 * driver_set_override(): what a "driver_override" store does. Longer than
 * PAGE_SIZE - 2 is -EINVAL; "" or "\n" clears; otherwise up to the first newline.
 */
export function* driver_set_override(dev: Device, s: string): KGen<number> {
  if (s.length >= 4096 - 1) return -E.EINVAL;
  const nul = s.indexOf('\0');
  const str = nul >= 0 ? s.slice(0, nul) : s;
  const nl = str.indexOf('\n');
  const val = nl >= 0 ? str.slice(0, nl) : str;
  yield device_lock(dev);
  dev.driver_override = val.length ? val : null;
  yield device_unlock(dev);
  return 0;
}
