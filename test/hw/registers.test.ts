import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AP_RESPONSE,
  NON_APXA_APQN_MASK,
  PQAP_FC,
  ProgramException,
  apqn,
  decodeAqicGr1,
  decodeHwinfo,
  decodePqapGr0,
  decodeQciBlock,
  decodeStatusWord,
  encodeAqicGr1,
  encodeHwinfo,
  encodePqapGr0,
  encodeQciBlock,
  encodeStatusWord,
  executePqap,
  formatStatus,
  makeStatus,
  maskEquals,
  maskFromIds,
  qciFeatures,
  responseCodeName,
} from '../../src/hw/index.js';
import { MS, makeMachine } from './helpers.js';

test('response code names follow Linux', () => {
  assert.equal(AP_RESPONSE.NORMAL, 0);
  assert.equal(AP_RESPONSE.Q_NOT_AVAIL, 1);
  assert.equal(AP_RESPONSE.RESET_IN_PROGRESS, 2);
  assert.equal(AP_RESPONSE.DECONFIGURED, 3);
  assert.equal(AP_RESPONSE.CHECKSTOPPED, 4);
  assert.equal(AP_RESPONSE.BUSY, 5);
  assert.equal(AP_RESPONSE.INVALID_ADDRESS, 6);
  assert.equal(AP_RESPONSE.OTHERWISE_CHANGED, 7);
  assert.equal(AP_RESPONSE.INVALID_GISA, 8);
  assert.equal(AP_RESPONSE.Q_FULL, 0x10);
  assert.equal(AP_RESPONSE.NO_PENDING_REPLY, 0x10);
  assert.equal(AP_RESPONSE.INDEX_TOO_BIG, 0x11);
  assert.equal(AP_RESPONSE.NO_FIRST_PART, 0x13);
  assert.equal(AP_RESPONSE.MESSAGE_TOO_BIG, 0x15);
  assert.equal(AP_RESPONSE.REQ_FAC_NOT_INST, 0x16);
  assert.equal(AP_RESPONSE.INVALID_DOMAIN, 0x42);
  assert.equal(responseCodeName(1), 'Q_NOT_AVAIL');
  assert.equal(responseCodeName(0x10), 'Q_FULL');
  assert.equal(responseCodeName(0x99), '0x99');
});

test('status word layout: E bit 0, R 1, F 2, async 6, I 7, RC 8-15', () => {
  assert.equal(encodeStatusWord(makeStatus(0, { queueEmpty: true })), 0x80000000);
  assert.equal(encodeStatusWord(makeStatus(0, { repliesWaiting: true })), 0x40000000);
  assert.equal(encodeStatusWord(makeStatus(0x10, { queueFull: true })), 0x20100000);
  assert.equal(encodeStatusWord(makeStatus(0, { async: true })), 0x02000000);
  assert.equal(encodeStatusWord(makeStatus(2, { irqEnabled: true })), 0x01020000);
  assert.equal(formatStatus(makeStatus(0x10, { queueFull: true })), 'rc=0x10(Q_FULL) E- R- F+ I-');
  fc.assert(
    fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 255 }), (e, r, f, a, i, rc) => {
      const s = makeStatus(rc, { queueEmpty: e, repliesWaiting: r, queueFull: f, async: a, irqEnabled: i });
      assert.deepEqual(decodeStatusWord(encodeStatusWord(s)), s);
    }),
  );
});

test('hwinfo layout (spec 2.5)', () => {
  const v = encodeHwinfo({ facilities: 0x92000000, at: 14, nd: 85, ml: 8, qd: 7 });
  assert.equal(v, 0x92000000_0e550807n);
  const h = decodeHwinfo(v);
  assert.ok(h.apsc && h.cca && h.apxa && !h.accel);
  assert.deepEqual([h.at, h.nd, h.ml, h.qd, h.class, h.bs], [14, 85, 8, 7, 0, 0]);
  assert.equal(decodeHwinfo(0x0000c000_00000000n).bs, 3);
  assert.equal(decodeHwinfo(0x00ab0000_00000000n).class, 0xab);
});

