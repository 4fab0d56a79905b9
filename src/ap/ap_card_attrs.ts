// sysfs attributes of AP card devices (drivers/s390/crypto/ap_card.c).
import { E, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import type { Device } from '../base/core.js';
import { device_uevent } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { sscanf_int } from '../lib/kstrto.js';
import type { ApCard } from './ap_device.js';
import type { ApBus } from './ap_bus.js';

const card = (d: Device): ApCard => d as ApCard;
const busOf = (d: Device): ApBus => (d.bus as unknown as { apbus: ApBus }).apbus;

function ro(name: string, show: (ac: ApCard) => string): AttrOps<Device> {
  return {
    name,
    mode: 0o444,
    *show(_k: Kernel, d: Device) {
      return show(card(d));
    },
  };
}

const hex8 = (n: number): string => `0x${(n >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;

export const apCardAttrs: AttrOps<Device>[] = [
  ro('hwtype', (ac) => `${ac.device_type}\n`),
  ro('raw_hwtype', (ac) => `${ac.hwinfo.at}\n`),
  // 6.19 semantics: the number of slots (TAPQ qd + 1).
  ro('depth', (ac) => `${ac.depth}\n`),
  ro('ap_functions', (ac) => `${hex8(ac.hwinfo.fac)}\n`),
  {
    name: 'request_count',
    mode: 0o644,
    *show(_k, d) {
      return `${card(d).total_request_count}\n`;
    },
    // Any write clears the counters of the card and all its queues.
    *store(_k, d, buf) {
      const ac = card(d);
      for (const q of busOf(d).queues.values()) if (q.card === ac) q.sm.total_request_count = 0;
      ac.total_request_count = 0;
      return buf.length;
    },
  },
  ro('requestq_count', (ac) => {
    let n = 0;
    for (const q of busOf(ac).queues.values()) if (q.card === ac) n += q.sm.requestq_count;
    return `${n}\n`;
  }),
  ro('pendingq_count', (ac) => {
    let n = 0;
    for (const q of busOf(ac).queues.values()) if (q.card === ac) n += q.sm.pendingq_count;
    return `${n}\n`;
  }),
  ro('modalias', (ac) => `ap:t${ac.device_type.toString(16).toUpperCase().padStart(2, '0')}\n`),
  {
    name: 'config',
    mode: 0o644,
    *show(_k, d) {
      return `${card(d).config ? 1 : 0}\n`;
    },
    // sscanf("%d\n"), 0 or 1, then SCLP (de)configure and a CONFIG= uevent.
    *store(_k, d, buf) {
      const ac = card(d);
      const cfg = sscanf_int(buf);
      if (cfg === null || cfg < 0 || cfg > 1) return -E.EINVAL!;
      const m = busOf(d).machine;
      if ((cfg === 1 && !ac.config) || (cfg === 0 && ac.config)) m.sclpConfigureAp(ac.id, cfg === 1);
      ac.config = cfg === 1;
      device_uevent(ac, 'change', [`CONFIG=${cfg}`]);
      return buf.length;
    },
  },
  ro('chkstop', (ac) => `${ac.chkstop ? 1 : 0}\n`),
  ro('max_msg_size', (ac) => `${ac.maxmsgsize}\n`),
];

export const apCardGroups: readonly AttributeGroup<Device>[] = [{ attrs: apCardAttrs }];
