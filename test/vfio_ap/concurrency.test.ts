import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from '../../src/host/index.js';
import { Lockdep, RandomStrategy, type KGen } from '../../src/kernel/index.js';
import { vfio_ap_check_invariants } from '../../src/vfio_ap/index.js';
import type { VfioApPieces } from '../../src/vfio_ap/pieces.js';

const U = '62177883-f1bb-47f0-914d-32a22e3a8804';
const M = `/sys/devices/vfio_ap/matrix/${U}`;

/**
 * Scenario 11 (seed 003): one task assigns adapter 1 to an mdev that has domain 2
 * while another reserves adapter 1 (and 0) for the host through apmask; aqmask
 * keeps domain 2, so 01.0002 becomes reserved if the mask write wins.
 */
function race(seed: number, lockdep: Lockdep, pieces: Partial<VfioApPieces> = {}, mask = '+0,+1') {
  const h = Host.boot({ profile: 'minimal', lockdep, strategy: new RandomStrategy(seed), stopOnBug: false, pieces: { vfio_ap: pieces } });
  const k = h.k;
  const w = (p: string, d: string) => {
    const r = h.sysfs.write(p, d);
    assert.ok(r.ok, `${p} <- ${d}: ${r.ok ? '' : r.errno}`);
  };
  w('/sys/bus/ap/apmask', '-1');
  w('/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create', U);
  w(`${M}/assign_domain`, '2');
  w('/sys/bus/ap/apmask', '-0'); // adapter 0 is free too: the writer reserves 0 and 1
  const results: Record<string, number> = {};
  const writer = (name: string, path: string, data: string) =>
    k.spawn(name, (function* (): KGen {
      const r = yield* h.sysfs.write_gen(k, path, data);
      results[name] = r.ok ? 0 : r.errno;
    })());
  writer('assign', `${M}/assign_adapter`, '1');
  writer('apmask', '/sys/bus/ap/apmask', mask);
  const st = k.run();
  return { h, st, results };
}

test('scenario 11: assign and an apmask write never deadlock; the mask write fails only if the APQN is really assigned', () => {
  const lockdep = new Lockdep();
  const winners = new Set<string>();
  for (let seed = 0; seed < 150; seed++) {
    const { h, st, results } = race(seed, lockdep);
    assert.equal(st, 'done', `seed ${seed}: ${h.k.bugs.map((b) => b.title).join('; ')}`);
    assert.deepEqual(h.k.bugs, [], `seed ${seed}`);
    assert.equal(results.assign === 0 || results.assign === 99 /* EADDRNOTAVAIL */, true, `seed ${seed}: assign never EBUSY/EAGAIN (${results.assign})`);
    if (results.assign === 0) {
      // assign won: the mask write must see 01.0002 in use.
      assert.equal(results.apmask, 16, `seed ${seed}`);
      assert.equal(h.read(`${M}/matrix`), '01.0002\n');
    } else {
      // the mask write won: the adapter became reserved before the assign validated.
      assert.equal(results.apmask, 0, `seed ${seed}`);
      assert.equal(h.read(`${M}/matrix`), '.0002\n');
    }
    assert.deepEqual(vfio_ap_check_invariants(h.vfio_ap!.md), []);
    winners.add(results.assign === 0 ? 'assign' : 'apmask');
  }
  assert.deepEqual([...winners].sort(), ['apmask', 'assign'], 'both orders happen across seeds');
  assert.deepEqual(lockdep.reports, [], 'lockdep clean across every execution');
});

test('seed 003 original design (reservation query takes the mask mutex inside the driver locks): lockdep reports the ABBA and some schedule deadlocks', () => {
  const lockdep = new Lockdep();
  let deadlocks = 0;
  for (let seed = 0; seed < 150; seed++) {
    const { h } = race(seed, lockdep, { assignLocking: 'query-takes-attr-mutex' });
    if (h.k.bugs.some((b) => b.kind === 'deadlock')) deadlocks++;
  }
  assert.equal(lockdep.reports.length, 1);
  assert.match(lockdep.reports[0]!.lines.join('\n'), /ap_attr_mutex[\s\S]*&matrix_dev->guests_lock/);
  assert.ok(deadlocks > 0, 'a real deadlock in some schedule');
});

test('seed 003 v18 (in_use uses trylock): no deadlock and no lockdep report, but a mask write that conflicts with nothing can fail with EBUSY', () => {
  const lockdep = new Lockdep();
  let spurious = 0;
  for (let seed = 0; seed < 150; seed++) {
    // Reserving adapter 0 conflicts with no mdev: it must succeed.
    const { st, results } = race(seed, lockdep, { assignLocking: 'query-takes-attr-mutex', inUseLocking: 'trylock' }, '+0');
    assert.equal(st, 'done', `seed ${seed}`);
    assert.equal(results.assign, 0);
    if (results.apmask === 16) spurious++;
  }
  assert.deepEqual(lockdep.reports, []);
  assert.ok(spurious > 0, 'EBUSY although nothing it reserves is assigned');
});

test('the fixed design: a mask write that conflicts with nothing always succeeds while an assign runs', () => {
  const lockdep = new Lockdep();
  for (let seed = 0; seed < 100; seed++) {
    const { st, results } = race(seed, lockdep, {}, '+0');
    assert.equal(st, 'done');
    assert.deepEqual(results, { assign: 0, apmask: 0 }, `seed ${seed}`);
  }
  assert.deepEqual(lockdep.reports, []);
});
