// The host-side AP queue state machine (drivers/s390/crypto/ap_queue.c: ap_sm_*),
// which drives queues owned by the default (zcrypt) drivers: reset, interrupt
// enablement, sending requests (NQAP) and receiving replies (DQAP) against the
// machine. It runs in atomic context in the kernel (under the queue spinlock, from
// the poll tasklet/hrtimer), so here it is plain synchronous code with no scheduling
// points; the owner turns the returned wait hints into timers.
import type { Machine } from '../hw/machine.js';
import { type Apqn, formatApqn } from '../hw/apqn.js';
import { AP_RESPONSE, type ApQueueStatus } from '../hw/status.js';
import { E } from '../kernel/errno.js';

export const enum ApDevState {
  UNINITIATED = 0,
  OPERATING = 1,
  SHUTDOWN = 2,
  ERROR = 3,
}

export const enum ApSmState {
  RESET_START = 0,
  RESET_WAIT,
  SETIRQ_WAIT,
  IDLE,
  WORKING,
  QUEUE_FULL,
}

/** What the queue wants next; ordered by urgency (min() of two is the more urgent). */
export const enum ApSmWait {
  AGAIN = 0,
  INTERRUPT = 1,
  HIGH_TIMEOUT = 2,
  LOW_TIMEOUT = 3,
  NONE = 4,
}

export const enum ApSmEvent {
  POLL = 0,
  TIMEOUT = 1,
}

export const SM_STATE_NAMES = ['RESET_START', 'RESET_WAIT', 'SETIRQ_WAIT', 'IDLE', 'WORKING', 'QUEUE_FULL'] as const;
export const DEV_STATE_NAMES = ['UNINITIATED', 'OPERATING', 'SHUTDOWN', 'ERROR'] as const;

/** A request (struct ap_message). `rc` and `reply` are set when it completes. */
export interface ApMessage {
  readonly psmid: bigint;
  readonly msg: Uint8Array;
  readonly special: boolean;
  /** Completion: 0 with a reply, or a negative errno (-EINVAL, -EAGAIN, -EMSGSIZE, -ENODEV). */
  rc?: number;
  reply?: Uint8Array;
  done?: boolean;
}

/** Hooks the queue needs from its environment (the AP bus / zcrypt). */
export interface ApQueueEnv {
  readonly machine: Machine;
  /** Adapter interrupts available (ap_irq_flag): the queue tries AQIC after a reset. */
  readonly useIrq: boolean;
  /** Host ISC and NIB used for AQIC (ap_airq_ptr). */
  readonly isc: number;
  readonly nib: number;
  /** Arms or re-arms the per-queue request timeout (mod_timer); Infinity disarms. */
  armTimeout(aq: ApQueueSM, expires: number): void;
  /** Debug log (s390dbf); not shown in dmesg. */
  dbf?(text: string): void;
}

/** struct ap_queue's state-machine half. */
export class ApQueueSM {
  dev_state = ApDevState.UNINITIATED;
  sm_state = ApSmState.RESET_START;
  /** Requests in flight on the adapter. */
  queue_count = 0;
  readonly requestq: ApMessage[] = [];
  readonly pendingq: ApMessage[] = [];
  total_request_count = 0;
  /** TAPQ said interrupts are on. */
  interrupt = false;
  last_err_rc = 0;
  /** Card configured / checkstopped as last seen by a scan. */
  config = true;
  chkstop = false;
  /** Slots on the adapter: TAPQ qd + 1 (6.19 semantics). */
  readonly depth: number;
  /** 900 s for CEX4+ (zcrypt sets it at probe). */
  request_timeout = 900_000_000_000;

  constructor(
    readonly qid: Apqn,
    depth: number,
    private readonly env: ApQueueEnv,
  ) {
    this.depth = depth;
  }

  get requestq_count(): number {
    return this.requestq.length;
  }
  get pendingq_count(): number {
    return this.pendingq.length;
  }

  get name(): string {
    return formatApqn(this.qid);
  }

  // ------------------------------------------------------------------ actions

