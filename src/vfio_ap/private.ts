// vfio_ap's objects (drivers/s390/crypto/vfio_ap_private.h): the matrix_dev
// singleton, ap_matrix, matrix_mdev and vfio_ap_queue.
import type { Kernel, Mutex, Work } from '../kernel/index.js';
import type { Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { type ApMask, newMask, copyMask } from '../hw/mask.js';
import type { QciInfo } from '../hw/registers.js';
import type { Apqn } from '../hw/apqn.js';
import type { ApBus } from '../ap/ap_bus.js';
import type { ApQueue } from '../ap/ap_device.js';
import type { Kvm, KvmHost, CryptoHook, PqapHookOwner } from '../kvm/index.js';
import type { VfioApPieces } from './pieces.js';
import type { EventFdCtx } from '../vfio/eventfd.js';
import { VfioDevice, type Vfio, type VfioDeviceOps } from '../vfio/vfio_main.js';
import type { MdevDevice } from '../vfio/mdev.js';

export const VFIO_AP_DRV_NAME = 'vfio_ap';
export const VFIO_AP_MDEV_TYPE_HWVIRT = 'passthrough';
export const VFIO_AP_MDEV_NAME_HWVIRT = 'VFIO AP Passthrough Device';
/** AP_DEVICES x AP_DOMAINS */
export const MAX_ZDEV_ENTRIES_EXT = 256 * 256;
/** saved_isc value meaning "no guest ISC registered". */
export const VFIO_AP_ISC_INVALID = 0xff;
/** vfio_ap's reset poll interval (AP_RESET_INTERVAL, ms). */
export const AP_RESET_INTERVAL = 20;

/** The host configuration vfio_ap keeps a copy of (matrix_dev->info). */
export interface ApConfigInfo {
  apxa: boolean;
  na: number;
  nd: number;
  apm: ApMask;
  aqm: ApMask;
  adm: ApMask;
}

export function emptyInfo(): ApConfigInfo {
  return { apxa: false, na: 0, nd: 0, apm: newMask(), aqm: newMask(), adm: newMask() };
}

export function infoFromQci(q: QciInfo): ApConfigInfo {
  return { apxa: q.apxa, na: q.na, nd: q.nd, apm: copyMask(q.apm), aqm: copyMask(q.aqm), adm: copyMask(q.adm) };
}

/** struct ap_matrix: three masks and the highest id allowed in each. */
export class ApMatrix {
  apm_max = 63;
  apm = newMask();
  aqm_max = 15;
  aqm = newMask();
  adm_max = 15;
  adm = newMask();

  /** vfio_ap_matrix_init(): maxima from the host config (APXA: Na/Nd, else 63/15). */
  static init(info: ApConfigInfo): ApMatrix {
    const m = new ApMatrix();
    m.apm_max = info.apxa ? info.na : 63;
    m.aqm_max = info.apxa ? info.nd : 15;
    m.adm_max = info.apxa ? info.nd : 15;
    return m;
  }

  copy(): ApMatrix {
    const m = new ApMatrix();
    m.apm_max = this.apm_max;
    m.aqm_max = this.aqm_max;
    m.adm_max = this.adm_max;
    m.apm = copyMask(this.apm);
    m.aqm = copyMask(this.aqm);
    m.adm = copyMask(this.adm);
    return m;
  }
}

/** struct vfio_ap_queue: one per AP queue device bound to vfio_ap. */
export class VfioApQueue {
  /** The mdev whose qtable holds it ("linked"), or null. */
  matrix_mdev: MatrixMdev | null = null;
  /** Guest address of the pinned NIB page, 0 = none. */
  saved_iova = 0;
  saved_isc = VFIO_AP_ISC_INVALID;
  /** Status word (RC and flags) of the last ZAPQ. */
  reset_status = { responseCode: 0, queueEmpty: true, irqEnabled: false };
  /** apsim: when reset_status was last stored (MatrixDev.seq), for the I4 check. */
  resetSeq = 0;
  /** The asynchronous reset-completion check. */
  reset_work: Work | null = null;
  constructor(
    readonly apqn: Apqn,
    /** The AP queue device it is attached to. */
    readonly qdev: ApQueue,
  ) {}
}



/** The vfio_device embedded in an ap_matrix_mdev (container_of = .matrix_mdev). */
export class MatrixVdev extends VfioDevice {
  matrix_mdev!: MatrixMdev;
}

/** struct ap_matrix_mdev */
export class MatrixMdev implements PqapHookOwner {
  matrix: ApMatrix;
  shadow_apcb: ApMatrix;
  kvm: Kvm | null = null;
  /** What the VM's pqap hook points at: this field. */
  pqap_hook: CryptoHook | null = null;
  readonly qtable = new Map<Apqn, VfioApQueue>();
  req_trigger: EventFdCtx | null = null;
  cfg_chg_trigger: EventFdCtx | null = null;
  apm_add = newMask();
  aqm_add = newMask();
  adm_add = newMask();
  /** apsim: when filter_matrix last ran for this mdev (MatrixDev.seq), for the I4 check. */
  filterSeq = 0;
  /** The embedded VFIO device. */
  readonly vdev: MatrixVdev;

  constructor(
    vfio: Vfio,
    readonly mdev: MdevDevice,
    ops: VfioDeviceOps<MatrixVdev>,
    info: ApConfigInfo,
  ) {
    this.vdev = new MatrixVdev(vfio, mdev.dev, ops);
    this.vdev.matrix_mdev = this;
    this.matrix = ApMatrix.init(info);
    this.shadow_apcb = ApMatrix.init(info);
  }

  get uuid(): string {
    return this.mdev.uuid;
  }
}

/** struct ap_matrix_dev: the module's singleton. */
export class MatrixDev {
  /** The parent device /sys/devices/vfio_ap/matrix. */
  device: Device | null = null;
  info: ApConfigInfo;
  /** Newest first (list_add inserts at the head). */
  readonly mdev_list: MatrixMdev[] = [];
  readonly mdevs_lock: Mutex;
  readonly guests_lock: Mutex;
  readonly reset_wq_name = 'vfio_ap_reset';
  /** The `status` attribute group added to queues bound to vfio_ap. */
  queueStatusGroup!: AttributeGroup<Device>;
  /** apsim: a logical clock ordering filter runs and reset results (invariant I4). */
  seq = 0;
  /** The s390 debug feature trace (VFIO_AP_DBF_*). */
  readonly dbfLog: string[] = [];

  constructor(
    readonly k: Kernel,
    readonly bus: ApBus,
    readonly kvmHost: KvmHost,
    readonly pieces: VfioApPieces,
  ) {
    this.mdevs_lock = k.mutex_init('&matrix_dev->mdevs_lock');
    this.guests_lock = k.mutex_init('&matrix_dev->guests_lock');
    this.info = emptyInfo();
  }

  /** For dev_* messages on the parent: "vfio_ap matrix: ...". */
  get log(): { driver: string; devName: string } {
    return { driver: VFIO_AP_DRV_NAME, devName: 'matrix' };
  }
}
