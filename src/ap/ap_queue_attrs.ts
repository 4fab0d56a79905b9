// sysfs attributes of AP queue devices (drivers/s390/crypto/ap_queue.c).
import { E, Errno, READS, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import type { Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import { driver_set_override } from '../base/core.js';
import { maskCount } from '../hw/mask.js';
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

/**
 * driver_override (Linux 6.19+): only the named driver may bind the queue. Refused
 * with EINVAL while apmask or aqmask is not all ones, so the two ways of choosing a
 * queue's driver are never mixed.
 */
export const apQueueDriverOverride: AttrOps<Device> = {
  name: 'driver_override',
  mode: 0o644,
  *show(_k, d) {
    return `${d.driver_override ?? ''}\n`;
  },
  *store(k, d, buf) {
    const b = busOf(d);
    yield k.mutex_lock(b.ap_attr_mutex, READS);
    const masksAllOnes = maskCount(b.perms.apm) === 256 && maskCount(b.perms.aqm) === 256;
    yield k.mutex_unlock(b.ap_attr_mutex);
    if (!masksAllOnes) return -E.EINVAL!;
    const had = d.driver_override !== null;
    const rc = yield* driver_set_override(d, buf);
    if (rc) return rc;
    b.ap_driver_override_ctr += (d.driver_override !== null ? 1 : 0) - (had ? 1 : 0);
    return buf.length;
  },
};

export const apQueueGroups: readonly AttributeGroup<Device>[] = [{ attrs: apQueueAttrs }, { attrs: [apQueueDriverOverride] }];