  private ap_sm_recv(): ApQueueStatus {
    const m = this.env.machine;
    let r = m.dqap(this.qid);
    let parts = 1;
    // A reply bigger than the buffer arrives in parts; the kernel keeps reading and
    // then reports -EMSGSIZE to the requester.
    while (r.cc === 1 && r.residual > 0) {
      r = m.dqap(this.qid);
      parts++;
    }
    const st = r.status;
    switch (st.responseCode) {
      case AP_RESPONSE.NORMAL: {
        this.queue_count = Math.max(0, this.queue_count - 1);
        if (!st.queueEmpty && this.queue_count === 0) this.queue_count++;
        if (this.queue_count > 0) this.env.armTimeout(this, m.now() + this.request_timeout);
        const i = this.pendingq.findIndex((x) => x.psmid === r.psmid);
        if (i >= 0) {
          const msg = this.pendingq.splice(i, 1)[0]!;
          if (parts > 1) this.complete(msg, -E.EMSGSIZE!);
          else this.complete(msg, 0, r.data);
        } else {
          this.env.dbf?.(`ap_sm_recv unassociated reply psmid=0x${(r.psmid ?? 0n).toString(16).padStart(16, '0')} on ${this.name}`);
        }
        if (!st.queueEmpty || this.queue_count <= 0) break;
        this.rescheduleForgotten();
        break;
      }
      case AP_RESPONSE.NO_PENDING_REPLY:
        if (!st.queueEmpty || this.queue_count <= 0) break;
        // The card shouldn't forget requests but who knows: send them again.
        this.rescheduleForgotten();
        break;
      default:
        break;
    }
    return st;
  }

  private rescheduleForgotten(): void {
    this.queue_count = 0;
    this.requestq.unshift(...this.pendingq.splice(0));
    this.env.dbf?.(`queue ${this.name} rescheduled ${this.requestq.length} reqs`);
  }

  private complete(msg: ApMessage, rc: number, reply?: Uint8Array): void {
    msg.rc = rc;
    if (reply) msg.reply = reply;
    msg.done = true;
  }

  private ap_sm_read(): ApSmWait {
    const st = this.ap_sm_recv();
    switch (st.responseCode) {
      case AP_RESPONSE.NORMAL:
        if (this.queue_count > 0) {
          this.sm_state = ApSmState.WORKING;
          return ApSmWait.AGAIN;
        }
        this.sm_state = ApSmState.IDLE;
        break;
      case AP_RESPONSE.NO_PENDING_REPLY:
        if (this.queue_count > 0) return this.interrupt ? ApSmWait.INTERRUPT : ApSmWait.HIGH_TIMEOUT;
        this.sm_state = ApSmState.IDLE;
        break;
      default:
        this.error(st.responseCode);
        return ApSmWait.NONE;
    }
    // Check and maybe enable irq support (again) on this queue.
    if (!st.irqEnabled && st.queueEmpty && this.enableIrq()) {
      this.sm_state = ApSmState.SETIRQ_WAIT;
      return ApSmWait.AGAIN;
    }
    return ApSmWait.NONE;
  }

  private ap_sm_write(): ApSmWait {
    if (this.requestq.length === 0) return ApSmWait.NONE;
    const msg = this.requestq[0]!;
    const r = this.env.machine.nqap(this.qid, msg.psmid, msg.msg, { special: msg.special });
    switch (r.status.responseCode) {
      case AP_RESPONSE.NORMAL:
        this.queue_count = Math.max(1, this.queue_count + 1);
        if (this.queue_count === 1) this.env.armTimeout(this, this.env.machine.now() + this.request_timeout);
        this.pendingq.push(this.requestq.shift()!);
        if (this.queue_count < this.depth) {
          this.sm_state = ApSmState.WORKING;
          return ApSmWait.AGAIN;
        }
        // The adapter is now full: same as Q_FULL.
        this.sm_state = ApSmState.QUEUE_FULL;
        return this.interrupt ? ApSmWait.INTERRUPT : ApSmWait.HIGH_TIMEOUT;
      case AP_RESPONSE.Q_FULL:
        this.sm_state = ApSmState.QUEUE_FULL;
        return this.interrupt ? ApSmWait.INTERRUPT : ApSmWait.HIGH_TIMEOUT;
      case AP_RESPONSE.RESET_IN_PROGRESS:
        this.sm_state = ApSmState.RESET_WAIT;
        return ApSmWait.LOW_TIMEOUT;
      case AP_RESPONSE.INVALID_DOMAIN:
      case AP_RESPONSE.MESSAGE_TOO_BIG:
      case AP_RESPONSE.REQ_FAC_NOT_INST:
        this.complete(this.requestq.shift()!, -E.EINVAL!);
        return ApSmWait.AGAIN;
      default:
        this.error(r.status.responseCode);
        return ApSmWait.NONE;
    }
  }

