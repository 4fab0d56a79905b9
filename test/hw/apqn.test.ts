import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apqn, apqnCard, apqnDomain, cardName, formatApqn, formatCardId, formatDomainId, mustParseApqn, parseApqn } from '../../src/hw/index.js';

test('qid encoding: apid in bits 8..15, apqi in 0..7', () => {
  assert.equal(apqn(5, 4), 0x0504);
  assert.equal(apqn(0xff, 0xff), 0xffff);
  assert.equal(apqnCard(0x0aab), 0x0a);
  assert.equal(apqnDomain(0x0aab), 0xab);
  assert.throws(() => apqn(256, 0), RangeError);
  assert.throws(() => apqn(0, -1), RangeError);
});

test('sysfs spelling is lowercase hex XX.YYYY and cardXX', () => {
  assert.equal(formatApqn(apqn(5, 4)), '05.0004');
  assert.equal(formatApqn(apqn(0x0a, 0x47)), '0a.0047');
  assert.equal(formatApqn(apqn(5, 0xab)), '05.00ab');
  assert.equal(cardName(0x0a), 'card0a');
  assert.equal(formatCardId(5), '05');
  assert.equal(formatDomainId(0xab), '00ab');
});

test('parseApqn', () => {
  assert.equal(parseApqn('05.0004'), 0x0504);
  assert.equal(parseApqn('0A.00AB'), 0x0aab);
  assert.equal(parseApqn('5.4'), 0x0504);
  for (const bad of ['05.0100', '100.0001', '05', '.0004', '05.', 'zz.0001', ' 05.0004', '05.0004\n']) {
    assert.equal(parseApqn(bad), undefined, bad);
  }
  assert.throws(() => mustParseApqn('nope'), /not an APQN/);
});

test('property: format/parse round trip over all APQNs', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (c, d) => {
      const q = apqn(c, d);
      const s = formatApqn(q);
      assert.match(s, /^[0-9a-f]{2}\.[0-9a-f]{4}$/);
      assert.equal(parseApqn(s), q);
    }),
  );
});
