// VFIO groups and containers (drivers/vfio/group.c, container.c) as QEMU uses them for an mdev:
// /dev/vfio/vfio (the container), /dev/vfio/<group> (one group per emulated-IOMMU device),
// VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD, and the KVM pointer the
// kvm-vfio device hands to the group (vfio_file_set_kvm).
import { E, type KGen, type Kernel, type Mutex, type RwSemaphore } from '../kernel/index.js';
import { Device, device_register, device_unregister } from '../base/index.js';
import type { Kvm } from '../kvm/index.js';
import { KFile, current_files, fput_deferred, get_file, type FileOps, type Files } from './file.js';
import { iommu_group_add_device, iommu_group_alloc, iommu_group_put, iommu_group_remove_device, iommu_group_set_name, type IommuGroup } from './iommu.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_STATUS_MINSZ,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_DMA_MAP_MINSZ,
  VFIO_DMA_UNMAP_MINSZ,
  type VfioDmaMap,
  type VfioDmaUnmap,
  copy_from_user,
  copy_to_user,
  type VfioGroupStatus,
} from './uapi.js';
import { vfio_device_open_file, vfio_device_put_registration, vfio_device_try_get_registration, type Vfio, type VfioDevice } from './vfio_main.js';

export type VfioGroupType = 'iommu' | 'emulated' | 'noiommu';

/** struct vfio_group */
export class VfioGroup {
  /** group->group_lock: the group file, container and kvm pointer. */
  readonly group_lock: Mutex;
  /** group->device_lock: device_list. */
  readonly device_lock: Mutex;
  readonly device_list: VfioDevice[] = [];
  /** Set by the kvm-vfio device (vfio_file_set_kvm), under group_lock. */
  kvm: Kvm | null = null;
  /** The one open group file (a second open: -EBUSY). */
  opened_file: KFile<VfioGroup> | null = null;
  container: VfioContainer | null = null;
  container_users = 0;
  /** refcount group->drivers: devices using the group. */
  drivers = 1;
  /**
   * References on the group object (its struct device's refcount): one for the
   * registered device(s), one for an open group file. Changed under group_lock;
   * whoever drops the last one frees the group (vfio_group_release).
   */
  refs = 1;
  iommu_group: IommuGroup | null;
  /** The class "vfio" device (/dev/vfio/<name>). */
  readonly dev: Device;

  constructor(
    readonly vfio: Vfio,
    iommu_group: IommuGroup,
    readonly type: VfioGroupType,
  ) {
    const k = vfio.k;
    this.group_lock = k.mutex_init('&group->group_lock');
    this.device_lock = k.mutex_init('&group->device_lock');
    this.iommu_group = iommu_group;
    iommu_group.refs++; // put in vfio_group_release()
    this.dev = new Device(vfio.core, `${type === 'noiommu' ? 'noiommu-' : ''}${iommu_group.id}`);
    this.dev.class = vfio.class;
  }
}

/** vfio_device_set_group() for the emulated-IOMMU case (vfio_noiommu_group_alloc). */
export function* vfio_device_set_group(device: VfioDevice, type: VfioGroupType): KGen<number> {
  const vfio = device.vfio;
  const k = vfio.k;
  if (type !== 'emulated' && type !== 'noiommu') return -E.EINVAL; // no IOMMU hardware in the model
  const ig = iommu_group_alloc(vfio.core);
  iommu_group_set_name(ig, 'vfio-noiommu');
  iommu_group_add_device(ig, device.dev);
  yield k.mutex_lock(vfio.group_lock);
  const group = k.kzalloc('vfio_group', new VfioGroup(vfio, ig, type));
  yield* device_register(group.dev);
  vfio.group_list.push(group);
  yield k.mutex_unlock(vfio.group_lock);
  yield* iommu_group_put(ig);
  device.group = group;
  return 0;
}

