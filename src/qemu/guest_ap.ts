// The guest kernel's AP bus, as far as the host stack can observe it: periodic scans (every
// config_time, 30 s) and scans forced by an AP configuration-change event (CRW → CHSC SEI with
// rs 5 / cc 3 → ap_bus_cfg_chg), each reading the guest's QCI and TAPQ-ing the configured APQNs
// from vCPU 0. It keeps the cards/queues a Linux guest would create (CEX4+ with a mode bit: a
// guest without APFT gets no facility bits from TAPQ and therefore creates nothing), and the
// requests it has in flight, which are lost when their APQN answers RC 01 (hot unplug).
import type { KGen, Timer } from '../kernel/index.js';
import { AP_RESPONSE, apqn, apqnCard, apqnDomain, decodeHwinfo, maskIds, maskUpTo, type Apqn } from '../hw/index.js';
import { guest_dqap, guest_nqap, guest_qci, guest_tapq, test_kvm_facility, type KvmVcpu } from '../kvm/index.js';
import type { Qemu } from './qemu.js';

/** Minimum AP device type the guest's drivers support (CEX4). */
const AP_DEVICE_TYPE_CEX4 = 10;
/** Default ap.config_time (seconds). */
export const GUEST_AP_CONFIG_TIME_S = 30;

/** A queue device in the guest ("XX.YYYY"). */
export interface GuestApQueue {
  readonly apqn: Apqn;
  readonly type: number;
  /** AP_DEV_STATE_OPERATING or ERROR after an unexpected response code. */
  state: 'operating' | 'error';
  /** last_err_rc */
  last_err_rc: number;
  /** PSMIDs of requests sent and not yet answered. */
  readonly pending: bigint[];
}

export interface GuestApBusOptions {
  /** ap.config_time in seconds (default 30). */
  configTime?: number;
}

/** The guest kernel's AP bus. */
export class GuestApBus {
  /** card ids the guest has devices for, and their queues. */
  readonly cards = new Map<number, number>();
  readonly queues = new Map<Apqn, GuestApQueue>();
  /** Completed scans, and how each was triggered. */
  scans = 0;
  readonly scanLog: Array<'boot' | 'timer' | 'cfg_chg'> = [];
  /** Requests lost because their queue went away (RC 01) or was removed. */
  lost = 0;
  /** Replies received. */
  replies = 0;
  readonly configTimeNs: number;
  private timer: Timer | null = null;
  private scanning = false;
  private rescan = false;
  private nextPsmid = 1n;

  constructor(
    readonly qemu: Qemu,
    opts: GuestApBusOptions = {},
  ) {
    this.configTimeNs = (opts.configTime ?? GUEST_AP_CONFIG_TIME_S) * 1_000_000_000;
  }

  private get vcpu(): KvmVcpu {
    return this.qemu.kvm!.vcpus[0]!;
  }

  /** Device names as the guest's /sys/bus/ap/devices lists them. */
  devices(): string[] {
    const out: string[] = [];
    for (const c of [...this.cards.keys()].sort((a, b) => a - b)) out.push(`card${hex(c, 2)}`);
    for (const q of [...this.queues.keys()].sort((a, b) => a - b)) out.push(`${hex(apqnCard(q), 2)}.${hex(apqnDomain(q), 4)}`);
    return out;
  }

  /** Boot: the first scan, then the periodic timer. */
  start(): void {
    this.schedule('boot', 0);
  }

  stop(): void {
    if (this.timer) this.qemu.k.del_timer(this.timer);
    this.timer = null;
  }

  /** ap_bus_cfg_chg() / ap_bus_force_rescan(): scan now. */
  force_rescan(): void {
    this.schedule('cfg_chg', 0);
  }

  private schedule(why: 'boot' | 'timer' | 'cfg_chg', delay: number): void {
    const k = this.qemu.k;
    if (delay === 0) {
      if (this.scanning) {
        this.rescan = true;
        return;
      }
      this.scanning = true;
      this.qemu.spawnVcpu(0, this.scan(why));
      return;
    }
    if (this.timer) k.del_timer(this.timer);
    this.timer = k.add_timer(k.now() + delay, () => {
      this.timer = null;
      if (this.qemu.running) this.schedule('timer', 0);
    }, 'guest ap_config_timer');
  }