  private ap_sm_read_write(): ApSmWait {
    return Math.min(this.ap_sm_read(), this.ap_sm_write()) as ApSmWait;
  }

  private ap_sm_reset(): ApSmWait {
    const r = this.env.machine.rapq(this.qid);
    switch (r.status.responseCode) {
      case AP_RESPONSE.NORMAL:
      case AP_RESPONSE.RESET_IN_PROGRESS:
        this.sm_state = ApSmState.RESET_WAIT;
        this.interrupt = false;
        return ApSmWait.LOW_TIMEOUT;
      default:
        this.error(r.status.responseCode);
        return ApSmWait.NONE;
    }
  }

  private ap_sm_reset_wait(): ApSmWait {
    const st = this.queue_count > 0 ? this.ap_sm_recv() : this.env.machine.tapq(this.qid).status;
    switch (st.responseCode) {
      case AP_RESPONSE.NORMAL:
        if (this.enableIrq()) this.sm_state = ApSmState.SETIRQ_WAIT;
        else this.sm_state = this.queue_count > 0 ? ApSmState.WORKING : ApSmState.IDLE;
        return ApSmWait.AGAIN;
      case AP_RESPONSE.BUSY:
      case AP_RESPONSE.RESET_IN_PROGRESS:
        return ApSmWait.LOW_TIMEOUT;
      default:
        this.error(st.responseCode);
        return ApSmWait.NONE;
    }
  }

  private ap_sm_setirq_wait(): ApSmWait {
    const st = this.queue_count > 0 ? this.ap_sm_recv() : this.env.machine.tapq(this.qid).status;
    if (st.irqEnabled) {
      this.interrupt = true;
      this.sm_state = this.queue_count > 0 ? ApSmState.WORKING : ApSmState.IDLE;
    }
    switch (st.responseCode) {
      case AP_RESPONSE.NORMAL:
        if (this.queue_count > 0) return ApSmWait.AGAIN;
        return ApSmWait.LOW_TIMEOUT;
      case AP_RESPONSE.NO_PENDING_REPLY:
        return ApSmWait.LOW_TIMEOUT;
      default:
        this.error(st.responseCode);
        return ApSmWait.NONE;
    }
  }

  /** ap_queue_enable_irq(): AQIC with the host ISC; true when the machine accepted it. */
  private enableIrq(): boolean {
    if (!this.env.useIrq) return false;
    const r = this.env.machine.aqic(this.qid, { ir: true, isc: this.env.isc }, this.env.nib);
    switch (r.status.responseCode) {
      case AP_RESPONSE.NORMAL:
      case AP_RESPONSE.OTHERWISE_CHANGED:
        return true;
      default:
        return false;
    }
  }

  private error(rc: number): void {
    this.dev_state = ApDevState.ERROR;
    this.last_err_rc = rc;
    this.env.dbf?.(`queue ${this.name} error rc=0x${rc.toString(16).padStart(2, '0')} -> dev_state ERROR`);
  }

  // ------------------------------------------------------------------ entry points

