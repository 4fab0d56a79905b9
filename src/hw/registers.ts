// Register- and storage-level encodings of the AP instructions' operands (spec 1.4, 2.1, 2.5, 2.7).
// 64-bit registers are bigint; bit numbers are s390's (0 = MSB). These are the formats a KVM/QEMU
// model needs when it intercepts a guest's PQAP; the machine itself works on decoded values.

import { copyMask, type ApMask, MASK_BYTES } from './mask.js';

const u64 = (v: bigint) => BigInt.asUintN(64, v);
/** Field of width w ending at s390 bit `last` of a 64-bit register. */
const field = (reg: bigint, last: number, w: number) => Number((u64(reg) >> BigInt(63 - last)) & ((1n << BigInt(w)) - 1n));
const put = (v: number, last: number, w: number) => (BigInt(v) & ((1n << BigInt(w)) - 1n)) << BigInt(63 - last);

// ---- PQAP function codes and GR0 ------------------------------------------------------------

export const PQAP_FC = Object.freeze({ TAPQ: 0, RAPQ: 1, ZAPQ: 2, AQIC: 3, QCI: 4, QACT: 5, BAPQ: 7, AAPQ: 8 });

export interface PqapGr0 {
  /** Function code, GR0 bits 32-39. */
  fc: number;
  /** TAPQ T bit (bit 40): request facility bits; needs APFT. */
  t: boolean;
  /** RAPQ/ZAPQ F bit (bit 41). */
  f: boolean;
  /** Bits 41-47 as a 7-bit number (must be 0 for AQIC). */
  bits41to47: number;
  /** Bits 48-63. */
  apqn: number;
}

export function decodePqapGr0(gr0: bigint): PqapGr0 {
  return {
    fc: field(gr0, 39, 8),
    t: field(gr0, 40, 1) === 1,
    f: field(gr0, 41, 1) === 1,
    bits41to47: field(gr0, 47, 7),
    apqn: field(gr0, 63, 16),
  };
}

export function encodePqapGr0(v: { fc: number; apqn?: number; t?: boolean; f?: boolean }): bigint {
  return put(v.fc, 39, 8) | put(v.t ? 1 : 0, 40, 1) | put(v.f ? 1 : 0, 41, 1) | put(v.apqn ?? 0, 63, 16);
}

/**
 * The GR0 bits that must be zero without APXA (APID ≥ 64 or APQI ≥ 16): mask 0xC0F0 on the low
 * 16 bits, exactly what Linux/KVM test (spec 1.2).
 */
export const NON_APXA_APQN_MASK = 0xc0f0;

/** NQAP/DQAP GR0 flag bits (architectural names uncertain, spec 2.1; treated as opaque). */
export const NQAP_LAST_PART = 0x40000000n;
export const NQAP_SPECIAL = 0x00400000n;
export const DQAP_FLAG = 0x80000000n;

// ---- TAPQ GR2 hardware info (spec 2.5) --------------------------------------------------------

/** Facility-word bits as in `ap_functions`. */
export const AP_FUNC = Object.freeze({
  APSC: 0x80000000,
  MEX4K: 0x40000000,
  CRT4K: 0x20000000,
  COPRO: 0x10000000,
  ACCEL: 0x08000000,
  EP11: 0x04000000,
  APXA: 0x02000000,
  SLCF: 0x01000000,
});

export interface TapqHwinfo {
  /** Upper word (bits 0-31): facility bits incl. class and bs; 0 unless TAPQ was issued with T=1. */
  facilities: number;
  apsc: boolean;
  mex4k: boolean;
  crt4k: boolean;
  cca: boolean;
  accel: boolean;
  ep11: boolean;
  apxa: boolean;
  slcf: boolean;
  /** Bits 8-15. */
  class: number;
  /** SE bind state, bits 16-17 (0 usable). */
  bs: number;
  /** Raw AP type, bits 32-39. */
  at: number;
  /** Number of domains, bits 40-47. */
  nd: number;
  /** Max message length in 4 KiB units, bits 52-55 (0 = default 12 KiB). */
  ml: number;
  /** Queue depth field, bits 60-63; the queue has qd + 1 slots. */
  qd: number;
}

export function decodeHwinfo(gr2: bigint): TapqHwinfo {
  const fac = field(gr2, 31, 32);
  return {
    facilities: fac,
    apsc: (fac & AP_FUNC.APSC) !== 0,
    mex4k: (fac & AP_FUNC.MEX4K) !== 0,
    crt4k: (fac & AP_FUNC.CRT4K) !== 0,
    cca: (fac & AP_FUNC.COPRO) !== 0,
    accel: (fac & AP_FUNC.ACCEL) !== 0,
    ep11: (fac & AP_FUNC.EP11) !== 0,
    apxa: (fac & AP_FUNC.APXA) !== 0,
    slcf: (fac & AP_FUNC.SLCF) !== 0,
    class: field(gr2, 15, 8),
    bs: field(gr2, 17, 2),
    at: field(gr2, 39, 8),
    nd: field(gr2, 47, 8),
    ml: field(gr2, 55, 4),
    qd: field(gr2, 63, 4),
  };
}