  /** ap_scan_bus() on vCPU 0. */
  private *scan(why: 'boot' | 'timer' | 'cfg_chg'): KGen<void> {
    const k = this.qemu.k;
    yield* k.fn('guest ap_scan_bus', this.scan_body());
    this.scans++;
    this.scanLog.push(why);
    this.scanning = false;
    if (this.rescan && this.qemu.running) {
      this.rescan = false;
      this.schedule('cfg_chg', 0);
    } else if (this.qemu.running) this.schedule('timer', this.configTimeNs);
  }

  private *scan_body(): KGen<void> {
    const kvm = this.qemu.kvm!;
    const vcpu = this.vcpu;
    const apft = test_kvm_facility(kvm, 15);
    let apids: number[];
    let apqis: number[];
    if (test_kvm_facility(kvm, 12)) {
      const r = yield* guest_qci(vcpu);
      if (r.qci === undefined) return;
      apids = maskIds(r.qci.apm).filter((a) => a <= r.qci!.na);
      apqis = maskIds(r.qci.aqm).filter((d) => d <= r.qci!.nd);
    } else {
      apids = maskIds(maskUpTo(63));
      apqis = maskIds(maskUpTo(15));
    }
    const seen = new Map<Apqn, number>();
    for (const a of apids)
      for (const d of apqis) {
        const q = apqn(a, d);
        const r = yield* guest_tapq(vcpu, q, { t: apft });
        if (r.cc === undefined || r.status === undefined) continue;
        const rc = r.status.responseCode;
        if (rc !== AP_RESPONSE.NORMAL && rc !== AP_RESPONSE.RESET_IN_PROGRESS && rc !== AP_RESPONSE.BUSY && rc !== AP_RESPONSE.DECONFIGURED && rc !== AP_RESPONSE.CHECKSTOPPED) continue;
        const hw = decodeHwinfo(r.hwinfo ?? 0n);
        // ap_get_compatible_type(): CEX4+ and at least one mode (CCA, accelerator, EP11).
        if (hw.at < AP_DEVICE_TYPE_CEX4 || !(hw.cca || hw.accel || hw.ep11)) continue;
        seen.set(q, hw.at);
      }
    // Devices that vanished: their pending requests are flushed (-ENODEV to the callers).
    for (const [q, gq] of this.queues)
      if (!seen.has(q)) {
        this.lost += gq.pending.length;
        this.queues.delete(q);
      }
    for (const [q, type] of seen) if (!this.queues.has(q)) this.queues.set(q, { apqn: q, type, state: 'operating', last_err_rc: 0, pending: [] });
    this.cards.clear();
    for (const [q, gq] of this.queues) this.cards.set(apqnCard(q), gq.type);
  }

  /** A guest process sends a request to queue q (NQAP from vCPU 0). Returns the RC. */
  *send(q: Apqn, msg: Uint8Array = new Uint8Array(16)): KGen<number> {
    const gq = this.queues.get(q);
    if (!gq || gq.state !== 'operating') return -1;
    const psmid = this.nextPsmid++;
    const r = yield* guest_nqap(this.vcpu, q, psmid, msg);
    const rc = r.status?.responseCode ?? -1;
    if (rc === AP_RESPONSE.NORMAL) gq.pending.push(psmid);
    else this.queueError(gq, rc);
    return rc;
  }

  /** The guest driver polls queue q (DQAP): replies are consumed; RC 01 puts it into ERROR. */
  *poll(q: Apqn): KGen<number> {
    const gq = this.queues.get(q);
    if (!gq || gq.state !== 'operating') return -1;
    const r = yield* guest_dqap(this.vcpu, q);
    const rc = r.status?.responseCode ?? -1;
    if (rc === AP_RESPONSE.NORMAL && r.psmid !== undefined) {
      const i = gq.pending.indexOf(r.psmid);
      if (i >= 0) gq.pending.splice(i, 1);
      this.replies++;
    } else if (rc !== AP_RESPONSE.NO_PENDING_REPLY && rc !== AP_RESPONSE.NORMAL) this.queueError(gq, rc);
    return rc;
  }

  private queueError(gq: GuestApQueue, rc: number): void {
    gq.state = 'error';
    gq.last_err_rc = rc;
    this.lost += gq.pending.length;
    gq.pending.length = 0;
  }
}

function hex(n: number, w: number): string {
  return n.toString(16).padStart(w, '0');
}
