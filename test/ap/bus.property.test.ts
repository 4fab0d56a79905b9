import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Host } from '../../src/host/index.js';
import { NonDefaultDouble } from './helpers.js';
import { ap_parse_bitmap_str } from '../../src/ap/mask_str.js';
import { apqn, formatApqn, formatMask, testBit, type ApMask } from '../../src/hw/index.js';
import { Errno } from '../../src/kernel/index.js';

type Op =
  | { k: 'mask'; which: 'apmask' | 'aqmask'; s: string }
  | { k: 'hmc'; what: 'adapter' | 'domain'; id: number; add: boolean }
  | { k: 'config'; card: number; on: boolean }
  | { k: 'scan' }
  | { k: 'unbind'; card: number; dom: number };

const ids = fc.integer({ min: 0, max: 5 });
const maskStr = fc.oneof(
  fc.tuple(fc.constantFrom('+', '-'), ids, fc.option(ids)).map(([s, a, b]) => (b === null ? `${s}${a}` : `${s}${Math.min(a, b)}-${Math.max(a, b)}`)),
  fc.constantFrom('0xf0', '0xc', '0x8', '0x', 'ff', '+0,-1', '-0-3', '+256', '5,+6', 'zz'),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('mask' as const), which: fc.constantFrom('apmask' as const, 'aqmask' as const), s: maskStr }),
  fc.record({ k: fc.constant('hmc' as const), what: fc.constantFrom('adapter' as const, 'domain' as const), id: fc.integer({ min: 0, max: 1 }), add: fc.boolean() }).map((o) =>
    o.what === 'domain' ? { ...o, id: o.id * 2 + 1 } : o,
  ),
  fc.record({ k: fc.constant('config' as const), card: fc.integer({ min: 0, max: 1 }), on: fc.boolean() }),
  fc.constant({ k: 'scan' as const }),
  fc.record({ k: fc.constant('unbind' as const), card: fc.integer({ min: 0, max: 1 }), dom: fc.integer({ min: 0, max: 3 }) }),
);

function modelMask(cur: ApMask, s: string): ApMask | null {
  try {
    return ap_parse_bitmap_str(s, cur);
  } catch (e) {
    if (e instanceof Errno) return null;
    throw e;
  }
}

/** Invariants of the bus after every step (once notifications and scans have run). */
function check(h: Host, vfio: NonDefaultDouble, unbound: Set<string>, step: string): void {
  assert.deepEqual(h.k.bugs, [], step);
  const qci = h.machine.qci();
  const cards = new Set(h.ls('/sys/devices/ap').filter((n) => n.startsWith('card')));
  for (const a of [0, 1]) {
    const want = testBit(qci.apm, a) && [0, 1, 2, 3].some((d) => testBit(qci.aqm, d));
    assert.equal(cards.has(`card0${a}`), want, `${step}: card0${a}`);
  }
  const queues = new Set(h.ls('/sys/bus/ap/devices').filter((n) => n.includes('.')));
  for (const a of [0, 1])
    for (const d of [0, 1, 2, 3]) {
      const name = formatApqn(apqn(a, d));
      const exists = testBit(qci.apm, a) && testBit(qci.aqm, d);
      assert.equal(queues.has(name), exists, `${step}: ${name} exists`);
      if (!exists) continue;
      const q = h.ap.queue(apqn(a, d))!;
      const reserved = h.ap.ap_owned_by_def_drv(a, d);
      const want = unbound.has(name) ? null : reserved ? 'cex4queue' : vfio.drv.name;
      assert.equal(q.driver?.name ?? null, want, `${step}: ${name} bound to the driver its reservation says`);
      const link = h.sysfs.find(`/sys/bus/ap/devices/${name}/driver`, false);
      assert.equal(link !== null, want !== null, `${step}: ${name} driver link`);
    }
}

test('property: random mask writes, scans, HMC changes and unbinds keep bindings and devices consistent', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
      const h = Host.boot({ profile: 'minimal', vfio_ap: false });
      const vfio = new NonDefaultDouble(h);
      vfio.register(h);
      const masks = { apmask: h.ap.perms.apm, aqmask: h.ap.perms.aqm };
      const unbound = new Set<string>();
      check(h, vfio, unbound, 'boot');
      ops.forEach((op, i) => {
        const step = `#${i} ${JSON.stringify(op)}`;
        switch (op.k) {
          case 'mask': {
            const want = modelMask(masks[op.which], op.s);
            const rc = h.tryWrite(`/sys/bus/ap/${op.which}`, op.s);
            assert.equal(rc, want === null ? 22 : 0, step);
            const changed = want !== null && formatMask(want) !== formatMask(masks[op.which]);
            if (want) masks[op.which] = want;
            assert.equal(h.read(`/sys/bus/ap/${op.which}`), formatMask(masks[op.which]) + '\n', step);
            // A changing write re-probes queues whose reservation no longer matches their
            // driver; for an unbound queue that means: only if it is now reserved.
            if (changed)
              for (const n of [...unbound]) if (h.ap.ap_owned_by_def_drv(parseInt(n, 16), parseInt(n.slice(3), 16))) unbound.delete(n);
            break;
          }
          case 'hmc': {
            const hmc = h.machine.hmc;
            if (op.what === 'adapter') {
              if (op.add) hmc.addAdapter(op.id);
              else hmc.removeAdapter(op.id);
            } else if (op.add) hmc.addUsageDomain(op.id);
            else hmc.removeUsageDomain(op.id);
            h.settle(); // the CHSC notification forces a rescan
            for (const n of [...unbound]) if (!h.ap.queues.has(apqn(parseInt(n, 16), parseInt(n.slice(3), 16)))) unbound.delete(n);
            break;
          }
          case 'config':
            // Only cards that exist have a config file.
            assert.equal(h.tryWrite(`/sys/devices/ap/card0${op.card}/config`, op.on ? '1' : '0'), h.ap.card(op.card) ? 0 : 2, step);
            break;
          case 'scan':
            h.write('/sys/bus/ap/scans', '1');
            break;
          case 'unbind': {
            const name = formatApqn(apqn(op.card, op.dom));
            const q = h.ap.queue(apqn(op.card, op.dom));
            if (!q?.driver) break;
            h.write(`/sys/bus/ap/drivers/${q.driver.name}/unbind`, name);
            unbound.add(name);
            break;
          }
        }
        h.advance(100_000_000);
        check(h, vfio, unbound, step);
      });
    }),
    { numRuns: 60 },
  );
});
