// The write syntax of /sys/bus/ap/apmask and aqmask (drivers/s390/crypto/ap_bus.c:
// ap_parse_mask_str -> modify_bitmap / hex2bitmap). The first character decides:
// '+' or '-' edits the current mask with a comma list of bit numbers and ranges;
// anything else is a left-aligned hex mask replacing it.
import { E, Errno } from '../kernel/errno.js';
import { type ApMask, copyMask, newMask, MASK_BITS } from '../hw/mask.js';

/**
 * simple_strtoul(str, &end, 0): base from the prefix ("0x" + hex digit -> 16,
 * leading "0" -> 8, else 10), digits consumed greedily, no sign, no whitespace.
 * Returns the value and the index after the last digit (== start if none).
 */
export function simple_strtoul(s: string, start: number): { value: number; end: number } {
  let i = start;
  let base = 10;
  if (s[i] === '0') {
    if ((s[i + 1] === 'x' || s[i + 1] === 'X') && isHex(s[i + 2])) {
      base = 16;
      i += 2;
    } else base = 8;
  }
  let value = 0;
  const from = i;
  for (; i < s.length; i++) {
    const d = digitValue(s[i]!);
    if (d < 0 || d >= base) break;
    // The kernel wraps silently on overflow; saturate instead so that a huge number
    // is simply out of range (the C code would go on with a truncated int).
    value = Math.min(value * base + d, Number.MAX_SAFE_INTEGER);
  }
  return { value, end: i === from && base !== 8 ? start : i };
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && digitValue(c) >= 0 && digitValue(c) < 16;
}

function digitValue(c: string): number {
  const x = c.charCodeAt(0);
  if (x >= 48 && x <= 57) return x - 48;
  if (x >= 97 && x <= 102) return x - 87;
  if (x >= 65 && x <= 70) return x - 55;
  return -1;
}

function setBitInv(m: ApMask, id: number, on: boolean): void {
  const b = 0x80 >> (id & 7);
  if (on) m[id >> 3] = m[id >> 3]! | b;
  else m[id >> 3] = m[id >> 3]! & ~b;
}

/** modify_bitmap(): relative "+N", "-N-M", comma/newline separated; EINVAL on junk. */
export function modify_bitmap(str: string, bitmap: ApMask, bits = MASK_BITS): void {
  let i = 0;
  while (i < str.length) {
    const sign = str[i++];
    if (sign !== '+' && sign !== '-') throw new Errno(E.EINVAL, `mask term must start with + or -: ${JSON.stringify(str)}`);
    const a = simple_strtoul(str, i);
    if (a.end === i || a.value >= bits) throw new Errno(E.EINVAL, `bad bit number in ${JSON.stringify(str)}`);
    i = a.end;
    let z = a.value;
    if (str[i] === '-') {
      i++;
      const b = simple_strtoul(str, i);
      if (b.end === i || a.value > b.value || b.value >= bits) throw new Errno(E.EINVAL, `bad range in ${JSON.stringify(str)}`);
      z = b.value;
      i = b.end;
    }
    for (let id = a.value; id <= z; id++) setBitInv(bitmap, id, sign === '+');
    while (str[i] === ',' || str[i] === '\n') i++;
  }
}

/** hex2bitmap(): optional "0x" (or a lone "x"), hex digits left-aligned, one trailing newline. */
export function hex2bitmap(str: string, bitmap: ApMask, bits = MASK_BITS): void {
  let i = 0;
  if (str[0] === '0' && str[1] === 'x') i++;
  if (str[i] === 'x') i++;
  for (let bit = 0; isHex(str[i]) && bit < bits; i++, bit += 4) {
    const v = digitValue(str[i]!);
    for (let n = 0; n < 4; n++) if (v & (0x08 >> n)) setBitInv(bitmap, bit + n, true);
  }
  if (str[i] === '\n') i++;
  if (i !== str.length) throw new Errno(E.EINVAL, `bad hex mask ${JSON.stringify(str)}`);
}

/**
 * ap_parse_bitmap_str(): the new mask for a write of `str` to a mask whose current
 * value is `current`. Throws Errno(EINVAL) and leaves `current` untouched on error.
 */
export function ap_parse_bitmap_str(str: string, current: ApMask, bits = MASK_BITS): ApMask {
  let m: ApMask;
  if (str[0] === '+' || str[0] === '-') {
    m = copyMask(current);
    modify_bitmap(str, m, bits);
  } else {
    m = newMask();
    hex2bitmap(str, m, bits);
  }
  return m;
}
