// 256-bit AP masks (QCI APM/AQM/ADM, CRYCB APCB1, apmask/aqmask, vfio_ap ap_config).
// Architecture convention (spec 1.3): MSB-first, bit 0 is the leftmost bit of byte 0, so ID n is
// bit (7 - n % 8) of byte n >> 3. Stored as a Uint8Array(32) so that slices (APCB0 takes the first
// 8 / 2 bytes) and byte-level copies into control blocks are free.

/** A 256-bit AP mask: exactly 32 bytes, MSB-first (ID 0 = 0x80 of byte 0). */
export type ApMask = Uint8Array;

export const MASK_BITS = 256;
export const MASK_BYTES = 32;
/** Number of hex digits of a full mask ("0x" not counted). */
export const MASK_HEX_DIGITS = 64;

export class MaskSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MaskSyntaxError';
  }
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= MASK_BITS) {
    throw new RangeError(`AP mask id out of range 0..255: ${id}`);
  }
}

/** All-zero mask. */
export function newMask(): ApMask {
  return new Uint8Array(MASK_BYTES);
}

/** Mask with all 256 bits set. */
export function fullMask(): ApMask {
  return new Uint8Array(MASK_BYTES).fill(0xff);
}

/** Mask with IDs 0..maxId set (maxId = -1 gives an empty mask). */
export function maskUpTo(maxId: number): ApMask {
  const m = newMask();
  for (let id = 0; id <= maxId; id++) setBit(m, id);
  return m;
}

export function maskFromIds(ids: Iterable<number>): ApMask {
  const m = newMask();
  for (const id of ids) setBit(m, id);
  return m;
}

export function copyMask(m: ApMask): ApMask {
  return new Uint8Array(m);
}

export function testBit(m: ApMask, id: number): boolean {
  checkId(id);
  return (m[id >> 3]! & (0x80 >> (id & 7))) !== 0;
}

export function setBit(m: ApMask, id: number): void {
  checkId(id);
  m[id >> 3] = m[id >> 3]! | (0x80 >> (id & 7));
}

export function clearBit(m: ApMask, id: number): void {
  checkId(id);
  m[id >> 3] = m[id >> 3]! & ~(0x80 >> (id & 7));
}

export function assignBit(m: ApMask, id: number, on: boolean): void {
  if (on) setBit(m, id);
  else clearBit(m, id);
}

/** IDs set in m, ascending. */
export function maskIds(m: ApMask): number[] {
  const out: number[] = [];
  for (let byte = 0; byte < MASK_BYTES; byte++) {
    const v = m[byte]!;
    if (v === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (v & (0x80 >> bit)) out.push(byte * 8 + bit);
  }
  return out;
}

export function maskCount(m: ApMask): number {
  let n = 0;
  for (let i = 0; i < MASK_BYTES; i++) {
    let v = m[i]!;
    while (v) {
      v &= v - 1;
      n++;
    }
  }
  return n;
}

export function maskIsEmpty(m: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if (m[i] !== 0) return false;
  return true;
}

export function maskEquals(a: ApMask, b: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function maskAnd(a: ApMask, b: ApMask): ApMask {
  const r = newMask();
  for (let i = 0; i < MASK_BYTES; i++) r[i] = a[i]! & b[i]!;
  return r;
}

export function maskOr(a: ApMask, b: ApMask): ApMask {
  const r = newMask();
  for (let i = 0; i < MASK_BYTES; i++) r[i] = a[i]! | b[i]!;
  return r;
}

/** a AND NOT b (e.g. "newly set" = new AND NOT old). */
export function maskAndNot(a: ApMask, b: ApMask): ApMask {
  const r = newMask();
  for (let i = 0; i < MASK_BYTES; i++) r[i] = a[i]! & ~b[i]! & 0xff;
  return r;
}

/** True iff every bit of a is also set in b. */
export function maskIsSubset(a: ApMask, b: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if ((a[i]! & ~b[i]!) !== 0) return false;
  return true;
}

/** a == (b AND c), without building b AND c (invariant checks run after every execution). */
export function maskEqualsAnd(a: ApMask, b: ApMask, c: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if (a[i] !== (b[i]! & c[i]!)) return false;
  return true;
}

/** a ⊆ (b AND c). */
export function maskIsSubsetOfAnd(a: ApMask, b: ApMask, c: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if ((a[i]! & ~(b[i]! & c[i]!)) !== 0) return false;
  return true;
}

/** a == b cut to its first `bits` ids (ids from `bits` on must be clear in a). */
export function maskEqualsFirstBits(a: ApMask, b: ApMask, bits: number): boolean {
  for (let i = 0; i < MASK_BYTES; i++) {
    const keep = i * 8 + 8 <= bits ? 0xff : i * 8 >= bits ? 0 : (0xff00 >> (bits - i * 8)) & 0xff;
    if (a[i] !== (b[i]! & keep)) return false;
  }
  return true;
}

/** True iff a and b share at least one bit. */
export function maskIntersects(a: ApMask, b: ApMask): boolean {
  for (let i = 0; i < MASK_BYTES; i++) if ((a[i]! & b[i]!) !== 0) return true;
  return false;
}

/** Highest set ID, or -1 for an empty mask. */
export function maskHighestId(m: ApMask): number {
  for (let byte = MASK_BYTES - 1; byte >= 0; byte--) {
    const v = m[byte]!;
    if (v === 0) continue;
    for (let bit = 7; bit >= 0; bit--) if (v & (0x80 >> bit)) return byte * 8 + bit;
  }
  return -1;
}

const HEX = '0123456789abcdef';

/** Kernel sysfs spelling: "0x" + 64 lowercase hex digits (no newline). */
export function formatMask(m: ApMask): string {
  if (m.length !== MASK_BYTES) throw new RangeError(`AP mask must be ${MASK_BYTES} bytes, got ${m.length}`);
  let s = '0x';
  for (let i = 0; i < MASK_BYTES; i++) s += HEX[m[i]! >> 4]! + HEX[m[i]! & 15]!;
  return s;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Strict inverse of formatMask: "0x" (or "0X") + exactly 64 hex digits (either case), optionally
 * followed by one newline (as read back from sysfs). Anything else throws MaskSyntaxError.
 * (The lenient left-aligned/relative syntax accepted by apmask writes is the AP bus's business.)
 */
export function parseMask(text: string): ApMask {
  let s = text;
  if (s.endsWith('\n')) s = s.slice(0, -1);
  if (s.length < 2 || s[0] !== '0' || (s[1] !== 'x' && s[1] !== 'X')) {
    throw new MaskSyntaxError(`AP mask must start with "0x": ${JSON.stringify(text)}`);
  }
  const digits = s.length - 2;
  if (digits !== MASK_HEX_DIGITS) {
    throw new MaskSyntaxError(`AP mask needs exactly ${MASK_HEX_DIGITS} hex digits, got ${digits}: ${JSON.stringify(text)}`);
  }
  const m = newMask();
  for (let i = 0; i < MASK_BYTES; i++) {
    const hi = hexValue(s.charCodeAt(2 + 2 * i));
    const lo = hexValue(s.charCodeAt(3 + 2 * i));
    if (hi < 0 || lo < 0) throw new MaskSyntaxError(`AP mask has a non-hex digit: ${JSON.stringify(text)}`);
    m[i] = (hi << 4) | lo;
  }
  return m;
}

/** Compact decimal form for logs and error messages, e.g. "0-3,5,71". */
export function formatIdList(m: ApMask): string {
  const ids = maskIds(m);
  const parts: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    parts.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
