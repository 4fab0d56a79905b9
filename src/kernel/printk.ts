// The printk ring buffer (what dmesg reads), with virtual timestamps.

export const KERN_EMERG = 0;
export const KERN_ALERT = 1;
export const KERN_CRIT = 2;
export const KERN_ERR = 3;
export const KERN_WARNING = 4;
export const KERN_NOTICE = 5;
export const KERN_INFO = 6;
export const KERN_DEBUG = 7;

export const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'] as const;

export interface PrintkRecord {
  readonly seq: number;
  /** Virtual time in nanoseconds. */
  readonly ts: number;
  readonly level: number;
  /** 0 = kernel; uevents and userspace writers to /dev/kmsg use other facilities. */
  readonly facility: number;
  readonly text: string;
}

export class PrintkRing {
  private readonly buf: PrintkRecord[] = [];
  private head = 0;
  private seq = 0;
  private bytes = 0;
  private readonly listeners = new Set<(r: PrintkRecord) => void>();

  /** capacity in bytes of text, like CONFIG_LOG_BUF_SHIFT (default 2^18). */
  constructor(readonly capacity = 1 << 18) {}

  /** Appends one record per line of text. */
  log(ts: number, level: number, text: string, facility = 0): void {
    for (const line of text.split('\n')) {
      const r: PrintkRecord = Object.freeze({ seq: this.seq++, ts, level, facility, text: line });
      this.buf.push(r);
      this.bytes += line.length + 16;
      while (this.bytes > this.capacity && this.head < this.buf.length) {
        this.bytes -= this.buf[this.head]!.text.length + 16;
        this.head++;
      }
      if (this.head > 4096 && this.head * 2 > this.buf.length) {
        this.buf.splice(0, this.head);
        this.head = 0;
      }
      for (const l of this.listeners) l(r);
    }
  }

  /** Records still in the ring, oldest first, optionally from a sequence number on. */
  records(fromSeq = 0): PrintkRecord[] {
    const out: PrintkRecord[] = [];
    for (let i = this.head; i < this.buf.length; i++) if (this.buf[i]!.seq >= fromSeq) out.push(this.buf[i]!);
    return out;
  }

  /** Next sequence number to be assigned. */
  get nextSeq(): number {
    return this.seq;
  }

  subscribe(fn: (r: PrintkRecord) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  clear(): void {
    this.buf.length = 0;
    this.head = 0;
    this.bytes = 0;
  }

  /** `dmesg` output: "[    5.123456] text" per record. */
  dmesg(opts: { raw?: boolean; level?: boolean } = {}): string {
    return this.records()
      .map((r) => formatRecord(r, opts))
      .join('');
  }
}

/** "[%5lu.%06lu] " as the kernel prints timestamps (seconds.microseconds). */
export function formatTimestamp(ns: number): string {
  const us = Math.floor(ns / 1000);
  const sec = Math.floor(us / 1_000_000);
  const frac = us % 1_000_000;
  return `[${String(sec).padStart(5, ' ')}.${String(frac).padStart(6, '0')}]`;
}

export function formatRecord(r: PrintkRecord, opts: { raw?: boolean; level?: boolean } = {}): string {
  if (opts.raw) return `<${r.facility * 8 + r.level}>${formatTimestamp(r.ts)} ${r.text}\n`;
  if (opts.level) return `${(LEVEL_NAMES[r.level] ?? 'info').padEnd(6)}: ${formatTimestamp(r.ts)} ${r.text}\n`;
  return `${formatTimestamp(r.ts)} ${r.text}\n`;
}

/** /dev/kmsg format: "level,seq,ts_usec,flags;text". */
export function formatKmsg(r: PrintkRecord): string {
  return `${r.facility * 8 + r.level},${r.seq},${Math.floor(r.ts / 1000)},-;${r.text}\n`;
}
