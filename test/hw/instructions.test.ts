import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AP_FUNC,
  AP_RESPONSE,
  ProgramException,
  apqn,
  decodeHwinfo,
  formatMask,
  maskFromIds,
  type ApResult,
} from '../../src/hw/index.js';
import { MS, makeMachine } from './helpers.js';

const Q00 = apqn(0, 0);
const Q01 = apqn(0, 1);
const Q10 = apqn(1, 0);
const NIB = 0x1000;

/** Asserts cc, RC and (optionally) the E/R/F/I flags of an instruction result. */
function expectStatus(r: ApResult, cc: number, rc: number, flags?: { E?: boolean; R?: boolean; F?: boolean; I?: boolean }): void {
  assert.equal(r.cc, cc, 'cc');
  assert.equal(r.status.responseCode, rc, 'rc');
  if (flags) {
    if (flags.E !== undefined) assert.equal(r.status.queueEmpty, flags.E, 'E');
    if (flags.R !== undefined) assert.equal(r.status.repliesWaiting, flags.R, 'R');
    if (flags.F !== undefined) assert.equal(r.status.queueFull, flags.F, 'F');
    if (flags.I !== undefined) assert.equal(r.status.irqEnabled, flags.I, 'I');
  }
}

const msg = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

test('TAPQ on a configured idle queue: cc 0, RC 00, E=1 R=0 F=0 I=0, hwinfo', () => {
  const { m } = makeMachine();
  const r = m.tapq(Q00, { t: true });
  expectStatus(r, 0, 0, { E: true, R: false, F: false, I: false });
  const h = decodeHwinfo(r.hwinfo);
  assert.equal(h.at, 14);
  assert.equal(h.qd, 7);
  assert.equal(h.ml, 0);
  assert.equal(h.nd, 16);
  assert.ok(h.cca && !h.accel && !h.ep11 && h.apxa && h.apsc && h.mex4k && h.crt4k && h.slcf);
  assert.equal(h.facilities, (AP_FUNC.APSC | AP_FUNC.MEX4K | AP_FUNC.CRT4K | AP_FUNC.COPRO | AP_FUNC.APXA | AP_FUNC.SLCF) >>> 0);
  assert.equal(h.facilities, 0xf3000000);
  // Without T the facility word is zero but the lower word is still there.
  const h2 = decodeHwinfo(m.tapq(Q00).hwinfo);
  assert.equal(h2.facilities, 0);
  assert.equal(h2.at, 14);
  const acc = decodeHwinfo(m.tapq(Q10, { t: true }).hwinfo);
  assert.ok(acc.accel && !acc.cca && !acc.slcf);
  assert.equal(acc.at, 13);
  assert.equal(acc.qd, 3);
});

test('TAPQ hwinfo: ml encodes max message size, ep11 bit, raw type of an emulated newer card', () => {
  const { m } = makeMachine('minimal', (p) => {
    p.adapters[0]!.maxMessageSize = 8 * 4096;
    p.adapters[1] = { ...p.adapters[1]!, type: 'CEX8', mode: 'ep11', rawType: 15, serialNumber: 'X', ep11ApiOrdinal: 7, ep11FwVersion: '8.1' };
  });
  assert.equal(decodeHwinfo(m.tapq(Q00).hwinfo).ml, 8);
  const h = decodeHwinfo(m.tapq(Q10, { t: true }).hwinfo);
  assert.ok(h.ep11);
  assert.equal(h.at, 15);
  const q = m.qact(Q10);
  assert.equal(q.cc, 0);
  assert.equal(q.compatibleType, 14);
});

test('unconfigured APQN: RC 01 cc 3 on every queue instruction, hwinfo 0', () => {
  const { m } = makeMachine();
  for (const q of [apqn(0, 4), apqn(2, 0), apqn(0x0f, 0x0f)]) {
    const t = m.tapq(q, { t: true });
    expectStatus(t, 3, AP_RESPONSE.Q_NOT_AVAIL, { E: false, R: false, F: false, I: false });
    assert.equal(t.hwinfo, 0n);
    expectStatus(m.rapq(q), 3, 1);
    expectStatus(m.zapq(q), 3, 1);
    expectStatus(m.aqic(q, { ir: true, isc: 3 }, NIB), 3, 1);
    expectStatus(m.nqap(q, 1n, msg(16)), 3, 1);
    expectStatus(m.dqap(q), 3, 1);
    expectStatus(m.qact(q), 3, 1);
  }
});

