// The allocation-free mask predicates the invariant checker uses agree with the
// allocating compositions they replace (fast-check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { maskAnd, maskEquals, maskEqualsAnd, maskEqualsFirstBits, maskFromIds, maskIds, maskIsSubset, maskIsSubsetOfAnd } from '../../src/hw/mask.js';

const ids = fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 12 });
const firstBits = (m: Uint8Array, bits: number) => maskFromIds(maskIds(m).filter((id) => id < bits));

test('maskEqualsAnd / maskIsSubsetOfAnd equal their allocating forms', () => {
  fc.assert(
    fc.property(ids, ids, ids, fc.boolean(), (a, b, c, derive) => {
      const mb = maskFromIds(b);
      const mc = maskFromIds(c);
      // Half the cases make a the exact intersection, or a subset of it, so both answers occur.
      const ma = derive ? maskFromIds(maskIds(maskAnd(mb, mc)).filter((_, i) => i % 2 === 0 || a.length > 6)) : maskFromIds(a);
      assert.equal(maskEqualsAnd(ma, mb, mc), maskEquals(ma, maskAnd(mb, mc)));
      assert.equal(maskIsSubsetOfAnd(ma, mb, mc), maskIsSubset(ma, maskAnd(mb, mc)));
    }),
  );
});

test('maskEqualsFirstBits(a, b, n) is a == b cut to its first n ids, at every cut', () => {
  fc.assert(
    fc.property(ids, fc.integer({ min: 0, max: 256 }), fc.boolean(), (b, bits, derive) => {
      const mb = maskFromIds(b);
      const ma = derive ? firstBits(mb, bits) : maskFromIds(b.slice(1));
      assert.equal(maskEqualsFirstBits(ma, mb, bits), maskEquals(ma, firstBits(mb, bits)));
    }),
  );
  // The CRYCB widths: APCB0 64/16/16, APCB1 256.
  const all = maskFromIds([0, 15, 16, 63, 64, 255]);
  assert.equal(maskEqualsFirstBits(maskFromIds([0, 15]), all, 16), true);
  assert.equal(maskEqualsFirstBits(maskFromIds([0, 15, 16]), all, 16), false);
  assert.equal(maskEqualsFirstBits(maskFromIds([0, 15, 16, 63]), all, 64), true);
  assert.equal(maskEqualsFirstBits(all, all, 256), true);
  assert.equal(maskEqualsFirstBits(maskFromIds([]), all, 0), true);
});
