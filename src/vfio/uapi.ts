// include/uapi/linux/vfio.h: ioctl numbers, flags and argument structures.
//
// Arguments are typed objects instead of user memory. `null` stands for a user pointer that
// faults (copy_from_user/copy_to_user → -EFAULT). `argsz` is what userspace claims the structure
// is, and the kernel validates it exactly as it validates the C field; trailing payload (the
// SET_IRQS data array) is the `data` array, and reading beyond it faults.

const VFIO_TYPE = 0x3b; // ';'
const VFIO_BASE = 100;
/** _IO(VFIO_TYPE, VFIO_BASE + nr) */
const vfio_io = (nr: number): number => (VFIO_TYPE << 8) | (VFIO_BASE + nr);

export const VFIO_API_VERSION = 0;

export const VFIO_GET_API_VERSION = vfio_io(0);
export const VFIO_CHECK_EXTENSION = vfio_io(1);
export const VFIO_SET_IOMMU = vfio_io(2);
export const VFIO_GROUP_GET_STATUS = vfio_io(3);
export const VFIO_GROUP_SET_CONTAINER = vfio_io(4);
export const VFIO_GROUP_UNSET_CONTAINER = vfio_io(5);
export const VFIO_GROUP_GET_DEVICE_FD = vfio_io(6);
export const VFIO_DEVICE_GET_INFO = vfio_io(7);
export const VFIO_DEVICE_GET_REGION_INFO = vfio_io(8);
export const VFIO_DEVICE_GET_IRQ_INFO = vfio_io(9);
export const VFIO_DEVICE_SET_IRQS = vfio_io(10);
export const VFIO_DEVICE_RESET = vfio_io(11);
export const VFIO_DEVICE_FEATURE = vfio_io(17);
export const VFIO_IOMMU_MAP_DMA = vfio_io(13);
export const VFIO_IOMMU_UNMAP_DMA = vfio_io(14);

/** struct vfio_iommu_type1_dma_map: argsz, flags, vaddr, iova, size (32 bytes). */
export interface VfioDmaMap {
  argsz: number;
  flags: number;
  vaddr: number;
  iova: number;
  size: number;
}

/** struct vfio_iommu_type1_dma_unmap: argsz, flags, iova, size (24 bytes). */
export interface VfioDmaUnmap {
  argsz: number;
  flags: number;
  iova: number;
  size: number;
}

export const VFIO_DMA_MAP_MINSZ = 32;
export const VFIO_DMA_UNMAP_MINSZ = 24;

/** IOMMU types (VFIO_SET_IOMMU / VFIO_CHECK_EXTENSION). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;

/** struct vfio_group_status flags */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** struct vfio_device_info flags */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;

/** struct vfio_irq_info flags */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** struct vfio_irq_set flags */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

/** vfio-ap IRQ indexes (VFIO_AP_*_IRQ_INDEX). */
export const VFIO_AP_REQ_IRQ_INDEX = 0;
export const VFIO_AP_CFG_CHG_IRQ_INDEX = 1;
export const VFIO_AP_NUM_IRQS = 2;

/** The device_api strings (VFIO_DEVICE_API_*_STRING). */
export const VFIO_DEVICE_API_AP_STRING = 'vfio-ap';

/** struct vfio_group_status (argsz, flags): 8 bytes. */
export interface VfioGroupStatus {
  argsz: number;
  flags: number;
}

/** struct vfio_device_info: argsz, flags, num_regions, num_irqs (16 bytes), cap_offset (20). */
export interface VfioDeviceInfo {
  argsz: number;
  flags: number;
  num_regions: number;
  num_irqs: number;
  cap_offset?: number;
}

/** struct vfio_irq_info: argsz, flags, index, count (16 bytes). */
export interface VfioIrqInfo {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

/**
 * struct vfio_irq_set: argsz, flags, index, start, count (20 bytes) + data[]. `data` holds the
 * payload elements: eventfds (int32) for DATA_EVENTFD, 0/1 bytes for DATA_BOOL.
 */
export interface VfioIrqSet {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  data?: readonly number[];
}

/** offsetofend(struct vfio_device_info, num_irqs) */
export const VFIO_DEVICE_INFO_MINSZ = 16;
/** offsetofend(struct vfio_irq_info, count) */
export const VFIO_IRQ_INFO_MINSZ = 16;
/** offsetofend(struct vfio_irq_set, count) */
export const VFIO_IRQ_SET_MINSZ = 20;
/** offsetofend(struct vfio_group_status, flags) */
export const VFIO_GROUP_STATUS_MINSZ = 8;

/** Ioctl argument as the simulation passes it: a typed structure, or null for a faulting pointer. */
export type VfioUserArg = VfioDeviceInfo | VfioIrqInfo | VfioIrqSet | VfioGroupStatus | number | string | null | undefined;

/** copy_from_user of a structure: a private copy, or null (-EFAULT). */
export function copy_from_user<T extends object>(arg: unknown): T | null {
  if (arg === null || typeof arg !== 'object') return null;
  return { ...(arg as T) };
}

/**
 * copy_to_user of the first fields of a structure: only `fields` are written back (the kernel
 * copies minsz bytes). False if the destination faults.
 */
export function copy_to_user<T extends object>(dst: unknown, src: T, fields: readonly (keyof T)[]): boolean {
  if (dst === null || typeof dst !== 'object') return false;
  for (const f of fields) (dst as T)[f] = src[f];
  return true;
}

/** Symbolic names of the ioctl numbers (logs, errors). */
export function vfio_ioctl_name(cmd: number): string {
  const names: Record<number, string> = {
    [VFIO_GET_API_VERSION]: 'VFIO_GET_API_VERSION',
    [VFIO_CHECK_EXTENSION]: 'VFIO_CHECK_EXTENSION',
    [VFIO_SET_IOMMU]: 'VFIO_SET_IOMMU',
    [VFIO_GROUP_GET_STATUS]: 'VFIO_GROUP_GET_STATUS',
    [VFIO_GROUP_SET_CONTAINER]: 'VFIO_GROUP_SET_CONTAINER',
    [VFIO_GROUP_UNSET_CONTAINER]: 'VFIO_GROUP_UNSET_CONTAINER',
    [VFIO_GROUP_GET_DEVICE_FD]: 'VFIO_GROUP_GET_DEVICE_FD',
    [VFIO_DEVICE_GET_INFO]: 'VFIO_DEVICE_GET_INFO',
    [VFIO_DEVICE_GET_REGION_INFO]: 'VFIO_DEVICE_GET_REGION_INFO',
    [VFIO_DEVICE_GET_IRQ_INFO]: 'VFIO_DEVICE_GET_IRQ_INFO',
    [VFIO_DEVICE_SET_IRQS]: 'VFIO_DEVICE_SET_IRQS',
    [VFIO_DEVICE_RESET]: 'VFIO_DEVICE_RESET',
    [VFIO_DEVICE_FEATURE]: 'VFIO_DEVICE_FEATURE',
  };
  return names[cmd] ?? `0x${cmd.toString(16)}`;
}