  /** ap_sm_event(): one step; events are ignored unless the queue is usable. */
  ap_sm_event(ev: ApSmEvent): ApSmWait {
    if (!this.config || this.chkstop || this.dev_state <= ApDevState.UNINITIATED) return ApSmWait.NONE;
    if (ev === ApSmEvent.TIMEOUT) {
      if (this.sm_state === ApSmState.WORKING || this.sm_state === ApSmState.QUEUE_FULL) return this.ap_sm_reset();
      return ApSmWait.NONE;
    }
    switch (this.sm_state) {
      case ApSmState.RESET_START:
        return this.ap_sm_reset();
      case ApSmState.RESET_WAIT:
        return this.ap_sm_reset_wait();
      case ApSmState.SETIRQ_WAIT:
        return this.ap_sm_setirq_wait();
      case ApSmState.IDLE:
        return this.ap_sm_write();
      case ApSmState.WORKING:
        return this.ap_sm_read_write();
      case ApSmState.QUEUE_FULL:
        return this.ap_sm_read();
      default:
        return ApSmWait.NONE;
    }
  }

  /** ap_sm_event_loop(): steps while the queue asks to go again. */
  ap_sm_event_loop(ev: ApSmEvent): ApSmWait {
    let wait = ApSmWait.AGAIN;
    let guard = 0;
    while (wait === ApSmWait.AGAIN) {
      wait = this.ap_sm_event(ev);
      if (++guard > 10_000) throw new Error(`ap_sm_event_loop: queue ${this.name} does not settle`);
    }
    return wait;
  }

  /** ap_queue_init_state(): a queue taken over by a default driver starts with a reset. */
  ap_queue_init_state(): ApSmWait {
    this.dev_state = ApDevState.OPERATING;
    this.sm_state = ApSmState.RESET_START;
    this.last_err_rc = 0;
    return this.ap_sm_event(ApSmEvent.POLL);
  }

  /** ap_queue_message(): a new request; sent at once if the queue can take it. */
  ap_queue_message(msg: ApMessage): ApSmWait {
    if (this.dev_state !== ApDevState.OPERATING) {
      this.complete(msg, -E.ENODEV!);
      return ApSmWait.NONE;
    }
    this.requestq.push(msg);
    this.total_request_count++;
    return this.ap_sm_event_loop(ApSmEvent.POLL);
  }

  /** __ap_flush_queue(): every queued and pending request fails with -EAGAIN. */
  flush(): void {
    for (const m of this.pendingq.splice(0)) this.complete(m, -E.EAGAIN!);
    for (const m of this.requestq.splice(0)) this.complete(m, -E.EAGAIN!);
    this.queue_count = 0;
  }

  /** reset_store: flush and restart the reset state machine. */
  userReset(): ApSmWait {
    this.flush();
    this.sm_state = ApSmState.RESET_START;
    return this.ap_sm_event(ApSmEvent.POLL);
  }

  /** ap_queue_prepare_remove(): flush, SHUTDOWN, stop the request timer. */
  ap_queue_prepare_remove(): void {
    this.flush();
    this.dev_state = ApDevState.SHUTDOWN;
    this.env.armTimeout(this, Infinity);
  }

  /** ap_queue_remove(): ZAPQ (also clears the interrupt registration), UNINITIATED. */
  ap_queue_remove(): void {
    this.env.machine.zapq(this.qid);
    this.dev_state = ApDevState.UNINITIATED;
    this.sm_state = ApSmState.RESET_START;
    this.interrupt = false;
  }

  /** Both halves of removal, for callers without a driver in between. */
  shutdownAndZap(): void {
    this.ap_queue_prepare_remove();
    this.ap_queue_remove();
  }

  /** A scan saw the card deconfigured (RC 03) or checkstopped (RC 04): error and flush. */
  markUnusable(rc: number): void {
    this.dev_state = ApDevState.ERROR;
    this.last_err_rc = rc;
    this.flush();
  }

  /** reset attribute text. */
  resetText(): string {
    switch (this.sm_state) {
      case ApSmState.RESET_START:
      case ApSmState.RESET_WAIT:
        return 'Reset in progress.\n';
      case ApSmState.WORKING:
      case ApSmState.QUEUE_FULL:
        return 'Reset Timer armed.\n';
      default:
        return 'No Reset Timer set.\n';
    }
  }

  /** states attribute text (CONFIG_ZCRYPT_DEBUG). */
  statesText(): string {
    return `${DEV_STATE_NAMES[this.dev_state]} [${SM_STATE_NAMES[this.sm_state]}]\n`;
  }
}