test('APXA: 8-bit ids without APXA are a specification exception; T bit needs APFT', () => {
  const { m } = makeMachine('minimal', (p) => {
    p.facilities.apxa = false;
    p.facilities.apft = false;
  });
  assert.throws(() => m.tapq(apqn(64, 0)), (e: unknown) => e instanceof ProgramException && e.kind === 'specification');
  assert.throws(() => m.nqap(apqn(0, 16), 1n, msg(1)), ProgramException);
  expectStatus(m.tapq(apqn(63, 15)), 3, 1);
  assert.throws(() => m.tapq(Q00, { t: true }), /specification exception: TAPQ with T bit without APFT/);
  assert.equal(decodeHwinfo(m.tapq(Q00).hwinfo).apxa, false);
});

test('no AP facility: operation exception; no QCI/AQIC/QACT facility: specification exception', () => {
  const { m } = makeMachine('minimal', (p) => {
    p.facilities = { ...p.facilities, ap: false };
  });
  assert.throws(() => m.tapq(Q00), (e: unknown) => e instanceof ProgramException && e.kind === 'operation');
  assert.throws(() => m.qci(), (e: unknown) => e instanceof ProgramException && e.kind === 'operation');
  const { m: m2 } = makeMachine('minimal', (p) => {
    p.facilities = { ...p.facilities, qci: false, apxa: false, apsc: false, qact: false, rc8a: false, apsb: false, aqic: false };
  });
  assert.throws(() => m2.qci(), (e: unknown) => e instanceof ProgramException && e.kind === 'specification');
  assert.throws(() => m2.aqic(Q00, { ir: true, isc: 1 }, NIB), /facility 65/);
  assert.throws(() => m2.qact(Q00), /QACT/);
  assert.equal(m2.hasStfleFacility(12), false);
  assert.equal(m2.hasStfleFacility(65), false);
  assert.equal(m2.hasStfleFacility(15), true);
});

test('QCI returns the configuration masks and Na/Nd', () => {
  const { m } = makeMachine();
  const q = m.qci();
  assert.equal(formatMask(q.apm), formatMask(maskFromIds([0, 1])));
  assert.equal(formatMask(q.aqm), formatMask(maskFromIds([0, 1, 2, 3])));
  assert.equal(formatMask(q.adm), formatMask(maskFromIds([0, 1, 2, 3])));
  assert.equal(q.na, 15);
  assert.equal(q.nd, 15);
  assert.ok(q.apxa && q.apsc && q.qact && q.rc8a && !q.apsb);
  const b = m.qciBlock();
  assert.equal(b.length, 128);
  assert.equal(b[0], 0xf0);
  assert.equal(b[4], 15);
  assert.equal(b[16], 0xc0);
  assert.equal(b[48], 0xf0);
  // QCI hands out copies.
  q.apm.fill(0);
  assert.equal(m.qci().apm[0], 0xc0);
});

