// The kernel's number parsers as sysfs stores use them. Their differences are
// observable from userspace: sscanf("%d\n") skips leading blanks, takes a sign and
// ignores trailing junk; kstrto*() accept one trailing newline and nothing else.

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

function digit(c: string | undefined, base: number): number {
  if (c === undefined) return -1;
  const x = c.charCodeAt(0);
  let v = -1;
  if (x >= 48 && x <= 57) v = x - 48;
  else if (x >= 97 && x <= 122) v = x - 87;
  else if (x >= 65 && x <= 90) v = x - 55;
  return v >= 0 && v < base ? v : -1;
}

/**
 * sscanf(buf, "%d") / "%i" (base 0): leading whitespace, an optional '-', digits.
 * Unlike C's strtol, the kernel's vsscanf wants a digit right after the blanks or
 * the '-': "+1" converts nothing. Returns null when no number could be converted
 * (sscanf returns 0). The value wraps like the kernel's 64-bit parse and is then
 * truncated to a C int.
 */
export function sscanf_int(buf: string, base: 10 | 0 = 10): number | null {
  let i = 0;
  while (isSpace(buf[i])) i++;
  let neg = false;
  if (buf[i] === '-') {
    neg = true;
    i++;
  }
  let b: number = base === 0 ? 10 : base;
  if (base === 0 && buf[i] === '0') {
    if ((buf[i + 1] === 'x' || buf[i + 1] === 'X') && digit(buf[i + 2], 16) >= 0) {
      b = 16;
      i += 2;
    } else b = 8;
  }
  if (digit(buf[i], b) < 0) return null;
  let v = 0n;
  for (; digit(buf[i], b) >= 0; i++) v = v * BigInt(b) + BigInt(digit(buf[i], b));
  if (neg) v = -v;
  return Number(BigInt.asIntN(32, v));
}

/** kstrtobool(): 1/y/Y/t/T/on -> true, 0/n/N/f/F/off -> false (first chars only). */
export function kstrtobool(s: string): boolean | null {
  switch (s[0]) {
    case 'y': case 'Y': case 't': case 'T': case '1':
      return true;
    case 'n': case 'N': case 'f': case 'F': case '0':
      return false;
    case 'o': case 'O':
      if (s[1] === 'n' || s[1] === 'N') return true;
      if (s[1] === 'f' || s[1] === 'F') return false;
      return null;
    default:
      return null;
  }
}

/**
 * kstrtoull(s, base): digits (base 0 = C prefixes), optional leading '+', at most one
 * trailing newline. Returns the value, or the negative errno (-EINVAL, -ERANGE).
 */
export function kstrtoull(s: string, base: 0 | 8 | 10 | 16 = 0): bigint | -22 | -34 {
  return _kstrtoull(s[0] === '+' ? s.slice(1) : s, base);
}

/** _kstrtoull(): no sign accepted (kstrtoll uses it after a '-'). */
function _kstrtoull(s: string, base: 0 | 8 | 10 | 16): bigint | -22 | -34 {
  let i = 0;
  let b: number = base;
  if (b === 0) {
    if (s[0] === '0' && (s[1] === 'x' || s[1] === 'X') && digit(s[2], 16) >= 0) {
      b = 16;
      i = 2;
    } else b = s[0] === '0' ? 8 : 10;
  } else if (b === 16 && s[0] === '0' && (s[1] === 'x' || s[1] === 'X')) i = 2;
  const start = i;
  let v = 0n;
  for (; digit(s[i], b) >= 0; i++) {
    v = v * BigInt(b) + BigInt(digit(s[i], b));
    if (v > 0xffff_ffff_ffff_ffffn) return -34;
  }
  if (i === start) return -22;
  if (s[i] === '\n') i++;
  if (i !== s.length) return -22;
  return v;
}

/** kstrtoint(): like kstrtoull with an optional '-' and the int range. */
export function kstrtoint(s: string, base: 0 | 8 | 10 | 16 = 0): number | -22 | -34 {
  const neg = s[0] === '-';
  const r = neg ? _kstrtoull(s.slice(1), base) : kstrtoull(s, base);
  if (typeof r === 'number') return r;
  const v = neg ? -r : r;
  if (v > 2147483647n || v < -2147483648n) return -34;
  return Number(v);
}
