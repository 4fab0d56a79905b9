// AP devices on the ap bus: cards (cardXX) and queues (XX.YYYY), and the AP driver
// interface (struct ap_driver) that zcrypt and vfio_ap implement.
import type { KGen, Kernel } from '../kernel/index.js';
import { Device, type DriverCore } from '../base/core.js';
import type { DeviceDriver, ProbeResult } from '../base/types.js';
import type { ApMask } from '../hw/mask.js';
import type { QciInfo, TapqHwinfo } from '../hw/registers.js';
import { type Apqn, apqnCard, apqnDomain, formatApqn } from '../hw/apqn.js';
import { ApQueueSM, type ApQueueEnv } from './ap_queue_sm.js';

/** struct ap_driver flags */
export const AP_DRIVER_FLAG_DEFAULT = 0x0001;
/** struct ap_device_id match_flags */
export const AP_DEVICE_ID_MATCH_CARD_TYPE = 0x01;
export const AP_DEVICE_ID_MATCH_QUEUE_TYPE = 0x02;

/** Device types the drivers match on (CEX4 .. CEX8). */
export const AP_DEVICE_TYPE_CEX4 = 10;
export const AP_DEVICE_TYPE_CEX8 = 14;

export interface ApDeviceId {
  readonly match_flags: number;
  readonly dev_type: number;
}

/** struct ap_driver: a device_driver on the ap bus plus the AP callbacks. */
export interface ApDriver extends DeviceDriver {
  readonly ids: readonly ApDeviceId[];
  readonly flags: number;
  /** ap_drv->probe, called by the bus' ap_device_probe after the reservation check. */
  probe?(k: Kernel, dev: ApDevice): KGen<ProbeResult>;
  remove?(k: Kernel, dev: ApDevice): KGen<void>;
  /** Non-zero if any APQN of apm x aqm is in use by the driver (called under ap_attr_mutex). */
  in_use?(k: Kernel, apm: ApMask, aqm: ApMask): KGen<number | boolean>;
  on_config_changed?(k: Kernel, cur: QciInfo, prev: QciInfo): KGen<void>;
  on_scan_complete?(k: Kernel, cur: QciInfo, prev: QciInfo): KGen<void>;
}

/** struct ap_device: the common part of cards and queues. */
export abstract class ApDevice extends Device {
  /** Compatible device type (10 = CEX4 ... 14 = CEX8). */
  device_type: number;
  abstract readonly isQueue: boolean;
  constructor(core: DriverCore, name: string, device_type: number) {
    super(core, name);
    this.device_type = device_type;
  }
}

/** Card-level TAPQ facts, filtered with TAPQ_CARD_HWINFO_MASK (no bs/reserved bits). */
export interface CardHwinfo {
  /** Raw adapter type (TAPQ "at"). */
  readonly at: number;
  /** Facility word (ap_functions). */
  readonly fac: number;
  readonly qd: number;
  readonly ml: number;
  readonly accel: boolean;
  readonly cca: boolean;
  readonly ep11: boolean;
}

export function cardHwinfo(h: TapqHwinfo): CardHwinfo {
  return { at: h.at, fac: h.facilities, qd: h.qd, ml: h.ml, accel: h.accel, cca: h.cca, ep11: h.ep11 };
}

/** struct ap_card */
export class ApCard extends ApDevice {
  readonly isQueue = false;
  config: boolean;
  chkstop: boolean;
  /** atomic64 total_request_count: requests sent to any of its queues. */
  total_request_count = 0;
  /** ml * 4096, or 12288 when the adapter reports no ml. */
  readonly maxmsgsize: number;
  constructor(
    core: DriverCore,
    readonly id: number,
    public hwinfo: CardHwinfo,
    comp_type: number,
    decfg: boolean,
    chkstop: boolean,
  ) {
    super(core, `card${id.toString(16).padStart(2, '0')}`, comp_type);
    this.config = !decfg;
    this.chkstop = chkstop;
    this.maxmsgsize = hwinfo.ml > 0 ? hwinfo.ml * 4096 : 12288;
  }
  /** Queues per the card's TAPQ: qd + 1 slots. */
  get depth(): number {
    return this.hwinfo.qd + 1;
  }
}

/** struct ap_queue: the device and its state machine. */
export class ApQueue extends ApDevice {
  readonly isQueue = true;
  readonly sm: ApQueueSM;
  /** Secure Execution bind state from TAPQ (not modelled beyond storage). */
  se_bstate = 0;
  constructor(
    core: DriverCore,
    readonly qid: Apqn,
    readonly card: ApCard,
    env: ApQueueEnv,
    decfg: boolean,
    chkstop: boolean,
  ) {
    super(core, formatApqn(qid), card.device_type);
    this.sm = new ApQueueSM(qid, card.depth, env);
    this.sm.config = !decfg;
    this.sm.chkstop = chkstop;
  }
  get apid(): number {
    return apqnCard(this.qid);
  }
  get apqi(): number {
    return apqnDomain(this.qid);
  }
}

export function is_card_dev(dev: Device): dev is ApCard {
  return dev instanceof ApCard;
}

export function is_queue_dev(dev: Device): dev is ApQueue {
  return dev instanceof ApQueue;
}
