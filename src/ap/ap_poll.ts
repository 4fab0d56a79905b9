// AP bus polling (ap_wait, the poll tasklet and hrtimer, per-queue request
// timeouts). The kernel polls every queue from a tasklet after an adapter
// interrupt or when the poll hrtimer fires; only queues whose state machine asked
// for another look can do anything on a poll, so this keeps that set instead of
// walking all 65,536 queues of a big host.
import type { Timer } from '../kernel/index.js';
import { ApSmEvent, ApSmWait, type ApQueueEnv, type ApQueueSM } from './ap_queue_sm.js';
import type { ApBus } from './ap_bus.js';
import type { ApQueue } from './ap_device.js';

/** The host's adapter-interruption subclass (asm/isc.h AP_ISC). */
export const AP_ISC = 6;
/** AP_POLL_LOW_TIMEOUT: 40 ms. */
export const AP_POLL_LOW_TIMEOUT = 40_000_000;
/** Where the host's AP interrupt indicator lives (any non-zero address will do). */
const HOST_NIB = 0x1000;

export class ApPoller {
  readonly env: ApQueueEnv;
  private readonly active = new Set<ApQueueSM>();
  private readonly timeouts = new Map<ApQueueSM, Timer>();
  private pollTimer: Timer | null = null;

  constructor(private readonly b: ApBus) {
    this.env = {
      machine: b.machine,
      get useIrq() {
        return b.ap_irq_flag;
      },
      isc: AP_ISC,
      nib: HOST_NIB,
      armTimeout: (sm, expires) => this.armTimeout(sm, expires),
      dbf: (t) => b.dbf(t),
    };
  }

  /** ap_wait(): turn a state machine's wish into a poll. */
  wait(q: ApQueue | ApQueueSM, w: ApSmWait): void {
    const sm = 'sm' in q ? q.sm : q;
    if (w === ApSmWait.NONE) {
      if (sm.requestq_count === 0 && sm.queue_count === 0) this.active.delete(sm);
      return;
    }
    this.active.add(sm);
    const now = this.b.k.now();
    switch (w) {
      case ApSmWait.AGAIN:
        this.arm(now);
        return;
      case ApSmWait.INTERRUPT:
        if (this.b.ap_irq_flag) return; // the adapter interrupt triggers the poll
        this.arm(now + this.b.poll_high_timeout);
        return;
      case ApSmWait.HIGH_TIMEOUT:
        this.arm(now + this.b.poll_high_timeout);
        return;
      case ApSmWait.LOW_TIMEOUT:
        this.arm(now + AP_POLL_LOW_TIMEOUT);
        return;
    }
  }

  /** Like hrtimer_start unless already queued: an earlier wish wins. */
  private arm(expires: number): void {
    const k = this.b.k;
    if (this.pollTimer && this.pollTimer.active) {
      if (this.pollTimer.expires > expires) k.mod_timer(this.pollTimer, expires);
      return;
    }
    if (this.pollTimer) k.mod_timer(this.pollTimer, expires);
    else this.pollTimer = k.add_timer(expires, () => this.ap_tasklet_fn(), 'ap_poll_timer');
  }

  /** The adapter interrupt handler schedules the poll tasklet. */
  ap_interrupt_handler(): void {
    this.arm(this.b.k.now());
  }

  /** ap_tasklet_fn(): poll every queue that wants it; the most urgent wait wins. */
  ap_tasklet_fn(): void {
    let wait = ApSmWait.NONE as ApSmWait;
    for (const sm of [...this.active]) {
      const w = sm.ap_sm_event_loop(ApSmEvent.POLL);
      if (w === ApSmWait.NONE && sm.requestq_count === 0 && sm.queue_count === 0) this.active.delete(sm);
      if (w < wait) wait = w;
    }
    if (wait !== ApSmWait.NONE) {
      const now = this.b.k.now();
      if (wait === ApSmWait.LOW_TIMEOUT) this.arm(now + AP_POLL_LOW_TIMEOUT);
      else if (wait !== ApSmWait.INTERRUPT || !this.b.ap_irq_flag) this.arm(now + this.b.poll_high_timeout);
    }
  }

  /** Per-queue request timeout (aq->timeout): on expiry, a TIMEOUT event. */
  private armTimeout(sm: ApQueueSM, expires: number): void {
    const k = this.b.k;
    const t = this.timeouts.get(sm);
    if (expires === Infinity) {
      if (t) k.del_timer(t);
      return;
    }
    if (t) k.mod_timer(t, expires);
    else
      this.timeouts.set(
        sm,
        k.add_timer(expires, () => this.wait(sm, sm.ap_sm_event(ApSmEvent.TIMEOUT)), `ap_request_timeout ${sm.name}`),
      );
  }

  /** A removed queue is never polled again. */
  forget(q: ApQueue): void {
    this.active.delete(q.sm);
    const t = this.timeouts.get(q.sm);
    if (t) this.b.k.del_timer(t);
    this.timeouts.delete(q.sm);
  }

  /** Queues currently waiting for a poll (tests, status). */
  get activeCount(): number {
    return this.active.size;
  }
}
