// The zcrypt default drivers for CEX4..CEX8: cex4card and cex4queue
// (drivers/s390/crypto/zcrypt_cex4.c, zcrypt_card.c, zcrypt_queue.c). They carry
// AP_DRIVER_FLAG_DEFAULT, so they bind exactly the queues apmask/aqmask reserve
// for the host, drive them through the queue state machine and add the
// type/online/load attributes tools such as lszcrypt read.
import { E, type KGen, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import { device_uevent, type Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { sscanf_int } from '../lib/kstrto.js';
import type { Apqn } from '../hw/apqn.js';
import {
  AP_DRIVER_FLAG_DEFAULT,
  AP_DEVICE_ID_MATCH_CARD_TYPE,
  AP_DEVICE_ID_MATCH_QUEUE_TYPE,
  AP_DEVICE_TYPE_CEX4,
  AP_DEVICE_TYPE_CEX8,
  type ApCard,
  type ApDevice,
  type ApDriver,
  type ApQueue,
} from './ap_device.js';
import type { ApBus } from './ap_bus.js';
import type { ApMessage } from './ap_queue_sm.js';

/** struct zcrypt_card (the part that is observable). */
export interface ZcryptCard {
  online: boolean;
  readonly type_string: string;
  load: number;
}

/** struct zcrypt_queue */
export interface ZcryptQueue {
  online: boolean;
  load: number;
}

const ids = (flag: number) =>
  Object.freeze(Array.from({ length: AP_DEVICE_TYPE_CEX8 - AP_DEVICE_TYPE_CEX4 + 1 }, (_, i) => Object.freeze({ match_flags: flag, dev_type: AP_DEVICE_TYPE_CEX4 + i })));

/** "CEX<n><A|C|P>" from the compatible type and the card's functions. */
export function zcrypt_type_string(ac: ApCard): string | null {
  const gen = ac.device_type - 6; // 10 = CEX4 ... 14 = CEX8
  if (ac.hwinfo.accel) return `CEX${gen}A`;
  if (ac.hwinfo.cca) return `CEX${gen}C`;
  if (ac.hwinfo.ep11) return `CEX${gen}P`;
  return null;
}

const zcard = (d: Device): ZcryptCard => d.driver_data as ZcryptCard;
const zqueue = (d: Device): ZcryptQueue => d.driver_data as ZcryptQueue;

export class Zcrypt {
  readonly cex4card: ApDriver;
  readonly cex4queue: ApDriver;

  constructor(readonly bus: ApBus) {
    const cardProbe = (ac: ApCard) => this.zcrypt_cex4_card_probe(ac);
    const queueProbe = (aq: ApQueue) => this.zcrypt_cex4_queue_probe(aq);
    this.cex4card = {
      name: 'cex4card',
      bus: bus.bus,
      ids: ids(AP_DEVICE_ID_MATCH_CARD_TYPE),
      flags: AP_DRIVER_FLAG_DEFAULT,
      dev_groups: cardGroups(bus),
      *probe(_k: Kernel, dev: ApDevice) {
        return cardProbe(dev as ApCard);
      },
    };
    this.cex4queue = {
      name: 'cex4queue',
      bus: bus.bus,
      ids: ids(AP_DEVICE_ID_MATCH_QUEUE_TYPE),
      flags: AP_DRIVER_FLAG_DEFAULT,
      dev_groups: queueGroups(bus),
      *probe(_k: Kernel, dev: ApDevice) {
        return queueProbe(dev as ApQueue);
      },
      *remove(_k: Kernel, dev: ApDevice) {
        dev.driver_data = null;
      },
    };
  }

  /** zcrypt_cex4_init(): registers both drivers. */
  *init(): KGen<void> {
    yield* this.bus.ap_driver_register(this.cex4card);
    yield* this.bus.ap_driver_register(this.cex4queue);
  }

  private zcrypt_cex4_card_probe(ac: ApCard): number {
    const type_string = zcrypt_type_string(ac);
    if (type_string === null) return -E.ENODEV!;
    const zc: ZcryptCard = { online: true, type_string, load: 0 };
    ac.driver_data = zc;
    return 0;
  }

  private zcrypt_cex4_queue_probe(aq: ApQueue): number {
    // zcrypt_queue_register() needs the card's zcrypt_card.
    if (!aq.card.driver_data || aq.card.driver !== this.cex4card) return -E.ENODEV!;
    const zq: ZcryptQueue = { online: true, load: 0 };
    aq.driver_data = zq;
    aq.sm.request_timeout = 900_000_000_000; // CEX4_CLEANUP_TIME
    this.bus.poller.wait(aq, aq.sm.ap_queue_init_state());
    return 0;
  }

  /**
   * Sends a request to a zcrypt queue (what /dev/z90crypt does once it picked one):
   * counts it on the queue and card and hands it to the state machine.
   */
  send(qid: Apqn, msg: ApMessage): ApMessage {
    const aq = this.bus.queues.get(qid);
    if (!aq || aq.driver !== this.cex4queue || !zqueue(aq).online || !aq.sm.config || aq.sm.chkstop) {
      msg.rc = -E.ENODEV!;
      msg.done = true;
      return msg;
    }
    aq.card.total_request_count++;
    this.bus.poller.wait(aq, aq.sm.ap_queue_message(msg));
    return msg;
  }
}

function online(aqOrAc: { config: boolean; chkstop: boolean }, zOnline: boolean): string {
  return `${aqOrAc.config && !aqOrAc.chkstop && zOnline ? 1 : 0}\n`;
}

function cardGroups(b: ApBus): AttributeGroup<Device>[] {
  const attrs: AttrOps<Device>[] = [
    {
      name: 'type',
      mode: 0o444,
      *show(_k, d) {
        return `${zcard(d).type_string}\n`;
      },
    },
    {
      name: 'online',
      mode: 0o644,
      *show(_k, d) {
        return online(d as ApCard, zcard(d).online);
      },
      *store(_k, d, buf) {
        const ac = d as ApCard;
        const v = sscanf_int(buf);
        if (v === null || v < 0 || v > 1) return -E.EINVAL!;
        if (v && (!ac.config || ac.chkstop)) return -E.ENODEV!;
        zcard(d).online = v === 1;
        device_uevent(ac, 'change', [`ONLINE=${v}`]);
        // zcrypt_queue_force_online() for every queue of the card.
        for (const q of b.queues.values()) {
          if (q.card !== ac || !q.driver_data) continue;
          const zq = zqueue(q);
          if (zq.online !== (v === 1)) {
            zq.online = v === 1;
            if (!v) q.sm.flush();
            device_uevent(q, 'change', [`ONLINE=${v}`]);
          }
        }
        return buf.length;
      },
    },
    {
      name: 'load',
      mode: 0o444,
      *show(_k, d) {
        return `${zcard(d).load}\n`;
      },
    },
  ];
  // CCA and EP11 cards answer their serial number (read from the card's CPRB
  // interface in the kernel; here from the adapter's profile).
  const serial: AttrOps<Device> = {
    name: 'serialnr',
    mode: 0o444,
    *show(_k, d) {
      const ac = d as ApCard;
      const info = b.machine.adapter(ac.id);
      const usable = ac.config && !ac.chkstop && b.ap_domain_index >= 0;
      return `${usable && info ? info.serialNumber : ''}\n`;
    },
  };
  const ep11: AttrOps<Device>[] = [
    {
      name: 'API_ordinalnr',
      mode: 0o444,
      *show(_k, d) {
        const info = b.machine.adapter((d as ApCard).id);
        return `${info?.ep11ApiOrdinal ?? 0}\n`;
      },
    },
    {
      name: 'FW_version',
      mode: 0o444,
      *show(_k, d) {
        const info = b.machine.adapter((d as ApCard).id);
        return `${info?.ep11FwVersion ?? ''}\n`;
      },
    },
  ];
  return [
    { attrs },
    { attrs: [serial], is_visible: (d) => ((d as ApCard).hwinfo.cca || (d as ApCard).hwinfo.ep11 ? 0o444 : 0) },
    { attrs: ep11, is_visible: (d) => ((d as ApCard).hwinfo.ep11 ? 0o444 : 0) },
  ];
}

function queueGroups(_b: ApBus): AttributeGroup<Device>[] {
  const attrs: AttrOps<Device>[] = [
    {
      name: 'online',
      mode: 0o644,
      *show(_k, d) {
        return online((d as ApQueue).sm, zqueue(d).online);
      },
      *store(_k, d, buf) {
        const aq = d as ApQueue;
        const v = sscanf_int(buf);
        if (v === null || v < 0 || v > 1) return -E.EINVAL!;
        if (v && (!aq.sm.config || !aq.card.config || aq.sm.chkstop || aq.card.chkstop)) return -E.ENODEV!;
        const zc = aq.card.driver_data as ZcryptCard | null;
        if (v && !zc?.online) return -E.EINVAL!;
        zqueue(d).online = v === 1;
        device_uevent(aq, 'change', [`ONLINE=${v}`]);
        if (!v) aq.sm.flush();
        return buf.length;
      },
    },
    {
      name: 'load',
      mode: 0o444,
      *show(_k, d) {
        return `${zqueue(d).load}\n`;
      },
    },
  ];
  return [{ attrs }];
}
