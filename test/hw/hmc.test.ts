import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AP_RESPONSE, HmcError, apqn, maskIds, type ConfigChangeEvent } from '../../src/hw/index.js';
import { MS, makeMachine } from './helpers.js';

test('add/remove adapter and domains change QCI and notify synchronously', () => {
  const { m, clock } = makeMachine('default');
  const ev: ConfigChangeEvent[] = [];
  m.onConfigChange((e) => ev.push(e));
  clock.t = 7;
  assert.equal(m.hmc.removeAdapter(6), true);
  assert.equal(m.hmc.removeAdapter(6), false, 'no-op is not a change');
  assert.ok(!maskIds(m.qci().apm).includes(6));
  assert.equal(m.tapq(apqn(6, 4)).status.responseCode, AP_RESPONSE.Q_NOT_AVAIL);
  assert.equal(m.hmc.addAdapter(7), true);
  assert.equal(m.tapq(apqn(7, 4)).cc, 0);
  assert.equal(m.hmc.addUsageDomain(0x30), true);
  assert.equal(m.tapq(apqn(5, 0x30)).cc, 0);
  assert.equal(m.hmc.removeUsageDomain(4), true);
  assert.equal(m.tapq(apqn(5, 4)).status.responseCode, 1);
  assert.equal(m.hmc.addControlDomain(0x60), true);
  assert.equal(m.hmc.removeControlDomain(0), true);
  assert.ok(maskIds(m.qci().adm).includes(0x60) && !maskIds(m.qci().adm).includes(0));
  assert.deepEqual(ev, [
    { time: 7, kind: 'adapter', id: 6, added: false },
    { time: 7, kind: 'adapter', id: 7, added: true },
    { time: 7, kind: 'usage-domain', id: 0x30, added: true },
    { time: 7, kind: 'usage-domain', id: 4, added: false },
    { time: 7, kind: 'control-domain', id: 0x60, added: true },
    { time: 7, kind: 'control-domain', id: 0, added: false },
  ]);
});

test('HMC rejects unknown adapters and ids out of range', () => {
  const { m } = makeMachine('default');
  assert.throws(() => m.hmc.addAdapter(0x20), HmcError);
  assert.throws(() => m.hmc.addAdapter(0x40), /adapter id 64 out of range 0..63/);
  assert.throws(() => m.hmc.addUsageDomain(256), /domain 256 out of range 0..255/);
  assert.throws(() => m.hmc.configureCard(0x30, false), /not installed/);
});

test('queues of a removed and re-added adapter or domain come back empty', () => {
  const { m, clock } = makeMachine();
  const q = apqn(0, 1);
  m.aqic(q, { ir: true, isc: 1 }, 0x100);
  m.nqap(q, 1n, new Uint8Array(1));
  m.hmc.removeAdapter(0);
  m.hmc.addAdapter(0);
  clock.advance(MS);
  const t = m.tapq(q);
  assert.equal(t.cc, 0);
  assert.equal(t.status.queueEmpty, true);
  assert.equal(t.status.irqEnabled, false);
  m.nqap(q, 2n, new Uint8Array(1));
  m.hmc.removeUsageDomain(1);
  assert.equal(m.dqap(q).status.responseCode, 1);
  m.hmc.addUsageDomain(1);
  assert.equal(m.dqap(q).status.queueEmpty, true);
  assert.equal(m.nextEventTime(), undefined);
});

test('card config off: RC 03 on all its queues (info valid), work lost; back on: fresh queues', () => {
  const { m, clock } = makeMachine();
  const ev: unknown[] = [];
  m.onConfigChange((e) => ev.push(e));
  m.nqap(apqn(0, 0), 1n, new Uint8Array(1));
  assert.equal(m.hmc.configureCard(0, false), true);
  for (let d = 0; d < 4; d++) {
    const t = m.tapq(apqn(0, d), { t: true });
    assert.equal(t.cc, 3);
    assert.equal(t.status.responseCode, AP_RESPONSE.DECONFIGURED);
    assert.notEqual(t.hwinfo, 0n);
  }
  assert.equal(m.nqap(apqn(0, 0), 2n, new Uint8Array(1)).status.responseCode, 3);
  assert.equal(m.zapq(apqn(0, 0)).status.responseCode, 3);
  assert.equal(m.tapq(apqn(1, 0)).cc, 0, 'other cards unaffected');
  assert.equal(m.adapter(0)!.configured, false);
  assert.equal(m.adapter(0)!.inConfig, true, 'stays in QCI');
  assert.deepEqual(ev, [], 'no QCI change');
  assert.equal(m.hmc.configureCard(0, true), true);
  clock.advance(MS);
  const r = m.dqap(apqn(0, 0));
  assert.equal(r.status.responseCode, 0x10);
  assert.equal(r.status.queueEmpty, true);
  // SCLP path used by the kernel's cardXX/config
  assert.equal(m.sclpConfigureAp(1, false), true);
  assert.equal(m.tapq(apqn(1, 0)).status.responseCode, 3);
  assert.equal(m.sclpConfigureAp(1, true), true);
  m.hmc.removeAdapter(1);
  assert.equal(m.sclpConfigureAp(1, true), false, 'not in the LPAR configuration');
});