test('PQAP GR0: FC bits 32-39, T bit 40, F bit 41, APQN 48-63', () => {
  assert.equal(encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: 0x0504, t: true }), 0x00800504n);
  assert.equal(encodePqapGr0({ fc: PQAP_FC.ZAPQ, apqn: 0x0504 }), 0x02000504n);
  assert.equal(encodePqapGr0({ fc: PQAP_FC.RAPQ, apqn: 0xffff, f: true }), 0x0140ffffn);
  const g = decodePqapGr0(0x03410047n);
  assert.deepEqual(g, { fc: 3, t: false, f: true, bits41to47: 0x41, apqn: 0x0047 });
  assert.equal(NON_APXA_APQN_MASK & apqn(64, 0), 0x4000);
  assert.equal(NON_APXA_APQN_MASK & apqn(63, 15), 0);
});

test('AQIC GR1: IR bit 16, gisc 21-23, gf 30-31, GISA 33-59, ISC 61-63', () => {
  const gr1 = encodeAqicGr1({ ir: true, isc: 3, gisc: 5, gf: 1, gisa: 0x12345670, zone: 0 });
  assert.equal(gr1, (1n << 47n) | (5n << 40n) | (1n << 32n) | 0x12345670n | 3n);
  assert.deepEqual(decodeAqicGr1(gr1), { zone: 0, ir: true, gisc: 5, gf: 1, gisa: 0x12345670, isc: 3 });
});

test('QCI block round trip and features', () => {
  const q = { apsc: true, apxa: true, qact: false, rc8a: true, apsb: true, na: 0x3f, nd: 0x54, apm: maskFromIds([5, 6]), aqm: maskFromIds([4, 71]), adm: maskFromIds([255]) };
  const b = encodeQciBlock(q);
  assert.equal(b[0], 0xd0);
  assert.equal(b[1], 0x80);
  assert.equal(b[16], 0x06);
  assert.equal(b[79], 0x00);
  assert.equal(b[111], 0x01);
  const d = decodeQciBlock(b);
  assert.deepEqual({ ...d, apm: 0, aqm: 0, adm: 0 }, { ...q, apm: 0, aqm: 0, adm: 0 });
  assert.ok(maskEquals(d.apm, q.apm) && maskEquals(d.aqm, q.aqm) && maskEquals(d.adm, q.adm));
  assert.deepEqual(qciFeatures(q), ['APSC', 'APXA', 'RC8A', 'APSB']);
  assert.throws(() => decodeQciBlock(new Uint8Array(64)), RangeError);
});

test('executePqap: register-level TAPQ, ZAPQ, AQIC, QCI', () => {
  const { m, clock } = makeMachine();
  const t = executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: 0x0001, t: true }), gr1: 0n, gr2: 0n });
  assert.equal(t.cc, 0);
  assert.equal(t.gr1, 0x80000000n);
  assert.equal(decodeHwinfo(t.gr2).at, 14);
  const nf = executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: 0x0009 }), gr1: 0n, gr2: 0n });
  assert.equal(nf.cc, 3);
  assert.equal(nf.gr1, 0x00010000n);
  const a = executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.AQIC, apqn: 0x0001 }), gr1: encodeAqicGr1({ ir: true, isc: 3 }), gr2: 0x4000n });
  assert.equal(a.cc, 0);
  assert.equal(a.gr1, 0x81000000n);
  assert.throws(
    () => executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.AQIC, apqn: 1, f: true }), gr1: 0n, gr2: 0n }),
    (e: unknown) => e instanceof ProgramException && e.kind === 'specification',
  );
  const z = executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.ZAPQ, apqn: 0x0001 }), gr1: 0n, gr2: 0n });
  assert.equal(z.cc, 0);
  assert.equal(executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: 0x0001 }), gr1: 0n, gr2: 0n }).gr1, 0x00020000n);
  clock.advance(60 * MS);
  assert.equal(executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.TAPQ, apqn: 0x0001 }), gr1: 0n, gr2: 0n }).gr1, 0x80000000n);
  const q = executePqap(m, { gr0: encodePqapGr0({ fc: PQAP_FC.QCI }), gr1: 0n, gr2: 0x2000n });
  assert.equal(q.qciBlock!.length, 128);
  assert.throws(() => executePqap(m, { gr0: encodePqapGr0({ fc: 9 }), gr1: 0n, gr2: 0n }), ProgramException);
});