test('RAPQ/ZAPQ: RC 02 while the reset runs, then RC 00 E=1 I=0 after the latency', () => {
  const { m, clock } = makeMachine();
  expectStatus(m.aqic(Q00, { ir: true, isc: 3 }, NIB), 0, 0, { I: true });
  expectStatus(m.nqap(Q00, 7n, msg(8)), 0, 0, { E: false });
  expectStatus(m.zapq(Q00), 0, 0, { E: true, I: false });
  expectStatus(m.tapq(Q00), 3, AP_RESPONSE.RESET_IN_PROGRESS, { E: false, I: false });
  assert.notEqual(m.tapq(Q00).hwinfo, 0n, 'hwinfo valid with RC 02');
  expectStatus(m.zapq(Q00), 3, 2);
  expectStatus(m.rapq(Q00), 3, 2);
  expectStatus(m.nqap(Q00, 1n, msg(8)), 3, 2);
  expectStatus(m.dqap(Q00), 3, 2);
  expectStatus(m.aqic(Q00, { ir: true, isc: 3 }, NIB), 3, 2);
  assert.equal(m.nextEventTime(), 60 * MS);
  clock.advance(60 * MS - 1);
  expectStatus(m.tapq(Q00), 3, 2);
  clock.advance(1);
  expectStatus(m.tapq(Q00), 0, 0, { E: true, R: false, F: false, I: false });
  // The request enqueued before the reset is gone.
  expectStatus(m.dqap(Q00), 3, AP_RESPONSE.NO_PENDING_REPLY, { E: true });
  assert.equal(m.nextEventTime(), undefined);
  // Other queues were not affected.
  expectStatus(m.tapq(Q01), 0, 0);
});

test('RAPQ disables interrupts per profile semantics; ZAPQ always does', () => {
  const { m, clock } = makeMachine('minimal', (p) => (p.semantics.rapqDisablesInterrupts = false));
  m.aqic(Q00, { ir: true, isc: 2 }, NIB);
  expectStatus(m.rapq(Q00), 0, 0, { I: true });
  expectStatus(m.tapq(Q00), 3, 2, { I: true });
  clock.advance(60 * MS);
  expectStatus(m.tapq(Q00), 0, 0, { I: true });
  m.zapq(Q00);
  clock.advance(60 * MS);
  expectStatus(m.tapq(Q00), 0, 0, { I: false });
  const { m: m2, clock: c2 } = makeMachine();
  m2.aqic(Q00, { ir: true, isc: 2 }, NIB);
  m2.rapq(Q00);
  c2.advance(60 * MS);
  expectStatus(m2.tapq(Q00), 0, 0, { I: false });
});

test('AQIC: enable, already enabled (07), bad NIB (06), disable', () => {
  const { m } = makeMachine();
  expectStatus(m.aqic(Q00, { ir: true, isc: 3 }, 0), 3, AP_RESPONSE.INVALID_ADDRESS, { I: false });
  expectStatus(m.tapq(Q00), 0, 0, { I: false });
  expectStatus(m.aqic(Q00, { ir: true, isc: 3 }, NIB), 0, 0, { I: true });
  expectStatus(m.tapq(Q00), 0, 0, { I: true });
  expectStatus(m.aqic(Q00, { ir: true, isc: 3 }, NIB), 3, AP_RESPONSE.OTHERWISE_CHANGED, { I: true });
  expectStatus(m.aqic(Q00, { ir: false, isc: 0 }, 0), 0, 0, { I: false });
  expectStatus(m.tapq(Q00), 0, 0, { I: false });
  expectStatus(m.aqic(Q00, { ir: false, isc: 0 }, 0), 0, 0, { I: false });
  assert.deepEqual(m.inspectQueue(Q00).irq, null);
  m.aqic(Q00, { ir: true, isc: 5, gisa: 0x2000, gisc: 1 }, NIB);
  assert.deepEqual(m.inspectQueue(Q00).irq, { isc: 5, nib: NIB, gisa: 0x2000, gisc: 1 });
  assert.throws(() => m.aqic(Q01, { ir: true, isc: 8 }, NIB), RangeError);
});

test('NQAP/DQAP: reply after the request latency, matched by PSMID', () => {
  const { m, clock } = makeMachine();
  expectStatus(m.nqap(Q00, 0x1234_0000_0001n, msg(100, 7)), 0, 0, { E: false, R: false, F: false });
  expectStatus(m.dqap(Q00), 3, AP_RESPONSE.NO_PENDING_REPLY, { E: false, R: false });
  assert.equal(m.nextEventTime(), 1 * MS);
  clock.advance(1 * MS);
  expectStatus(m.tapq(Q00), 0, 0, { E: false, R: true });
  const r = m.dqap(Q00);
  expectStatus(r, 0, 0, { E: true, R: false });
  assert.equal(r.psmid, 0x1234_0000_0001n);
  assert.deepEqual(r.data, msg(100, 7));
  assert.equal(r.residual, 0);
  expectStatus(m.dqap(Q00), 3, 0x10, { E: true });
});