/** vfio_device_remove_group(): the last device of the group takes the group down. */
export function* vfio_device_remove_group(device: VfioDevice): KGen<void> {
  const vfio = device.vfio;
  const k = vfio.k;
  const group = device.group!;
  if (group.type === 'emulated' || group.type === 'noiommu') yield* iommu_group_remove_device(device.dev);
  yield k.mutex_lock(vfio.group_lock);
  if (--group.drivers > 0) {
    yield k.mutex_unlock(vfio.group_lock);
    return;
  }
  const i = vfio.group_list.indexOf(group);
  if (i >= 0) vfio.group_list.splice(i, 1);
  yield* device_unregister(group.dev);
  yield k.mutex_lock(group.group_lock);
  k.WARN_ON(group.device_list.length !== 0, 'vfio_device_remove_group: devices left');
  if (group.container) vfio_group_detach_container(group);
  const ig = group.iommu_group;
  group.iommu_group = null;
  // The group memory lives on while a group file still points to it (QEMU may hold it).
  const last = --group.refs === 0;
  yield k.mutex_unlock(group.group_lock);
  yield k.mutex_unlock(vfio.group_lock);
  yield* iommu_group_put(ig);
  if (last) yield k.kfree(group);
}

/**
 * vfio_file_set_kvm() for a group file: what the kvm-vfio device calls (set and NULL). Stores
 * the pointer under the group lock only; no reference (valid during the call only, seed 000).
 */
export function* vfio_file_set_kvm(file: KFile, kvm: Kvm | null): KGen<void> {
  const group = vfio_group_from_file(file);
  if (!group) return;
  const k = group.vfio.k;
  yield k.mutex_lock(group.group_lock);
  group.kvm = kvm;
  yield k.mutex_unlock(group.group_lock);
}

/** vfio_group_from_file() / vfio_file_is_group() */
export function vfio_group_from_file(file: KFile): VfioGroup | null {
  return file.f_op === vfio_group_fops ? (file.private_data as VfioGroup) : null;
}

export function vfio_file_is_group(file: KFile): boolean {
  return vfio_group_from_file(file) !== null;
}

/** vfio_group_use_container(): at a device's first open; group lock held. */
export function* vfio_group_use_container(group: VfioGroup): KGen<number> {
  const k = group.vfio.k;
  k.lockdep_assert_held(group.group_lock);
  if (k.WARN_ON(!group.container, 'vfio_device_group_use_iommu without container')) return -E.EINVAL;
  if (group.container!.iommu_driver === null) return -E.EINVAL;
  get_file(group.opened_file!);
  group.container_users++;
  return 0;
}

function vfio_group_detach_container(group: VfioGroup): void {
  const c = group.container!;
  const k = group.vfio.k;
  const i = c.group_list.indexOf(group);
  if (i >= 0) c.group_list.splice(i, 1);
  if (c.group_list.length === 0) c.iommu_driver = null; // the container is deprivileged again
  group.container = null;
  group.container_users = 0;
  fput_deferred(k, c.file);
}

// ---------------------------------------------------------------- group file

function* vfio_group_ioctl_get_status(k: Kernel, group: VfioGroup, arg: unknown): KGen<number> {
  const st = copy_from_user<VfioGroupStatus>(arg);
  if (!st) return -E.EFAULT;
  if (st.argsz < VFIO_GROUP_STATUS_MINSZ) return -E.EINVAL;
  st.flags = 0;
  yield k.mutex_lock(group.group_lock);
  if (!group.iommu_group) {
    yield k.mutex_unlock(group.group_lock);
    return -E.ENODEV;
  }
  st.flags = group.container ? VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE : VFIO_GROUP_FLAGS_VIABLE;
  yield k.mutex_unlock(group.group_lock);
  return copy_to_user(arg, st, ['argsz', 'flags']) ? 0 : -E.EFAULT;
}

function* vfio_group_ioctl_set_container(k: Kernel, group: VfioGroup, arg: unknown): KGen<number> {
  if (typeof arg !== 'number') return -E.EFAULT;
  const f = current_files(k)?.get(arg) ?? null;
  if (!f) return -E.EBADF;
  yield k.mutex_lock(group.group_lock);
  let ret = 0;
  if (group.container) ret = -E.EINVAL;
  else if (!group.iommu_group) ret = -E.ENODEV;
  else if (f.f_op !== vfio_container_fops) ret = -E.EBADFD;
  else {
    const c = f.private_data as VfioContainer;
    yield k.down_write(c.group_lock);
    if (c.noiommu !== (group.type === 'noiommu')) ret = -E.EPERM;
    else {
      c.group_list.push(group);
      group.container = c;
      group.container_users = 1;
      get_file(c.file);
    }
    yield k.up_write(c.group_lock);
  }
  yield k.mutex_unlock(group.group_lock);
  return ret;
}

