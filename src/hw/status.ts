// AP queue status word and response codes (spec 2.2-2.4). Names follow Linux's AP_RESPONSE_*.

export const AP_RESPONSE = Object.freeze({
  NORMAL: 0x00,
  Q_NOT_AVAIL: 0x01,
  RESET_IN_PROGRESS: 0x02,
  DECONFIGURED: 0x03,
  CHECKSTOPPED: 0x04,
  BUSY: 0x05,
  INVALID_ADDRESS: 0x06,
  OTHERWISE_CHANGED: 0x07,
  INVALID_GISA: 0x08,
  Q_BOUND_TO_ANOTHER: 0x09,
  STATE_CHANGE_IN_PROGRESS: 0x0a,
  Q_NOT_BOUND: 0x0b,
  /** NQAP: no free slot. Same code as NO_PENDING_REPLY. */
  Q_FULL: 0x10,
  /** DQAP: no reply ready. Same code as Q_FULL. */
  NO_PENDING_REPLY: 0x10,
  INDEX_TOO_BIG: 0x11,
  NO_FIRST_PART: 0x13,
  MESSAGE_TOO_BIG: 0x15,
  REQ_FAC_NOT_INST: 0x16,
  Q_BIND_ERROR: 0x30,
  Q_NOT_AVAIL_FOR_ASSOC: 0x31,
  Q_NOT_EMPTY: 0x32,
  BIND_LIMIT_EXCEEDED: 0x33,
  INVALID_ASSOC_SECRET: 0x34,
  ASSOC_SECRET_NOT_UNIQUE: 0x35,
  ASSOC_FAILED: 0x36,
  INVALID_DOMAIN: 0x42,
});

export type ApResponseName = keyof typeof AP_RESPONSE;

const NAMES = new Map<number, string>();
for (const [name, rc] of Object.entries(AP_RESPONSE)) if (!NAMES.has(rc)) NAMES.set(rc, name);
NAMES.set(0x10, 'Q_FULL'); // the kernel's debug output uses Q_FULL for both meanings

/** Linux name of a response code ("Q_NOT_AVAIL"), or "0xNN" when unnamed. */
export function responseCodeName(rc: number): string {
  return NAMES.get(rc) ?? `0x${rc.toString(16).padStart(2, '0')}`;
}

/** Decoded AP queue status word (GR1 bits 32..63). */
export interface ApQueueStatus {
  /** E: nothing enqueued and no replies pending. */
  readonly queueEmpty: boolean;
  /** R: at least one reply is ready for DQAP. */
  readonly repliesWaiting: boolean;
  /** F: all queue slots are occupied. */
  readonly queueFull: boolean;
  /** An asynchronous error is pending (responseCode describes it). */
  readonly async: boolean;
  /** I: interrupts are enabled for the queue. */
  readonly irqEnabled: boolean;
  readonly responseCode: number;
}

/** Result of PQAP/NQAP/DQAP: cc 0 iff RC 0, else 3 (spec 2.2); DQAP partial receive gives cc 1. */
export interface ApResult {
  readonly cc: 0 | 1 | 2 | 3;
  readonly status: ApQueueStatus;
}

export function makeStatus(responseCode: number, flags: Partial<Omit<ApQueueStatus, 'responseCode'>> = {}): ApQueueStatus {
  return {
    queueEmpty: flags.queueEmpty ?? false,
    repliesWaiting: flags.repliesWaiting ?? false,
    queueFull: flags.queueFull ?? false,
    async: flags.async ?? false,
    irqEnabled: flags.irqEnabled ?? false,
    responseCode,
  };
}

export function ccFor(rc: number): 0 | 3 {
  return rc === 0 ? 0 : 3;
}

/** 32-bit status word, bit 0 = MSB: E=0, R=1, F=2, async=6, I=7, RC=8..15. */
export function encodeStatusWord(s: ApQueueStatus): number {
  return (
    ((s.queueEmpty ? 1 << 31 : 0) |
      (s.repliesWaiting ? 1 << 30 : 0) |
      (s.queueFull ? 1 << 29 : 0) |
      (s.async ? 1 << 25 : 0) |
      (s.irqEnabled ? 1 << 24 : 0) |
      ((s.responseCode & 0xff) << 16)) >>>
    0
  );
}

export function decodeStatusWord(w: number): ApQueueStatus {
  return {
    queueEmpty: (w & (1 << 31)) !== 0,
    repliesWaiting: (w & (1 << 30)) !== 0,
    queueFull: (w & (1 << 29)) !== 0,
    async: (w & (1 << 25)) !== 0,
    irqEnabled: (w & (1 << 24)) !== 0,
    responseCode: (w >>> 16) & 0xff,
  };
}

/** Compact text for logs: "rc=0x10(Q_FULL) E- R+ F+ I-". */
export function formatStatus(s: ApQueueStatus): string {
  const f = (b: boolean, c: string) => `${c}${b ? '+' : '-'}`;
  return `rc=0x${s.responseCode.toString(16).padStart(2, '0')}(${responseCodeName(s.responseCode)}) ${f(s.queueEmpty, 'E')} ${f(s.repliesWaiting, 'R')} ${f(s.queueFull, 'F')} ${f(s.irqEnabled, 'I')}${s.async ? ' async' : ''}`;
}
