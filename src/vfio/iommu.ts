// IOMMU groups (drivers/iommu/iommu.c) as sysfs shows them: /sys/kernel/iommu_groups/<id>/ with
// devices/<dev> links, `name`, `reserved_regions` and `type`, and the `iommu_group` link in each
// member device's directory. VFIO's emulated-IOMMU devices (mdevs) get a fresh group each
// (vfio_noiommu_group_alloc, named "vfio-noiommu"); libvirt and mdevctl require the link.
import { E, Errno, SideTable, type KGen, type Kernel } from '../kernel/index.js';
import type { Device, DriverCore } from '../base/index.js';
import { kobj_ktype, type AttrOps, type KDir } from '../sysfs/index.js';

/** The iommu core of one kernel: /sys/kernel/iommu_groups and the group id allocator. */
export class IommuCore {
  readonly groups_kset: KDir;
  /** ida of group ids: the lowest free id is handed out. */
  private readonly ids = new Set<number>();
  constructor(readonly core: DriverCore) {
    const kernel = core.sysfs.mkdirp(`${core.sysfs.mountpoint}/kernel`);
    this.groups_kset = core.sysfs.mkset(kernel, 'iommu_groups');
  }
  /** @internal */
  allocId(): number {
    let id = 0;
    while (this.ids.has(id)) id++;
    this.ids.add(id);
    return id;
  }
  /** @internal */
  freeId(id: number): void {
    this.ids.delete(id);
  }
}

const iommuCores = new SideTable<DriverCore, IommuCore>('iommuCores');

/** The iommu core of this driver core (iommu_init at first use). */
export function iommu_core(core: DriverCore): IommuCore {
  let c = iommuCores.get(core);
  if (!c) iommuCores.set(core, (c = new IommuCore(core)));
  return c;
}

/** struct iommu_group */
export class IommuGroup {
  readonly kobj: KDir;
  readonly devices_kobj: KDir;
  name: string | null = null;
  /** kobject references (iommu_group_get / iommu_group_put). */
  refs = 1;
  readonly devices = new Set<Device>();
  constructor(
    readonly iommu: IommuCore,
    readonly id: number,
  ) {
    const s = iommu.core.sysfs;
    this.kobj = s.mkobj(iommu.groups_kset, String(id), kobj_ktype, this, null);
    this.devices_kobj = s.mkdir(this.kobj, 'devices');
    s.createFile(this.kobj, iommu_group_attr_reserved_regions, this);
    s.createFile(this.kobj, iommu_group_attr_type, this);
  }
}

const iommu_group_attr_name: AttrOps<IommuGroup> = {
  name: 'name',
  mode: 0o444,
  *show(_k, g) {
    return `${g.name ?? ''}\n`;
  },
};

const iommu_group_attr_reserved_regions: AttrOps<IommuGroup> = {
  name: 'reserved_regions',
  mode: 0o444,
  *show() {
    return '';
  },
};

/** No default domain (emulated / noiommu groups): "unknown". */
const iommu_group_attr_type: AttrOps<IommuGroup> = {
  name: 'type',
  mode: 0o644,
  *show() {
    return 'unknown\n';
  },
  *store() {
    return -E.EINVAL;
  },
};

const deviceGroups = new SideTable<Device, IommuGroup>('deviceGroups');

/** iommu_group_alloc() */
export function iommu_group_alloc(core: DriverCore): IommuGroup {
  const io = iommu_core(core);
  return new IommuGroup(io, io.allocId());
}

/** iommu_group_set_name(): adds the `name` attribute. */
export function iommu_group_set_name(group: IommuGroup, name: string): number {
  const s = group.iommu.core.sysfs;
  if (group.name === null) s.createFile(group.kobj, iommu_group_attr_name, group);
  group.name = name;
  return 0;
}

/** iommu_group_get(dev): the device's group with a reference, or null. */
export function iommu_group_get(dev: Device): IommuGroup | null {
  const g = deviceGroups.get(dev) ?? null;
  if (g) g.refs++;
  return g;
}

/** iommu_group_id() */
export function iommu_group_id(group: IommuGroup): number {
  return group.id;
}

/** iommu_group_add_device(): `iommu_group` link in the device, devices/<name> in the group. */
export function iommu_group_add_device(group: IommuGroup, dev: Device): number {
  if (!dev.kobj) throw new Errno(E.EINVAL, 'iommu_group_add_device: device not in sysfs');
  const s = group.iommu.core.sysfs;
  s.createLink(dev.kobj, group.kobj, 'iommu_group');
  s.createLink(group.devices_kobj, dev.kobj, dev.name);
  group.devices.add(dev);
  group.refs++;
  deviceGroups.set(dev, group);
  group.iommu.core.k.dev_info(dev.log, `Adding to iommu group ${group.id}`);
  return 0;
}

/** iommu_group_remove_device() */
export function* iommu_group_remove_device(dev: Device): KGen<void> {
  const group = deviceGroups.get(dev);
  if (!group) return;
  const core = group.iommu.core;
  const k: Kernel = core.k;
  k.dev_info(dev.log, `Removing from iommu group ${group.id}`);
  if (dev.kobj) yield* core.sysfs.remove_child_gen(k, dev.kobj, 'iommu_group');
  yield* core.sysfs.remove_child_gen(k, group.devices_kobj, dev.name);
  group.devices.delete(dev);
  deviceGroups.delete(dev);
  yield* iommu_group_put(group);
}

/** iommu_group_put(): the last reference removes /sys/kernel/iommu_groups/<id> and frees the id. */
export function* iommu_group_put(group: IommuGroup | null): KGen<void> {
  if (!group) return;
  if (--group.refs > 0) return;
  const core = group.iommu.core;
  yield* core.sysfs.remove_gen(core.k, group.kobj);
  group.iommu.freeId(group.id);
}
