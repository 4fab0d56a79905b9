// A live host runs for weeks: what it frees must become garbage. Counted, not timed:
// after hundreds of mdev lifecycles the object registry, the snapshot logs and the
// sysfs tree hold exactly what they held after the first one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHmc, bootLiveHost, newGuestSet } from '../../src/live/state.js';
import { fastForward, runTaskFast } from '../../src/live/driver.js';
import { builtinProfileJson } from '../../src/hw/index.js';
import { snapshotLogSizes } from '../../src/kernel/index.js';
import type { KDir, KNode } from '../../src/sysfs/index.js';

function countNodes(n: KNode): number {
  if (n.type !== 'dir') return 1;
  let c = 1;
  for (const ch of (n as KDir).children.values()) c += countNodes(ch);
  return c;
}

test('mdev create/assign/read/remove cycles leave the registry, the snapshot logs and sysfs as they were', () => {
  const h = bootLiveHost(builtinProfileJson('default'));
  const { k, sysfs } = h;
  const base = '/sys/devices/vfio_ap/matrix';
  const uuid = '11111111-2222-3333-4444-555555555555';
  const w = (path: string, data: string): void => {
    const r = runTaskFast(k, 'bash', sysfs.write_gen(k, path, data));
    assert.deepEqual(r, { ok: true, count: data.length }, `${path} <- ${data}`);
  };
  // APQN 05.0005 from the default drivers to vfio_ap.
  w('/sys/bus/ap/apmask', '-5');
  w('/sys/bus/ap/aqmask', '-5');
  const cycle = (): void => {
    w(`${base}/mdev_supported_types/vfio_ap-passthrough/create`, uuid);
    w(`${base}/${uuid}/assign_adapter`, '5');
    w(`${base}/${uuid}/assign_domain`, '5');
    const r = runTaskFast(k, 'cat', sysfs.read_gen(k, `${base}/${uuid}/matrix`));
    assert.equal(r.ok, true);
    w(`${base}/${uuid}/remove`, '1');
  };
  cycle();
  const before = { records: k.lifetime.records, nodes: countNodes(sysfs.root), logs: snapshotLogSizes() };
  for (let i = 0; i < 300; i++) cycle();
  assert.deepEqual({ records: k.lifetime.records, nodes: countNodes(sysfs.root), logs: snapshotLogSizes() }, before);
  assert.deepEqual(before.logs, { written: 0, reshaped: 0 });
  assert.equal(k.bugs.length, 0);
});

test('guest start/stop and HMC adapter loss/return cycles: nothing accumulates (scheduler choices are counted, not kept)', () => {
  const h = bootLiveHost(builtinProfileJson('default'));
  const { k, sysfs } = h;
  const guests = newGuestSet(h);
  const w = (path: string, data: string): void => {
    const r = runTaskFast(k, 'bash', sysfs.write_gen(k, path, data));
    assert.deepEqual(r, { ok: true, count: data.length }, `${path} <- ${data}`);
  };
  const base = '/sys/devices/vfio_ap/matrix';
  const uuid = '11111111-2222-3333-4444-555555555555';
  w('/sys/bus/ap/apmask', '-5');
  w('/sys/bus/ap/aqmask', '-5');
  w(`${base}/mdev_supported_types/vfio_ap-passthrough/create`, uuid);
  w(`${base}/${uuid}/assign_adapter`, '5');
  w(`${base}/${uuid}/assign_domain`, '5');
  const cycle = (): void => {
    void guests.start('vm1', uuid);
    assert.equal(applyHmc(h.machine, 'remove-adapter', 5), true);
    fastForward(k, k.now() + 30e9); // past the next AP bus scan
    assert.equal(applyHmc(h.machine, 'add-adapter', 5), true);
    fastForward(k, k.now() + 30e9);
    void guests.stop('vm1');
  };
  cycle();
  const choicesBefore = k.choiceCount;
  const before = { records: k.lifetime.records, nodes: countNodes(sysfs.root), logs: snapshotLogSizes(), tasks: k.liveTasks().length };
  for (let i = 0; i < 100; i++) cycle();
  assert.deepEqual({ records: k.lifetime.records, nodes: countNodes(sysfs.root), logs: snapshotLogSizes(), tasks: k.liveTasks().length }, before);
  // The guest's vCPUs and the bus scans did make scheduling choices; none was kept.
  assert.ok(k.choiceCount > choicesBefore);
  assert.equal(k.choices.length, 0);
  assert.equal(k.bugs.length, 0);
  // Adapter 5 came back and went back to the mdev: the guest-visible matrix is whole.
  assert.equal(runTaskFast(k, 'cat', sysfs.read_gen(k, `${base}/${uuid}/matrix`)).ok, true);
  assert.deepEqual(runTaskFast(k, 'cat', sysfs.read_gen(k, `${base}/${uuid}/matrix`)), { ok: true, data: '05.0005\n' });
});
