// sysfs attributes of AP queue devices (drivers/s390/crypto/ap_queue.c).
import { E, Errno, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import type { Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { AP_RESPONSE } from '../hw/status.js';
import { decodeHwinfo } from '../hw/registers.js';
import { ApDevState, ApSmState } from './ap_queue_sm.js';
import type { ApQueue } from './ap_device.js';
import type { ApBus } from './ap_bus.js';

const queue = (d: Device): ApQueue => d as ApQueue;
const busOf = (d: Device): ApBus => (d.bus as unknown as { apbus: ApBus }).apbus;

function ro(name: string, show: (aq: ApQueue) => string): AttrOps<Device> {
  return {
    name,
    mode: 0o444,
    *show(_k: Kernel, d: Device) {
      return show(queue(d));
    },
  };
}

export const apQueueAttrs: AttrOps<Device>[] = [
  {
    name: 'request_count',
    mode: 0o644,
    *show(_k, d) {
      const sm = queue(d).sm;
      return sm.dev_state > ApDevState.UNINITIATED ? `${sm.total_request_count}\n` : '-\n';
    },
    *store(_k, d, buf) {
      queue(d).sm.total_request_count = 0;
      return buf.length;
    },
  },
  ro('requestq_count', (aq) => `${aq.sm.dev_state > ApDevState.UNINITIATED ? aq.sm.requestq_count : 0}\n`),
  ro('pendingq_count', (aq) => `${aq.sm.dev_state > ApDevState.UNINITIATED ? aq.sm.pendingq_count : 0}\n`),
  {
    name: 'reset',
    mode: 0o644,
    *show(_k, d) {
      return queue(d).sm.resetText();
    },
    // Any write: flush everything with -EAGAIN and restart the reset state machine.
    *store(_k, d, buf) {
      const aq = queue(d);
      busOf(d).poller.wait(aq, aq.sm.userReset());
      busOf(d).dbf(`reset_store reset queue=${aq.name} triggered by user`);
      return buf.length;
    },
  },
  ro('interrupt', (aq) => {
    if (aq.sm.sm_state === ApSmState.SETIRQ_WAIT) return 'Enable Interrupt pending.\n';
    return busOf(aq).machine.tapq(aq.qid).status.irqEnabled ? 'Interrupts enabled.\n' : 'Interrupts disabled.\n';
  }),
  ro('config', (aq) => `${aq.sm.config ? 1 : 0}\n`),
  ro('chkstop', (aq) => `${aq.sm.chkstop ? 1 : 0}\n`),
  {
    name: 'ap_functions',
    mode: 0o444,
    *show(_k, d) {
      const aq = queue(d);
      const r = busOf(d).machine.tapq(aq.qid, { t: true });
      if (r.status.responseCode > AP_RESPONSE.BUSY) throw new Errno(E.EIO!);
      const fac = decodeHwinfo(r.hwinfo).facilities >>> 0;
      return `0x${fac.toString(16).toUpperCase().padStart(8, '0')}\n`;
    },
  },
];

export const apQueueGroups: readonly AttributeGroup<Device>[] = [{ attrs: apQueueAttrs }];
