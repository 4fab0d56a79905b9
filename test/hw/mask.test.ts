import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MaskSyntaxError,
  clearBit,
  formatIdList,
  formatMask,
  fullMask,
  maskAnd,
  maskAndNot,
  maskCount,
  maskEquals,
  maskFromIds,
  maskHighestId,
  maskIds,
  maskIntersects,
  maskIsEmpty,
  maskIsSubset,
  maskOr,
  maskUpTo,
  newMask,
  parseMask,
  setBit,
  testBit,
} from '../../src/hw/index.js';

const zeros = '0'.repeat(64);

test('MSB-first: id 0 is 0x80 of byte 0, id 7 is 0x01, id 255 is the last bit', () => {
  assert.equal(formatMask(maskFromIds([0])), '0x8' + zeros.slice(1));
  assert.equal(formatMask(maskFromIds([1, 7])), '0x41' + zeros.slice(2));
  assert.equal(formatMask(maskFromIds([255])), '0x' + zeros.slice(1) + '1');
  assert.equal(formatMask(maskFromIds([71])), '0x' + '00000000000000000100' + '0'.repeat(44));
  assert.equal(formatMask(fullMask()), '0x' + 'f'.repeat(64));
  assert.equal(formatMask(newMask()), '0x' + zeros);
});

test('bit operations', () => {
  const m = newMask();
  setBit(m, 5);
  setBit(m, 200);
  assert.ok(testBit(m, 5) && testBit(m, 200) && !testBit(m, 6));
  assert.deepEqual(maskIds(m), [5, 200]);
  assert.equal(maskCount(m), 2);
  assert.equal(maskHighestId(m), 200);
  clearBit(m, 200);
  assert.deepEqual(maskIds(m), [5]);
  assert.equal(maskHighestId(newMask()), -1);
  assert.ok(maskIsEmpty(newMask()));
  assert.deepEqual(maskIds(maskUpTo(3)), [0, 1, 2, 3]);
  assert.throws(() => setBit(m, 256), RangeError);
  assert.throws(() => testBit(m, -1), RangeError);
  assert.throws(() => setBit(m, 1.5), RangeError);
  const a = maskFromIds([1, 2, 3]);
  const b = maskFromIds([3, 4]);
  assert.deepEqual(maskIds(maskAnd(a, b)), [3]);
  assert.deepEqual(maskIds(maskOr(a, b)), [1, 2, 3, 4]);
  assert.deepEqual(maskIds(maskAndNot(a, b)), [1, 2]);
  assert.ok(maskIsSubset(maskFromIds([1, 3]), a));
  assert.ok(!maskIsSubset(b, a));
  assert.ok(maskIntersects(a, b));
  assert.ok(!maskIntersects(maskFromIds([0]), b));
  assert.equal(formatIdList(maskFromIds([0, 1, 2, 3, 5, 71, 72])), '0-3,5,71-72');
});

test('parseMask accepts the kernel spelling, a trailing newline and upper case', () => {
  const m = maskFromIds([0, 9, 255]);
  assert.ok(maskEquals(parseMask(formatMask(m)), m));
  assert.ok(maskEquals(parseMask(formatMask(m) + '\n'), m));
  assert.ok(maskEquals(parseMask(formatMask(m).toUpperCase()), m));
});

test('parseMask rejects malformed text', () => {
  for (const bad of ['', '0x', '0x41', 'f'.repeat(64), '0x' + 'f'.repeat(65), '0x' + 'g'.repeat(64), ' 0x' + zeros, '0x' + zeros + '\n\n', '0x' + zeros + ' ', '+5', '0x-' + zeros.slice(1)]) {
    assert.throws(() => parseMask(bad), MaskSyntaxError, JSON.stringify(bad));
  }
});

const idsArb = fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 256 });

test('property: format/parse round trip and ids round trip', () => {
  fc.assert(
    fc.property(idsArb, (ids) => {
      const m = maskFromIds(ids);
      const s = formatMask(m);
      assert.match(s, /^0x[0-9a-f]{64}$/);
      assert.ok(maskEquals(parseMask(s), m));
      assert.deepEqual(maskIds(m), [...ids].sort((a, b) => a - b));
      assert.equal(maskCount(m), ids.length);
    }),
  );
});

test('property: any 64-hex-digit string round trips case-insensitively', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-fA-F]{64}$/), (hex) => {
      assert.equal(formatMask(parseMask('0x' + hex)), '0x' + hex.toLowerCase());
    }),
  );
});

test('property: parseMask rejects strings that are not 0x + 64 hex digits', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      fc.pre(!/^0[xX][0-9a-fA-F]{64}\n?$/.test(s));
      assert.throws(() => parseMask(s), MaskSyntaxError);
    }),
  );
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-f]{64}$/), fc.integer({ min: 2, max: 65 }), fc.constantFrom('g', 'x', ' ', ',', '-', 'z'), (hex, pos, junk) => {
      const s = '0x' + hex;
      assert.throws(() => parseMask(s.slice(0, pos) + junk + s.slice(pos + 1)), MaskSyntaxError);
    }),
  );
});
