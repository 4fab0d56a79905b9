// Machine-only parts of the test scenarios of ap-architecture.md 7.3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AP_RESPONSE, ProgramException, apqn, decodeHwinfo, maskIds, qciBlocksEqual, type ConfigChangeEvent } from '../../src/hw/index.js';
import { MS, makeMachine } from './helpers.js';

test('7.3 #10: default profile has APXA with Na = 0x3f; adapter 64 is beyond the machine', () => {
  const { m } = makeMachine('default');
  const q = m.qci();
  assert.ok(q.apxa);
  assert.equal(q.na, 0x3f);
  assert.equal(m.maxAdapterId, 63);
  assert.throws(() => m.hmc.addAdapter(64), /out of range/);
  assert.equal(m.tapq(apqn(64, 4)).status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
});

test('7.3 #11: host QCI lacks adapter 7 (installed, not configured): RC 01', () => {
  const { m } = makeMachine('default');
  assert.ok(!maskIds(m.qci().apm).includes(7));
  assert.equal(m.adapter(7)?.inConfig, false);
  assert.equal(m.tapq(apqn(7, 4)).status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
});

test('7.3 #13: a legacy (type < 10) card answers TAPQ with its raw type', () => {
  const { m } = makeMachine('default');
  const legacy = m.installedAdapters().find((id) => m.adapter(id)!.hwType < 10)!;
  const t = m.tapq(apqn(legacy, 4), { t: true });
  assert.equal(t.cc, 0);
  assert.equal(decodeHwinfo(t.hwinfo).at, 9);
  assert.equal(m.qact(apqn(legacy, 4)).compatibleType, 0);
});

test('7.3 #16/#12 prerequisites: domains 4, 0x47, 0xab on adapters 5 and 6 are usable in the default profile', () => {
  const { m } = makeMachine('default');
  for (const c of [5, 6]) for (const d of [4, 0x47, 0xab]) assert.equal(m.tapq(apqn(c, d)).cc, 0, `${c}.${d}`);
});

test('7.3 #18/#19: host removes adapter 6 then re-adds it', () => {
  const { m, clock } = makeMachine('default');
  const ev: ConfigChangeEvent[] = [];
  m.onConfigChange((e) => ev.push(e));
  m.nqap(apqn(6, 4), 1n, new Uint8Array(8));
  m.hmc.removeAdapter(6);
  assert.deepEqual(ev, [{ time: 0, kind: 'adapter', id: 6, added: false }]);
  for (const d of [0, 4, 0x47]) assert.equal(m.tapq(apqn(6, d)).status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(m.dqap(apqn(6, 4)).cc, 3);
  clock.advance(30_000 * MS);
  m.hmc.addAdapter(6);
  assert.equal(ev.length, 2);
  assert.ok(maskIds(m.qci().apm).includes(6));
  const t = m.tapq(apqn(6, 4));
  assert.equal(t.cc, 0);
  assert.ok(t.status.queueEmpty && !t.status.irqEnabled);
});

test('7.3 #20: QCI unchanged → identical blocks and no notification', () => {
  const { m, clock } = makeMachine('default');
  let n = 0;
  m.onConfigChange(() => n++);
  const a = m.qciBlock();
  clock.advance(30_000 * MS);
  m.hmc.addAdapter(5); // already configured: no change
  assert.ok(qciBlocksEqual(a, m.qciBlock()));
  assert.equal(n, 0);
});

test('7.3 #21/#22: AQIC with a GISA succeeds and TAPQ shows I=1; NIB 0 gives RC 06 and keeps nothing', () => {
  const { m } = makeMachine('default');
  const q = apqn(5, 4);
  const bad = m.aqic(q, { ir: true, isc: 3, gisa: 0x1000, gisc: 3 }, 0);
  assert.equal(bad.cc, 3);
  assert.equal(bad.status.responseCode, AP_RESPONSE.INVALID_ADDRESS);
  assert.equal(m.tapq(q).status.irqEnabled, false);
  const ok = m.aqic(q, { ir: true, isc: 3, gisa: 0x1000, gisc: 3 }, 0x7000);
  assert.equal(ok.cc, 0);
  assert.equal(m.tapq(q).status.irqEnabled, true);
});

test('7.3 #25: reset latency 60 ms, polled every 20 ms, done on the 4th poll with E=1 I=0', () => {
  const { m, clock } = makeMachine('minimal');
  const q = apqn(0, 2);
  m.aqic(q, { ir: true, isc: 3 }, 0x100);
  assert.equal(m.zapq(q).cc, 0);
  const rcs: number[] = [];
  for (;;) {
    const t = m.tapq(q);
    rcs.push(t.status.responseCode);
    if (t.status.responseCode !== AP_RESPONSE.RESET_IN_PROGRESS && t.status.responseCode !== AP_RESPONSE.BUSY) {
      assert.ok(t.status.queueEmpty && !t.status.irqEnabled);
      break;
    }
    clock.advance(20 * MS);
  }
  assert.deepEqual(rcs, [2, 2, 2, 0]);
  assert.equal(clock.t, 60 * MS);
});

test('7.3 #26: adapter removed while a reset runs: reset verification sees RC 01', () => {
  const { m, clock } = makeMachine('minimal');
  m.zapq(apqn(1, 0));
  clock.advance(20 * MS);
  m.hmc.removeAdapter(1);
  clock.advance(60 * MS);
  assert.equal(m.tapq(apqn(1, 0)).status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
});

test('7.3 #29: card config off: TAPQ on all its queues returns RC 03', () => {
  const { m } = makeMachine('default');
  assert.equal(m.sclpConfigureAp(5, false), true);
  for (const d of [0, 4, 0x47, 0xab]) {
    const t = m.tapq(apqn(5, d));
    assert.equal(t.cc, 3);
    assert.equal(t.status.responseCode, AP_RESPONSE.DECONFIGURED);
  }
  // The default profile also has a card that boots in standby.
  const standby = m.installedAdapters().find((id) => m.adapter(id)!.inConfig && !m.adapter(id)!.configured && id !== 5)!;
  assert.equal(m.tapq(apqn(standby, 0)).status.responseCode, AP_RESPONSE.DECONFIGURED);
});

test('7.3 #30: depth 8 (qd 7): 8 NQAPs succeed, F=1 after the 8th, a 9th gets RC 0x10 cc 3', () => {
  const { m, clock } = makeMachine('default');
  const q = apqn(5, 4);
  assert.equal(decodeHwinfo(m.tapq(q).hwinfo).qd, 7);
  for (let i = 1; i <= 8; i++) {
    const r = m.nqap(q, BigInt(i), new Uint8Array(16));
    assert.equal(r.cc, 0);
    assert.equal(r.status.queueFull, i === 8);
  }
  const ninth = m.nqap(q, 9n, new Uint8Array(16));
  assert.equal(ninth.cc, 3);
  assert.equal(ninth.status.responseCode, AP_RESPONSE.Q_FULL);
  assert.equal(ninth.status.queueFull, true);
  clock.advance(MS);
  assert.equal(m.dqap(q).cc, 0);
  assert.equal(m.nqap(q, 9n, new Uint8Array(16)).cc, 0);
});

test('7.3 #31: forgotten requests: DQAP returns RC 0x10 with E=1 while 3 were in flight', () => {
  const { m, clock } = makeMachine('default');
  const q = apqn(5, 4);
  for (let i = 0; i < 3; i++) m.nqap(q, BigInt(i), new Uint8Array(4));
  m.faults.forgetRequests(q);
  clock.advance(MS);
  const r = m.dqap(q);
  assert.equal(r.cc, 3);
  assert.equal(r.status.responseCode, AP_RESPONSE.NO_PENDING_REPLY);
  assert.equal(r.status.queueEmpty, true);
});

test('7.3 #34: without APFT the APQNs still answer TAPQ but the T bit is a specification exception', () => {
  const { m } = makeMachine('default', (p) => (p.facilities.apft = false));
  assert.equal(m.tapq(apqn(5, 4)).cc, 0);
  assert.throws(() => m.tapq(apqn(5, 4), { t: true }), ProgramException);
  assert.equal(m.hasStfleFacility(15), false);
});

test('maximal profile: boot and a full TAPQ sweep of 65,536 queues stay cheap (no per-queue state)', () => {
  const { m } = makeMachine('maximal');
  let ok = 0;
  for (let c = 0; c < 256; c++) for (let d = 0; d < 256; d++) if (m.tapq(apqn(c, d)).cc === 0) ok++;
  assert.equal(ok, 65536);
  assert.equal(m.nextEventTime(), undefined);
  assert.equal(m.inspectQueue(apqn(255, 255)).outstanding, 0);
});