/** Builds GR2 from the facility word (which already contains class/bs) and the lower-word fields. */
export function encodeHwinfo(v: { facilities: number; at: number; nd: number; ml: number; qd: number }): bigint {
  return put(v.facilities >>> 0, 31, 32) | put(v.at, 39, 8) | put(v.nd, 47, 8) | put(v.ml, 55, 4) | put(v.qd, 63, 4);
}

// ---- AQIC GR1 control word (spec 2.7) ---------------------------------------------------------

export interface AqicControl {
  /** IR: true = enable interruptions, false = disable. */
  ir: boolean;
  /** Interruption subclass 0..7 (bits 61-63). */
  isc: number;
  /** Guest ISC (bits 21-23), used when the queue is passed through with a GISA. */
  gisc?: number;
  /** GISA format (bits 30-31). */
  gf?: number;
  /** GISA address (bits 33-59 hold address >> 4); 0 / absent = host (no GISA). */
  gisa?: number;
  /** Zone (bits 8-15). */
  zone?: number;
}

export function decodeAqicGr1(gr1: bigint): AqicControl {
  return {
    zone: field(gr1, 15, 8),
    ir: field(gr1, 16, 1) === 1,
    gisc: field(gr1, 23, 3),
    gf: field(gr1, 31, 2),
    gisa: field(gr1, 59, 27) * 16,
    isc: field(gr1, 63, 3),
  };
}

export function encodeAqicGr1(c: AqicControl): bigint {
  return (
    put(c.zone ?? 0, 15, 8) |
    put(c.ir ? 1 : 0, 16, 1) |
    put(c.gisc ?? 0, 23, 3) |
    put(c.gf ?? 0, 31, 2) |
    put(Math.floor((c.gisa ?? 0) / 16), 59, 27) |
    put(c.isc, 63, 3)
  );
}

// ---- QCI block (spec 1.4) ---------------------------------------------------------------------

export const QCI_BLOCK_SIZE = 128;

export interface QciInfo {
  apsc: boolean;
  apxa: boolean;
  qact: boolean;
  rc8a: boolean;
  apsb: boolean;
  /** Na: highest usable APID. */
  na: number;
  /** Nd: highest usable domain. */
  nd: number;
  apm: ApMask;
  aqm: ApMask;
  adm: ApMask;
}

/** QCI flag names in /sys/bus/ap/features order. */
export const QCI_FEATURE_NAMES = ['APSC', 'APXA', 'QACT', 'RC8A', 'APSB'] as const;

export function qciFeatures(q: QciInfo): string[] {
  const flags = [q.apsc, q.apxa, q.qact, q.rc8a, q.apsb];
  return QCI_FEATURE_NAMES.filter((_, i) => flags[i]);
}

export function encodeQciBlock(q: QciInfo): Uint8Array {
  const b = new Uint8Array(QCI_BLOCK_SIZE);
  b[0] = (q.apsc ? 0x80 : 0) | (q.apxa ? 0x40 : 0) | (q.qact ? 0x20 : 0) | (q.rc8a ? 0x10 : 0);
  b[1] = q.apsb ? 0x80 : 0;
  b[4] = q.na;
  b[5] = q.nd;
  b.set(q.apm, 16);
  b.set(q.aqm, 48);
  b.set(q.adm, 80);
  return b;
}

export function decodeQciBlock(b: Uint8Array): QciInfo {
  if (b.length !== QCI_BLOCK_SIZE) throw new RangeError(`QCI block must be ${QCI_BLOCK_SIZE} bytes, got ${b.length}`);
  return {
    apsc: (b[0]! & 0x80) !== 0,
    apxa: (b[0]! & 0x40) !== 0,
    qact: (b[0]! & 0x20) !== 0,
    rc8a: (b[0]! & 0x10) !== 0,
    apsb: (b[1]! & 0x80) !== 0,
    na: b[4]!,
    nd: b[5]!,
    apm: copyMask(b.subarray(16, 16 + MASK_BYTES)),
    aqm: copyMask(b.subarray(48, 48 + MASK_BYTES)),
    adm: copyMask(b.subarray(80, 80 + MASK_BYTES)),
  };
}

export function qciBlocksEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
