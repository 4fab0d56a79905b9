// drivers/base/class.c: /sys/class/<name> with one link per class device, and
// the class_compat links (class_compat_register) that mdev uses for
// /sys/class/mdev_bus/<parent>.
import { Errno, E, type KGen } from '../kernel/index.js';
import type { KDir } from '../sysfs/index.js';
import type { Device, DriverCore } from './core.js';
import { class_ktype, type Class, type ClassCompat } from './types.js';

/** class_register(): /sys/class/<name> and an "add" uevent (SUBSYSTEM=class). */
export function class_register(core: DriverCore, cls: Class): void {
  if (core.classes.has(cls.name)) throw new Errno(E.EEXIST, `class ${cls.name} already registered`);
  const s = core.sysfs;
  const subsys = s.mkset(core.class_kset, cls.name, class_ktype);
  subsys.priv = cls;
  subsys.kset = core.class_kset;
  cls.p = { subsys, devices: new Set(), glue: new Map() };
  core.classes.set(cls.name, cls);
  s.kobject_uevent(subsys, 'add');
}

/** class_unregister(): the class must have no devices left. */
export function* class_unregister(core: DriverCore, cls: Class): KGen<void> {
  const p = cls.p;
  if (!p) return;
  core.sysfs.kobject_uevent(p.subsys, 'remove');
  yield* core.sysfs.remove_gen(core.k, p.subsys);
  core.classes.delete(cls.name);
  cls.p = null;
}

/** The directory a class device's directory goes into (get_device_parent's class part). */
export function get_class_parent(dev: Device, cls: Class): KDir {
  const core = dev.core;
  const p = cls.p;
  if (!p) throw new Errno(E.EINVAL, `class ${cls.name} not registered`);
  let parentKobj: KDir;
  if (dev.parent === null) parentKobj = core.virtual_dir;
  else if (dev.parent.class !== null) return dev.parent.kobj!;
  else parentKobj = dev.parent.kobj!;
  // A glue directory named after the class, shared by the parent's class devices.
  let glue = p.glue.get(parentKobj);
  if (glue === undefined || glue.removed) {
    const existing = parentKobj.children.get(cls.name);
    glue = existing && existing.type === 'dir' ? (existing as KDir) : core.sysfs.mkdir(parentKobj, cls.name);
    p.glue.set(parentKobj, glue);
  }
  return glue;
}

/** device_add_class_symlinks(): "subsystem", "device" (to the parent) and /sys/class/<cls>/<name>. */
export function class_add_device(dev: Device, cls: Class): void {
  const s = dev.core.sysfs;
  const p = cls.p!;
  s.createLink(dev.kobj!, p.subsys, 'subsystem');
  if (dev.parent) s.createLink(dev.kobj!, dev.parent.kobj!, 'device');
  s.createLink(p.subsys, dev.kobj!, dev.name);
  p.devices.add(dev);
}

export function* class_remove_device(dev: Device, cls: Class): KGen<void> {
  const s = dev.core.sysfs;
  const k = dev.core.k;
  const p = cls.p;
  if (!p || !dev.kobj) return;
  if (dev.parent) yield* s.remove_child_gen(k, dev.kobj, 'device');
  yield* s.remove_child_gen(k, dev.kobj, 'subsystem');
  const l = p.subsys.children.get(dev.name);
  if (l && l.type === 'link') s.remove(l);
  p.devices.delete(dev);
}

/** class_compat_register(): a bare /sys/class/<name> directory (no uevent). */
export function class_compat_register(core: DriverCore, name: string): ClassCompat {
  const kobj = core.sysfs.mkobj(core.class_kset, name, class_ktype, null, null);
  return { name, kobj };
}

export function* class_compat_unregister(core: DriverCore, cls: ClassCompat): KGen<void> {
  yield* core.sysfs.remove_gen(core.k, cls.kobj);
}

/**
 * class_compat_create_link(): /sys/class/<compat>/<dev name> -> the device, and
 * if device_link is given a "device" link in the device's directory to it.
 */
export function class_compat_create_link(cls: ClassCompat, dev: Device, device_link: Device | null = null): void {
  const s = dev.core.sysfs;
  s.createLink(cls.kobj, dev.kobj!, dev.name);
  if (device_link) s.createLink(dev.kobj!, device_link.kobj!, 'device');
}

export function* class_compat_remove_link(cls: ClassCompat, dev: Device, device_link: Device | null = null): KGen<void> {
  const s = dev.core.sysfs;
  if (device_link && dev.kobj) yield* s.remove_child_gen(dev.core.k, dev.kobj, 'device');
  yield* s.remove_child_gen(dev.core.k, cls.kobj, dev.name);
}