test('DQAP returns replies in completion order; PSMIDs identify them', () => {
  const { m, clock } = makeMachine('minimal', (p) => (p.adapters[0]!.requestLatencyNs = 10 * MS));
  m.nqap(Q00, 1n, msg(1, 1));
  clock.advance(5 * MS);
  m.nqap(Q00, 2n, msg(1, 2));
  m.nqap(Q00, 3n, msg(1, 3));
  clock.advance(5 * MS);
  assert.equal(m.dqap(Q00).psmid, 1n);
  expectStatus(m.dqap(Q00), 3, 0x10, { E: false });
  clock.advance(5 * MS);
  const a = m.dqap(Q00);
  const b = m.dqap(Q00);
  assert.deepEqual([a.psmid, b.psmid], [2n, 3n]);
  assert.deepEqual([a.data![0], b.data![0]], [2, 3]);
});

test('queue full at queue depth: RC 0x10 F=1 cc 3; one DQAP frees a slot', () => {
  const { m, clock } = makeMachine();
  for (let i = 0; i < 7; i++) expectStatus(m.nqap(Q00, BigInt(i), msg(4)), 0, 0, { F: false });
  expectStatus(m.nqap(Q00, 7n, msg(4)), 0, 0, { F: true });
  expectStatus(m.nqap(Q00, 8n, msg(4)), 3, AP_RESPONSE.Q_FULL, { F: true, E: false });
  expectStatus(m.tapq(Q00), 0, 0, { F: true });
  clock.advance(MS);
  expectStatus(m.dqap(Q00), 0, 0, { F: false, R: true });
  expectStatus(m.nqap(Q00, 8n, msg(4)), 0, 0, { F: true });
  // Replies not yet dequeued still occupy slots.
  expectStatus(m.nqap(Q10, 1n, msg(4)), 0, 0);
  clock.advance(10 * MS);
  for (let i = 1; i < 4; i++) m.nqap(Q10, BigInt(i), msg(4));
  expectStatus(m.nqap(Q10, 9n, msg(4)), 3, 0x10, { F: true, R: true });
});

test('message too big (0x15), special without APSC (0x16), no first part (0x13), invalid domain (0x42)', () => {
  const { m, clock } = makeMachine();
  expectStatus(m.nqap(Q00, 1n, msg(12288)), 0, 0);
  expectStatus(m.nqap(Q00, 2n, msg(12289)), 3, AP_RESPONSE.MESSAGE_TOO_BIG, { E: false });
  expectStatus(m.nqap(Q00, 3n, msg(8), { continuation: true }), 3, AP_RESPONSE.NO_FIRST_PART);
  expectStatus(m.nqap(Q00, 4n, msg(8), { domain: 2 }), 0, 0); // a control domain
  expectStatus(m.nqap(Q00, 5n, msg(8), { domain: 9 }), 3, AP_RESPONSE.INVALID_DOMAIN);
  expectStatus(m.nqap(Q00, 6n, msg(8), { special: true }), 0, 0);
  const { m: m2 } = makeMachine('minimal', (p) => (p.facilities.apsc = false));
  expectStatus(m2.nqap(Q00, 1n, msg(8), { special: true }), 3, AP_RESPONSE.REQ_FAC_NOT_INST);
  clock.advance(MS);
  const got: bigint[] = [];
  for (let r = m.dqap(Q00); r.cc === 0; r = m.dqap(Q00)) got.push(r.psmid!);
  assert.deepEqual(got, [1n, 4n, 6n]);
});