test('checkstop: RC 04 while on; config off takes precedence', () => {
  const { m } = makeMachine();
  assert.equal(m.hmc.checkstop(1, true), true);
  assert.equal(m.hmc.checkstop(1, true), false);
  const t = m.tapq(apqn(1, 2));
  assert.equal(t.status.responseCode, AP_RESPONSE.CHECKSTOPPED);
  assert.equal(t.cc, 3);
  assert.notEqual(t.hwinfo, 0n);
  assert.equal(m.adapter(1)!.checkstopped, true);
  m.hmc.configureCard(1, false);
  assert.equal(m.tapq(apqn(1, 2)).status.responseCode, 3);
  m.hmc.configureCard(1, true);
  m.hmc.checkstop(1, false);
  assert.equal(m.tapq(apqn(1, 2)).cc, 0);
});

test('property: random HMC sequences keep QCI consistent with the configuration and notifications', () => {
  type Op = { op: 'adapter' | 'usage-domain' | 'control-domain'; id: number; on: boolean } | { op: 'config' | 'chkstop'; id: number; on: boolean };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('adapter' as const), id: fc.integer({ min: 0, max: 12 }), on: fc.boolean() }),
    fc.record({ op: fc.constantFrom('usage-domain' as const, 'control-domain' as const), id: fc.integer({ min: 0, max: 255 }), on: fc.boolean() }),
    fc.record({ op: fc.constantFrom('config' as const, 'chkstop' as const), id: fc.integer({ min: 0, max: 12 }), on: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 0, max: 255 }), (ops, probeDomain) => {
      const { m } = makeMachine('default');
      const p = m.profile;
      const model = {
        adapter: new Set(p.config.adapters),
        'usage-domain': new Set(p.config.usageDomains),
        'control-domain': new Set(p.config.controlDomains),
      };
      const configured = new Map(p.adapters.map((a) => [a.id, a.configured]));
      const chk = new Map(p.adapters.map((a) => [a.id, a.checkstopped]));
      let notified = 0;
      let expectedNotifications = 0;
      m.onConfigChange((e) => {
        notified++;
        assert.equal(model[e.kind].has(e.id), e.added, 'listener sees the new state');
      });
      for (const o of ops) {
        if (o.op === 'config' || o.op === 'chkstop') {
          const changed = o.op === 'config' ? m.hmc.configureCard(o.id, o.on) : m.hmc.checkstop(o.id, o.on);
          const map = o.op === 'config' ? configured : chk;
          assert.equal(changed, map.get(o.id) !== o.on);
          map.set(o.id, o.on);
          continue;
        }
        const set = model[o.op];
        const before = set.has(o.id);
        if (o.on) set.add(o.id);
        else set.delete(o.id);
        const h = m.hmc;
        const call =
          o.op === 'adapter' ? (o.on ? h.addAdapter(o.id) : h.removeAdapter(o.id)) : o.op === 'usage-domain' ? (o.on ? h.addUsageDomain(o.id) : h.removeUsageDomain(o.id)) : o.on ? h.addControlDomain(o.id) : h.removeControlDomain(o.id);
        assert.equal(call, before !== o.on);
        if (before !== o.on) expectedNotifications++;
      }
      const q = m.qci();
      assert.deepEqual(maskIds(q.apm), [...model.adapter].sort((a, b) => a - b));
      assert.deepEqual(maskIds(q.aqm), [...model['usage-domain']].sort((a, b) => a - b));
      assert.deepEqual(maskIds(q.adm), [...model['control-domain']].sort((a, b) => a - b));
      assert.equal(notified, expectedNotifications);
      // TAPQ agrees with QCI: the valid APQNs are exactly APM x AQM (Cartesian product).
      for (const a of p.adapters) {
        const rc = m.tapq(apqn(a.id, probeDomain)).status.responseCode;
        const expected = !model.adapter.has(a.id) || !model['usage-domain'].has(probeDomain) ? 1 : !configured.get(a.id) ? 3 : chk.get(a.id) ? 4 : 0;
        assert.equal(rc, expected, `card ${a.id} domain ${probeDomain}`);
      }
    }),
    { numRuns: 200 },
  );
});