function* vfio_group_ioctl_unset_container(k: Kernel, group: VfioGroup): KGen<number> {
  yield k.mutex_lock(group.group_lock);
  let ret = 0;
  if (!group.container) ret = -E.EINVAL;
  else if (group.container_users !== 1) ret = -E.EBUSY;
  else vfio_group_detach_container(group);
  yield k.mutex_unlock(group.group_lock);
  return ret;
}

/** VFIO_GROUP_GET_DEVICE_FD: the device named `arg` in this group, opened; an fd or -errno. */
function* vfio_group_ioctl_get_device_fd(k: Kernel, group: VfioGroup, arg: unknown): KGen<number> {
  if (typeof arg !== 'string') return -E.EFAULT;
  const files = current_files(k);
  if (!files) return -E.EBADF;
  // vfio_device_get_from_name()
  yield k.mutex_lock(group.device_lock);
  const device = group.device_list.find((d) => d.dev.name === arg && vfio_device_try_get_registration(d)) ?? null;
  yield k.mutex_unlock(group.device_lock);
  if (!device) return -E.ENODEV;
  const f: KFile | number = yield* vfio_device_open_file(device, group);
  if (typeof f === 'number') {
    yield* vfio_device_put_registration(device);
    return f;
  }
  return files.install(f);
}

export const vfio_group_fops: FileOps<KFile<VfioGroup>> = Object.freeze({
  name: 'vfio-group',
  *release(k: Kernel, f: KFile<VfioGroup>): KGen<void> {
    const group = f.private_data;
    yield k.mutex_lock(group.group_lock);
    if (group.container) vfio_group_detach_container(group);
    group.opened_file = null;
    group.kvm = null;
    const last = --group.refs === 0;
    yield k.mutex_unlock(group.group_lock);
    if (last) yield k.kfree(group); // vfio_group_release after the device went away
  },
  *ioctl(k: Kernel, f: KFile<VfioGroup>, cmd: number, arg: unknown): KGen<number> {
    const group = f.private_data;
    switch (cmd) {
      case VFIO_GROUP_GET_DEVICE_FD:
        return yield* k.fn('vfio_group_ioctl_get_device_fd', vfio_group_ioctl_get_device_fd(k, group, arg));
      case VFIO_GROUP_GET_STATUS:
        return yield* vfio_group_ioctl_get_status(k, group, arg);
      case VFIO_GROUP_SET_CONTAINER:
        return yield* vfio_group_ioctl_set_container(k, group, arg);
      case VFIO_GROUP_UNSET_CONTAINER:
        return yield* vfio_group_ioctl_unset_container(k, group);
      default:
        return -E.ENOTTY;
    }
  },
});

/** vfio_group_fops_open(): -ENODEV once the devices are gone, -EBUSY if already open. */
function* vfio_group_fops_open(k: Kernel, group: VfioGroup): KGen<KFile<VfioGroup> | number> {
  yield k.mutex_lock(group.group_lock);
  let ret: KFile<VfioGroup> | number;
  if (group.drivers === 0 || !group.iommu_group) ret = -E.ENODEV;
  else if (group.opened_file) ret = -E.EBUSY;
  else {
    ret = group.opened_file = new KFile(vfio_group_fops, group);
    group.refs++; // put by the file's release
  }
  yield k.mutex_unlock(group.group_lock);
  return ret;
}

// ---------------------------------------------------------------- container (/dev/vfio/vfio)

/** struct vfio_container with the type1 driver reduced to "set or not". */
export class VfioContainer {
  readonly group_lock: RwSemaphore;
  readonly group_list: VfioGroup[] = [];
  /** VFIO_SET_IOMMU type, null until set. */
  iommu_driver: number | null = null;
  /** type1's DMA mappings (iova -> size); only their existence matters here. */
  readonly dma = new Map<number, number>();
  readonly noiommu = false;
  readonly file: KFile<VfioContainer>;
  constructor(k: Kernel) {
    this.group_lock = k.init_rwsem('&container->group_lock');
    this.file = new KFile(vfio_container_fops, this);
  }
}

