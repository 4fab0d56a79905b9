import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { device_add, device_del, device_children, type Device } from '../../src/base/index.js';
import { makeWorld, newCard, newQueue, type World } from './helpers.js';

type Op =
  | { kind: 'addCard'; id: number }
  | { kind: 'addQueue'; card: number; dom: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'bind'; drv: number; pick: number }
  | { kind: 'unbind'; drv: number; pick: number }
  | { kind: 'vfio'; pick: number }
  | { kind: 'autoprobe'; on: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('addCard' as const), id: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('addQueue' as const), card: fc.integer({ min: 0, max: 5 }), dom: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('bind' as const), drv: fc.integer({ min: 0, max: 2 }), pick: fc.nat() }),
  fc.record({ kind: fc.constant('unbind' as const), drv: fc.integer({ min: 0, max: 2 }), pick: fc.nat() }),
  fc.record({ kind: fc.constant('vfio' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('autoprobe' as const), on: fc.boolean() }),
);

function apply(w: World, live: Device[], op: Op): void {
  const s = w.core.sysfs;
  const drvs = [w.cex4card, w.cex4queue, w.vfio_ap];
  const pick = (n: number): Device | undefined => (live.length ? live[n % live.length] : undefined);
  switch (op.kind) {
    case 'addCard': {
      const name = `card${op.id.toString(16).padStart(2, '0')}`;
      if (live.some((d) => d.name === name)) return;
      const c = newCard(w, op.id);
      w.run(device_add(c));
      live.push(c);
      return;
    }
    case 'addQueue': {
      const card = live.find((d) => d.name === `card${op.card.toString(16).padStart(2, '0')}`);
      if (!card) return;
      const q = newQueue(w, card, op.dom);
      if (live.some((d) => d.name === q.name)) return;
      w.run(device_add(q));
      live.push(q);
      return;
    }
    case 'remove': {
      const d = pick(op.pick);
      if (!d || device_children(d).length) return;
      w.run(device_del(d));
      live.splice(live.indexOf(d), 1);
      return;
    }
    case 'bind':
    case 'unbind': {
      const d = pick(op.pick);
      if (!d) return;
      const r = s.write(`/sys/bus/ap/drivers/${drvs[op.drv]!.name}/${op.kind}`, `${d.name}\n`);
      assert.ok(r.ok || [16, 19].includes(r.errno), `unexpected errno ${JSON.stringify(r)}`);
      return;
    }
    case 'vfio': {
      const d = pick(op.pick);
      if (!d) return;
      if (w.forVfio.has(d.name)) w.forVfio.delete(d.name);
      else w.forVfio.add(d.name);
      return;
    }
    case 'autoprobe':
      s.write('/sys/bus/ap/drivers_autoprobe', op.on ? '1' : '0');
      return;
  }
}

function check(w: World, live: Device[]): void {
  const s = w.core.sysfs;
  const drvs = [w.cex4card, w.cex4queue, w.vfio_ap];
  assert.deepEqual(s.readdir('/sys/bus/ap/devices'), live.map((d) => d.name).sort());
  for (const d of live) {
    assert.equal(s.readlink(`/sys/bus/ap/devices/${d.name}`), `../../..${d.devpath}`);
    const link = s.find(`${d.path}/driver`, false);
    if (d.driver) {
      assert.ok(link, `${d.name} bound but no driver link`);
      assert.equal(s.readlink(`${d.path}/driver`), `${'../'.repeat(d.path!.split('/').length - 2)}bus/ap/drivers/${d.driver.name}`);
      assert.equal(s.lookup(`${d.path}/driver`), d.driver.p!.kobj);
    } else assert.equal(link, null, `${d.name} unbound but has a driver link`);
    for (const drv of drvs) {
      const inDir = s.find(`/sys/bus/ap/drivers/${drv.name}/${d.name}`, false) !== null;
      assert.equal(inDir, d.driver === drv, `${d.name} in ${drv.name}/`);
    }
  }
  for (const drv of drvs) {
    const entries = s.readdir(`/sys/bus/ap/drivers/${drv.name}`).filter((n) => !['bind', 'unbind', 'uevent'].includes(n));
    assert.deepEqual(entries, live.filter((d) => d.driver === drv).map((d) => d.name).sort());
    assert.deepEqual([...drv.p!.devices].map((d) => d.name).sort(), entries);
  }
  assert.deepEqual(w.k.bugs, []);
  assert.equal(w.k.lockdep.stats().reports, 0);
}

test('random add/remove/bind/unbind keep links consistent with the binding state', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), fc.integer({ min: 1, max: 1000 }), (ops, seed) => {
      const w = makeWorld({ seed });
      const live: Device[] = [];
      for (const op of ops) {
        apply(w, live, op);
        check(w, live);
      }
      // Every bind/unbind pairs its uevents with the state: bind events minus unbind
      // events per device equals 1 for bound devices, 0 otherwise (removed devices: 0).
      const balance = new Map<string, number>();
      for (const e of w.core.sysfs.uevents.list()) {
        if (e.action === 'bind') balance.set(e.devpath, (balance.get(e.devpath) ?? 0) + 1);
        if (e.action === 'unbind') balance.set(e.devpath, (balance.get(e.devpath) ?? 0) - 1);
      }
      for (const d of live) assert.equal(balance.get(d.devpath!) ?? 0, d.driver ? 1 : 0);
    }),
    { numRuns: 150, seed: 42 },
  );
});
