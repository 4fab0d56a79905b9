// Per-APQN state of the simulated crypto adapter. Created lazily by the machine the first time an
// instruction changes something, so a 256x256 configuration costs nothing until queues are used.
// Time-dependent facts (reset done, reply ready) are stored as virtual-time deadlines and evaluated
// when looked at; nothing here runs on its own.

import type { Apqn } from './apqn.js';

/** One request accepted by NQAP, kept until DQAP has removed all of its reply. */
export interface QueuedRequest {
  readonly psmid: bigint;
  /** Full reply message (computed at NQAP time by the machine's responder). */
  readonly reply: Uint8Array;
  /** Virtual time at which the reply becomes dequeueable. */
  readonly readyAt: number;
  /** Enqueue order, the tie-breaker for replies ready at the same instant. */
  readonly seq: number;
  /** Bytes of the reply already handed out by partial DQAPs. */
  offset: number;
  /** The adapter interruption for this reply has been delivered. */
  notified: boolean;
}

export interface QueueIrq {
  isc: number;
  /** Notification-indicator-byte address. */
  nib: number;
  /** GISA address and guest ISC when the interruption is forwarded to a guest (0 = host). */
  gisa: number;
  gisc: number;
  /** When interruptions were enabled; replies ready earlier interrupt at this time. */
  enabledAt: number;
}

export interface PartialMessage {
  psmid: bigint;
  special: boolean;
  parts: Uint8Array[];
  length: number;
}

export interface InjectedFault {
  rc: number;
  remaining: number;
  instructions: ReadonlySet<string> | null;
}

export class QueueState {
  /** End of the running reset (virtual ns), or null when no reset is running. */
  resetEnd: number | null = null;
  irq: QueueIrq | null = null;
  requests: QueuedRequest[] = [];
  partial: PartialMessage | null = null;
  faults: InjectedFault[] = [];

  constructor(readonly apqn: Apqn) {}

  /** Replies that are ready at `now`, i.e. what sets the R bit. */
  hasReadyReply(now: number): boolean {
    for (const r of this.requests) if (r.readyAt <= now) return true;
    return false;
  }

  /** The reply DQAP hands out next: one already partially received, else the earliest ready. */
  nextReply(now: number): QueuedRequest | undefined {
    let best: QueuedRequest | undefined;
    for (const r of this.requests) {
      if (r.readyAt > now) continue;
      if (r.offset > 0) return r;
      if (!best || r.readyAt < best.readyAt || (r.readyAt === best.readyAt && r.seq < best.seq)) best = r;
    }
    return best;
  }

  /** Drops all work (reset, card lost its state). Keeps injected faults. */
  discardWork(): void {
    this.requests = [];
    this.partial = null;
  }

  /** Nothing pending that the machine has to track in time. */
  isQuiet(): boolean {
    return this.requests.length === 0 && this.resetEnd === null;
  }
}
