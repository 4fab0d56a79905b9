import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ap_parse_bitmap_str, simple_strtoul } from '../../src/ap/mask_str.js';
import { Errno } from '../../src/kernel/errno.js';
import { formatMask, maskFromIds, maskIds, newMask, fullMask, type ApMask } from '../../src/hw/mask.js';

const ids = (s: string, cur: ApMask = newMask()) => maskIds(ap_parse_bitmap_str(s, cur));
const einval = (s: string, cur: ApMask = newMask()) =>
  assert.throws(() => ap_parse_bitmap_str(s, cur), (e: unknown) => e instanceof Errno && e.errno === 22, JSON.stringify(s));

test('absolute masks are left-aligned hex; bits not given are zero', () => {
  assert.deepEqual(ids('0x41'), [1, 7]);
  assert.deepEqual(ids('41\n'), [1, 7]);
  assert.deepEqual(ids('5'), [1, 3]); // no sign: hex, not bit 5
  assert.deepEqual(ids('x8'), [0]);
  assert.deepEqual(ids('0x'), []);
  assert.deepEqual(ids('\n'), []); // `echo > apmask` clears the mask
  assert.deepEqual(ids('0xF0', fullMask()), [0, 1, 2, 3]);
  assert.deepEqual(ids('0x' + 'f'.repeat(64)), Array.from({ length: 256 }, (_, i) => i));
  assert.equal(formatMask(ap_parse_bitmap_str('0x8000000000000001', newMask())), '0x8000000000000001' + '0'.repeat(48));
});

test('absolute mask errors: too long, junk, uppercase 0X, two newlines', () => {
  einval('0x' + 'f'.repeat(65));
  einval('f'.repeat(65));
  einval('0X41');
  einval('0x4g');
  einval('41\n\n');
  einval(' 41');
  einval('xx4');
});

test('relative edits: + sets, - clears, ranges inclusive, later terms win, base 0 numbers', () => {
  const cur = maskFromIds([0, 1, 2]);
  assert.deepEqual(ids('+5', cur), [0, 1, 2, 5]);
  assert.deepEqual(ids('-0x1', cur), [0, 2]); // bit number 1, not a mask
  assert.deepEqual(ids('+4-7,-6', cur), [0, 1, 2, 4, 5, 7]);
  assert.deepEqual(ids('+0-255,-128', newMask()).length, 255);
  assert.deepEqual(ids('+010', newMask()), [8]); // octal
  assert.deepEqual(ids('+0x10-0x11\n', newMask()), [16, 17]);
  assert.deepEqual(ids('+1,,\n+2,', newMask()), [1, 2]);
  assert.deepEqual(ids('-0-255', cur), []);
});

test('relative edit errors change nothing: missing sign, no digits, >= 256, N > M, junk', () => {
  const cur = maskFromIds([3]);
  for (const s of ['+', '+,1', '+1,2', '+256', '+1-256', '+5-4', '+1 ', '+1;+2', '+0x', '+08', '+-1', '-1-', '+1\n\n2']) einval(s, cur);
  assert.deepEqual(maskIds(cur), [3]);
});

test('simple_strtoul follows the kernel base rules', () => {
  assert.deepEqual(simple_strtoul('0x1f,', 0), { value: 31, end: 4 });
  assert.deepEqual(simple_strtoul('017', 0), { value: 15, end: 3 });
  assert.deepEqual(simple_strtoul('0', 0), { value: 0, end: 1 });
  assert.deepEqual(simple_strtoul('0xg', 0), { value: 0, end: 1 }); // "0" octal, stops at x
  assert.deepEqual(simple_strtoul('x', 0), { value: 0, end: 0 });
  assert.deepEqual(simple_strtoul('12a', 0), { value: 12, end: 2 });
});

// ---- reference model: a regex grammar, independent of the parser's control flow.
const NUM = '(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)';
const TERM = new RegExp(`^([+-])(${NUM})(?:-(${NUM}))?[,\\n]*`);
function num(s: string): number {
  if (/^0[xX]/.test(s)) return parseInt(s.slice(2), 16);
  if (s.length > 1 && s[0] === '0') return parseInt(s, 8);
  return parseInt(s, 10);
}
function reference(s: string, cur: ApMask): number[] | 'EINVAL' {
  if (s[0] === '+' || s[0] === '-') {
    const set = new Set(maskIds(cur));
    let rest = s;
    while (rest.length) {
      const m = TERM.exec(rest);
      if (!m) return 'EINVAL';
      const a = num(m[2]!);
      const z = m[3] === undefined ? a : num(m[3]);
      if (a >= 256 || z >= 256 || a > z) return 'EINVAL';
      for (let i = a; i <= z; i++) {
        if (m[1] === '+') set.add(i);
        else set.delete(i);
      }
      rest = rest.slice(m[0].length);
    }
    return [...set].sort((x, y) => x - y);
  }
  const m = /^(?:0x|x)?([0-9a-fA-F]{0,64})\n?$/.exec(s);
  if (!m) return 'EINVAL';
  const out: number[] = [];
  [...m[1]!].forEach((c, d) => {
    const v = parseInt(c, 16);
    for (let n = 0; n < 4; n++) if (v & (8 >> n)) out.push(d * 4 + n);
  });
  return out;
}

function actual(s: string, cur: ApMask): number[] | 'EINVAL' {
  try {
    return maskIds(ap_parse_bitmap_str(s, cur));
  } catch (e) {
    if (e instanceof Errno && e.errno === 22) return 'EINVAL';
    throw e;
  }
}

const numArb = fc.oneof(
  fc.integer({ min: 0, max: 300 }).map(String),
  fc.integer({ min: 0, max: 300 }).map((n) => '0x' + n.toString(16)),
  fc.integer({ min: 0, max: 300 }).map((n) => '0' + n.toString(8)),
  fc.constantFrom('', '0x', '08', '0X1f', '1e', '-'),
);
const termArb = fc.tuple(fc.constantFrom('+', '-', '', '*'), numArb, fc.option(numArb), fc.constantFrom('', ',', ',\n', ',,', ' ', '\n\n', ';'))
  .map(([sign, a, b, sep]) => `${sign}${a}${b === null ? '' : '-' + b}${sep}`);
const relativeArb = fc.array(termArb, { minLength: 1, maxLength: 5 }).map((t) => t.join(''));
const absoluteArb = fc.tuple(fc.constantFrom('', '0x', 'x', '0X', 'xx'), fc.stringMatching(/^[0-9a-fA-Fg]{0,70}$/), fc.constantFrom('', '\n', '\n\n', ' '))
  .map(([p, h, e]) => p + h + e);
const maskArb = fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }).map((a) => maskFromIds(a));

test('property: the parser agrees with the reference grammar on random valid and invalid strings', () => {
  fc.assert(
    fc.property(fc.oneof(relativeArb, absoluteArb, fc.string({ maxLength: 12 })), maskArb, (s, cur) => {
      const before = formatMask(cur);
      assert.deepEqual(actual(s, cur), reference(s, cur), JSON.stringify(s));
      assert.equal(formatMask(cur), before, 'the current mask is never modified in place');
    }),
    { numRuns: 3000 },
  );
});

test('property: formatting a mask and writing it back is the identity', () => {
  fc.assert(
    fc.property(maskArb, maskArb, (m, cur) => {
      assert.equal(formatMask(ap_parse_bitmap_str(formatMask(m) + '\n', cur)), formatMask(m));
    }),
  );
});
