import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as apsim from '../src/index.js';

test('the library entry exposes the Host and every layer', () => {
  const h = apsim.Host.boot({ profile: 'minimal' });
  assert.equal(h.read('/sys/bus/ap/apmask'), '0x' + 'f'.repeat(64) + '\n');
  assert.equal(h.tryWrite('/sys/bus/ap/apmask', '+256'), apsim.E.EINVAL);
  assert.equal(apsim.strerror(apsim.E.EADDRINUSE), 'Address already in use');
  for (const ns of ['hw', 'sysfs', 'base', 'ap', 'kvm', 'vfio', 'qemu', 'vfio_ap', 'check'] as const) assert.equal(typeof apsim[ns], 'object', ns);
  assert.equal(typeof apsim.vfio_ap.vfio_ap_check_invariants, 'function');
});

test('the README\'s library examples work as written: a host with a guest, an HMC change, a checker campaign', () => {
  const TYPE = '/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
  const uuid = '11111111-2222-3333-4444-555555555555';
  const h = apsim.Host.boot({ profile: 'default' });
  h.write('/sys/bus/ap/apmask', '-5,-6\n');
  assert.equal(h.tryWrite('/sys/bus/ap/apmask', '+256'), 22);
  h.write(`${TYPE}/create`, uuid);
  h.write(`/sys/devices/vfio_ap/matrix/${uuid}/assign_adapter`, '5');
  h.write(`/sys/devices/vfio_ap/matrix/${uuid}/assign_domain`, '4');
  const q = h.launchGuest({ mdevs: [uuid] });
  assert.equal(h.read(`/sys/devices/vfio_ap/matrix/${uuid}/guest_matrix`), '05.0004\n');
  assert.ok(h.ls('/sys/bus/ap/devices').includes('card06'));
  h.machine.hmc.removeAdapter(6);
  h.settle();
  assert.ok(!h.ls('/sys/bus/ap/devices').includes('card06'));
  h.advance(30e9);
  assert.deepEqual(h.k.bugs, []);
  assert.match(h.k.dmesg(), /vfio_ap_mdev 11111111-2222-3333-4444-555555555555: MDEV: created\n/);
  assert.ok(h.sysfs.uevents.list().length > 0);
  assert.equal(typeof q, 'object');

  const { check } = apsim;
  check.registerBuiltins();
  const r = check.runCampaign({ scenario: check.getScenario('vfio-ap:assign-vs-apmask')!, strategy: 'portfolio', seed: 1, executions: 100 });
  assert.equal(r.failure, null);
  assert.equal(r.coverage.executions, 100);
  assert.equal(r.coverage.lockOrder!.rules, 'vfio-ap-locking');
  assert.deepEqual(r.coverage.lockOrder!.violations, []);
  const m = check.runCampaign({ scenario: check.getScenario('vfio-ap:assign-vs-apmask')!, strategy: 'portfolio', seed: 1, executions: 100, mutant: 'seed003-in-use-blocking-abba' });
  assert.equal(m.failure!.bug.kind, 'lockdep');
  assert.match(m.failure!.report, /^apsim check: lockdep in scenario vfio-ap:assign-vs-apmask \(mutant seed003-in-use-blocking-abba\)\n/);
  assert.match(m.failure!.token, /^apsim1-/);
  assert.equal(apsim.vfio_ap.VFIO_AP_LOCK_ORDER.order[0], 'ap_attr_mutex');
});