test('multi-part NQAP is assembled; the size limit applies to the whole message', () => {
  const { m, clock } = makeMachine();
  expectStatus(m.nqap(Q00, 9n, msg(3, 1), { lastPart: false }), 0, 0, { E: true });
  expectStatus(m.nqap(Q00, 9n, msg(2, 2), { continuation: true, lastPart: false }), 0, 0);
  expectStatus(m.nqap(Q00, 9n, msg(1, 3), { continuation: true }), 0, 0, { E: false });
  clock.advance(MS);
  assert.deepEqual([...m.dqap(Q00).data!], [1, 1, 1, 2, 2, 3]);
  m.nqap(Q00, 10n, msg(8000), { lastPart: false });
  expectStatus(m.nqap(Q00, 10n, msg(8000), { continuation: true }), 3, 0x15);
  expectStatus(m.nqap(Q00, 10n, msg(1), { continuation: true }), 3, 0x13, { E: true });
});

test('DQAP into a short buffer: partial receive cc 1 with residual, then the rest', () => {
  const { m, clock } = makeMachine();
  const data = Uint8Array.from({ length: 10 }, (_, i) => i);
  m.nqap(Q00, 5n, data);
  clock.advance(MS);
  const a = m.dqap(Q00, 4);
  assert.equal(a.cc, 1);
  assert.equal(a.status.responseCode, 0);
  assert.equal(a.residual, 6);
  assert.equal(a.psmid, 5n);
  assert.deepEqual([...a.data!], [0, 1, 2, 3]);
  const b = m.dqap(Q00, 100);
  expectStatus(b, 0, 0, { E: true });
  assert.deepEqual([...b.data!], [4, 5, 6, 7, 8, 9]);
});

test('responder hook computes replies', () => {
  const { m, clock } = makeMachine();
  m.setResponder((r) => Uint8Array.of(r.adapter.id, r.data.length, r.special ? 1 : 0));
  m.nqap(Q10, 1n, msg(5), { special: true });
  clock.advance(MS);
  assert.deepEqual([...m.dqap(Q10).data!], [1, 5, 1]);
});

test('injected faults, sticky reset, forgotten requests, busy rate', () => {
  const { m, clock } = makeMachine();
  m.faults.injectResponse(Q00, AP_RESPONSE.BUSY, { count: 2, instructions: ['nqap'] });
  expectStatus(m.tapq(Q00), 0, 0);
  expectStatus(m.nqap(Q00, 1n, msg(1)), 3, 5);
  expectStatus(m.nqap(Q00, 1n, msg(1)), 3, 5);
  expectStatus(m.nqap(Q00, 1n, msg(1)), 0, 0);
  m.faults.injectResponse(Q00, AP_RESPONSE.INVALID_GISA, { instructions: ['aqic'] });
  expectStatus(m.aqic(Q00, { ir: true, isc: 1 }, NIB), 3, 8);

  m.faults.forgetRequests(Q00);
  expectStatus(m.dqap(Q00), 3, 0x10, { E: true });

  m.faults.setStickyReset(Q01, true);
  m.zapq(Q01);
  clock.advance(10_000 * MS);
  expectStatus(m.tapq(Q01), 3, 2);
  assert.equal(m.nextEventTime(), undefined);
  m.faults.setStickyReset(Q01, false);
  expectStatus(m.tapq(Q01), 0, 0, { E: true });

  m.faults.setBusyRate(1);
  expectStatus(m.tapq(Q00), 3, 5);
  expectStatus(m.zapq(Q00), 0, 0);
  m.faults.setBusyRate(0);
});

test('sticky reset from the profile', () => {
  const { m, clock } = makeMachine('minimal', (p) => (p.faults.stickyReset = ['00.0002']));
  m.rapq(apqn(0, 2));
  clock.advance(3600_000 * MS);
  expectStatus(m.tapq(apqn(0, 2)), 3, 2);
});

test('busy faults with the same seed are reproducible', () => {
  const run = () => {
    const { m } = makeMachine('minimal', (p) => (p.faults.busyRate = 0.3));
    return Array.from({ length: 50 }, () => m.tapq(Q00).status.responseCode).join(',');
  };
  const a = run();
  assert.equal(a, run());
  assert.ok(a.includes('5') && a.includes('0'));
});
