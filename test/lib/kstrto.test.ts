// The kernel's number parsers (lib/kstrtox.c, vsscanf in lib/vsprintf.c) as sysfs
// stores see them: exact cases, then properties against BigInt arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { kstrtobool, kstrtoint, kstrtoull, sscanf_int } from '../../src/lib/kstrto.js';

const EINVAL = -22;
const ERANGE = -34;
const U64_MAX = (1n << 64n) - 1n;

test('sscanf %d/%i: blanks, one minus sign, digits, trailing junk ignored; "+" converts nothing', () => {
  const cases: Array<[string, 10 | 0, number | null]> = [
    ['1\n', 10, 1],
    ['  \t-42abc', 10, -42],
    ['\n\n7', 10, 7],
    ['+1', 10, null], // vsscanf wants a digit after the blanks (or after '-')
    [' +1\n', 0, null],
    ['-+1', 10, null],
    ['- 1', 10, null],
    ['-', 10, null],
    ['', 10, null],
    ['x1', 10, null],
    ['0x1f', 0, 31],
    ['0X1F\n', 0, 31],
    ['-0x10', 0, -16],
    ['0x', 0, 0], // no hex digit after 0x: octal "0", the x is junk
    ['0x', 10, 0],
    ['017', 0, 15],
    ['08', 0, 0], // octal: the 8 ends the number
    ['017', 10, 17],
    ['4294967296', 10, 0], // 2^32 wraps to an int
    ['2147483648', 10, -2147483648],
    ['18446744073709551617', 10, 1], // the 64-bit parse wraps first
  ];
  for (const [buf, base, want] of cases) assert.equal(sscanf_int(buf, base), want, JSON.stringify(buf));
});

test('kstrtobool: the first character decides (o needs a second one)', () => {
  for (const s of ['1', 'y', 'Y', 't', 'T', 'yes', 'true\n', 'on', 'ON', 'On\n']) assert.equal(kstrtobool(s), true, s);
  for (const s of ['0', 'n', 'N', 'f', 'F', 'no', 'false', 'off', 'OFF', 'oF']) assert.equal(kstrtobool(s), false, s);
  for (const s of ['', ' 1', '2', 'o', 'ox', 'enable', '-1', '+1']) assert.equal(kstrtobool(s), null, JSON.stringify(s));
});

test('kstrtoull: optional "+", C prefixes in base 0, one trailing newline, -EINVAL / -ERANGE', () => {
  const cases: Array<[string, 0 | 8 | 10 | 16, bigint | number]> = [
    ['5', 0, 5n],
    ['+5\n', 0, 5n],
    ['5\n\n', 0, EINVAL],
    ['5 ', 0, EINVAL],
    [' 5', 0, EINVAL],
    ['-5', 0, EINVAL],
    ['++5', 0, EINVAL],
    ['', 0, EINVAL],
    ['\n', 0, EINVAL],
    ['0x1F', 0, 31n],
    ['0x', 0, EINVAL], // octal 0, then junk
    ['010', 0, 8n],
    ['09', 0, EINVAL],
    ['010', 10, 10n],
    ['0x10', 16, 16n],
    ['10', 16, 16n],
    ['ff', 16, 255n],
    ['ff', 10, EINVAL],
    ['18446744073709551615', 10, U64_MAX],
    ['18446744073709551616', 10, ERANGE],
    ['99999999999999999999x', 10, ERANGE], // overflow wins over the junk
  ];
  for (const [s, base, want] of cases) assert.equal(kstrtoull(s, base), want, `${JSON.stringify(s)} base ${base}`);
});

test('kstrtoint: a leading "-" and the int range', () => {
  assert.equal(kstrtoint('-2147483648'), -2147483648);
  assert.equal(kstrtoint('2147483647\n'), 2147483647);
  assert.equal(kstrtoint('2147483648'), ERANGE);
  assert.equal(kstrtoint('-2147483649'), ERANGE);
  assert.equal(kstrtoint('-0x10'), -16);
  assert.equal(kstrtoint('+7'), 7);
  assert.equal(kstrtoint('-+7'), EINVAL);
  assert.equal(kstrtoint('--7'), EINVAL);
  assert.equal(kstrtoint('-'), EINVAL);
  assert.equal(kstrtoint('99999999999999999999'), ERANGE);
});

test('property: kstrtoull reads back every u64 in bases 8, 10, 16 and their C spellings (fast-check)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), fc.boolean(), fc.boolean(), (v, nl, plus) => {
      const end = nl ? '\n' : '';
      const pre = plus ? '+' : '';
      assert.equal(kstrtoull(`${pre}${v.toString(10)}${end}`, 10), v);
      assert.equal(kstrtoull(`${pre}${v.toString(16)}${end}`, 16), v);
      assert.equal(kstrtoull(`${pre}0x${v.toString(16).toUpperCase()}${end}`, 0), v);
      assert.equal(kstrtoull(`${pre}0${v.toString(8)}${end}`, 0), v);
      assert.equal(kstrtoull(`${pre}${v.toString(8)}${end}`, 8), v);
      // Anything after the one newline makes it invalid.
      assert.equal(kstrtoull(`${v}\n\n`, 10), EINVAL);
    }),
  );
});

test('property: kstrtoull is -ERANGE exactly above 2^64-1 and kstrtoint exactly outside the int range (fast-check)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 1n << 80n }), fc.boolean(), (v, neg) => {
      assert.equal(kstrtoull(v.toString(), 10), v > U64_MAX ? ERANGE : v);
      const n = neg ? -v : v;
      const r = kstrtoint(n.toString(), 10);
      if (n < -2147483648n || n > 2147483647n) assert.equal(r, ERANGE);
      else assert.equal(r, Number(n));
    }),
  );
});

test('property: sscanf %d is the C int of the 64-bit wrapped value, whatever follows a non-digit (fast-check)', () => {
  const blank = fc.constantFrom(' ', '\t', '\n', '\v', '\f', '\r');
  fc.assert(
    fc.property(
      fc.array(blank, { maxLength: 3 }),
      fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
      fc.string({ maxLength: 6 }).filter((s) => !/^[0-9]/.test(s)),
      (pre, v, junk) => {
        const buf = `${pre.join('')}${v}${junk}`;
        const mag = BigInt.asUintN(64, v < 0n ? -v : v);
        const want = Number(BigInt.asIntN(32, v < 0n ? -mag : mag));
        assert.equal(sscanf_int(buf, 10), want);
        // A '+' in front (after the blanks) converts nothing.
        if (v >= 0n) assert.equal(sscanf_int(`${pre.join('')}+${v}${junk}`, 10), null);
      },
    ),
  );
});