const supportedIommu = (t: number): boolean => t === VFIO_TYPE1_IOMMU || t === VFIO_TYPE1v2_IOMMU;

export const vfio_container_fops: FileOps<KFile<VfioContainer>> = Object.freeze({
  name: 'vfio-container',
  *ioctl(k: Kernel, f: KFile<VfioContainer>, cmd: number, arg: unknown): KGen<number> {
    const c = f.private_data;
    switch (cmd) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        return typeof arg === 'number' && supportedIommu(arg) ? 1 : 0;
      case VFIO_SET_IOMMU: {
        yield k.down_write(c.group_lock);
        let ret = 0;
        if (c.group_list.length === 0 || c.iommu_driver !== null) ret = -E.EINVAL;
        else if (typeof arg !== 'number' || !supportedIommu(arg)) ret = -E.ENODEV;
        else c.iommu_driver = arg;
        yield k.up_write(c.group_lock);
        return ret;
      }
      case VFIO_IOMMU_MAP_DMA:
        return vfio_iommu_type1_map_dma(c, arg);
      case VFIO_IOMMU_UNMAP_DMA:
        return yield* vfio_iommu_type1_unmap_dma(k, c, arg);
      default:
        return -E.ENOTTY;
    }
  },
});

/** VFIO_IOMMU_MAP_DMA (type1): records the mapping; -EINVAL before SET_IOMMU or for bad sizes. */
function vfio_iommu_type1_map_dma(c: VfioContainer, arg: unknown): number {
  const m = copy_from_user<VfioDmaMap>(arg);
  if (!m) return -E.EFAULT;
  if (m.argsz < VFIO_DMA_MAP_MINSZ || c.iommu_driver === null || !m.size || m.size % 4096 || m.iova % 4096) return -E.EINVAL;
  for (const [iova, size] of c.dma) if (m.iova < iova + size && iova < m.iova + m.size) return -E.EEXIST;
  c.dma.set(m.iova, m.size);
  return 0;
}

/**
 * VFIO_IOMMU_UNMAP_DMA (type1): removes the mappings inside the range and, for
 * emulated-IOMMU devices, calls their dma_unmap so they drop pins in it
 * (vfio_notify_dma_unmap).
 */
function* vfio_iommu_type1_unmap_dma(k: Kernel, c: VfioContainer, arg: unknown): KGen<number> {
  const u = copy_from_user<VfioDmaUnmap>(arg);
  if (!u) return -E.EFAULT;
  if (u.argsz < VFIO_DMA_UNMAP_MINSZ || c.iommu_driver === null || u.size % 4096 || u.iova % 4096) return -E.EINVAL;
  const gone: Array<[number, number]> = [];
  for (const [iova, size] of c.dma) if (iova >= u.iova && iova + size <= u.iova + u.size) gone.push([iova, size]);
  for (const [iova, size] of gone) {
    c.dma.delete(iova);
    yield k.down_read(c.group_lock);
    const devices = c.group_list.flatMap((g) => g.device_list);
    yield k.up_read(c.group_lock);
    for (const d of devices) if (d.ops.dma_unmap && d.open_count > 0) yield* k.fn(`${d.ops.name} dma_unmap`, d.ops.dma_unmap(d, iova, size));
  }
  return 0;
}

// ---------------------------------------------------------------- open(2) on /dev/vfio

/**
 * open(2) of /dev/vfio/vfio or /dev/vfio/<group> by a process: a descriptor in `files`, or
 * -ENOENT / -ENODEV / -EBUSY.
 */
export function* vfio_open(vfio: Vfio, files: Files, path: string): KGen<number> {
  const k = vfio.k;
  const m = /^\/dev\/vfio\/([^/]+)$/.exec(path);
  if (!m) return -E.ENOENT;
  if (m[1] === 'vfio') return files.install(new VfioContainer(k).file);
  const group = vfio.groupByName(m[1]!);
  if (!group) return -E.ENOENT;
  const f: KFile<VfioGroup> | number = yield* vfio_group_fops_open(k, group);
  if (typeof f === 'number') return f;
  return files.install(f);
}
