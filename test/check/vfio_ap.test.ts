import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMutantReplays, checkCli as cli } from './helpers.js';
import { getScenario, listScenarios, registerBuiltins, runCampaign } from '../../src/check/index.js';

registerBuiltins();

const vfioApMutants: Record<string, RegExp> = {
  'seed000-kvm-ref-after-notifier': /refcount|use-after-free|I5: .*not referenced by both VFIO and the driver/,
  'seed001-driver-put-last-under-group-lock': /apsim check: deadlock in scenario vfio-ap:vm-destroy-vs-close[^]*deadlock: close-B \[mutex_lock\(&group->group_lock\)\]/,
  'seed003-in-use-blocking-abba': /possible circular locking dependency/,
  'seed003-v18-in-use-trylock': /a mask write that conflicts with nothing failed with EBUSY/,
  'seed004-v3-remove-ebusy-leak': /still on mdev_list after its remove returned/,
  'seed004-hook-rwsem-under-matrix-lock': /possible circular locking dependency[^]*rlock\(&kvm->arch\.crypto\.pqap_hook_rwsem\)/,
  'mainline-second-open-steals-hook': /pqap hook does not point at this mdev|RC 01/,
  'mainline-lost-cdoms-stay-plugged': /I3: .*shadow ADM|control domain 3 the host lost/,
};

test('every vfio_ap mutant is found by apsim check --mutant (exit 1) with the expected bug kind', async () => {
  for (const [name, kind] of Object.entries(vfioApMutants)) {
    const r = await cli('--mutant', name);
    assert.equal(r.code, 1, name);
    assert.match(r.out + r.err, kind, name);
  }
});

test('a vfio_ap mutant report replays byte for byte', async () => {
  await assertMutantReplays('seed004-v3-remove-ebusy-leak');
});

test('seed 003: lockdep reports the inversion in execution 1', () => {
  const r = runCampaign({ scenario: getScenario('vfio-ap:assign-vs-apmask')!, strategy: 'portfolio', seed: 1, executions: 100, mutant: 'seed003-in-use-blocking-abba' });
  assert.ok(r.failure);
  assert.equal(r.coverage.executions, 1);
  assert.match(r.failure.report, /possible circular locking dependency/);
});

test('the vfio_ap library is clean with the default pieces', () => {
  const lib = listScenarios().filter((s) => s.tags?.includes('vfio_ap'));
  assert.ok(lib.length >= 20);
  for (const name of ['vfio-ap:assign-vs-apmask', 'vfio-ap:pqap-vs-close-vs-remove', 'vfio-ap:vm-destroy-vs-close', 'vfio-ap:vm-destroy-vs-open', 'vfio-ap:probe-remove-vs-hotplug-vs-cfgchg', 'vfio-ap:remove-while-in-use'])
    assert.ok(lib.some((s) => s.name === name), name);
  for (const s of lib) {
    const r = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: 15 });
    assert.equal(r.failure, null, `${s.name}: ${r.failure?.report ?? ''}`);
  }
});

test('apsim check --exhaustive proves a vfio_ap pair', async () => {
  const e = await cli('--exhaustive', '--scenario', 'vfio-ap-pair:read-status+read-matrix');
  assert.equal(e.code, 0);
  assert.match(e.out, /complete \(proven\)/);
});

test('every scenario flagged exhaustive is proven: DPOR completes, clean, within 10,000 executions', () => {
  const proven = listScenarios().filter((s) => s.exhaustive);
  // Every AP-bus and vfio_ap operation pair among them.
  assert.ok(proven.length >= 124, `${proven.length}`);
  for (const s of listScenarios()) if (s.name.startsWith('ap-pair:') || s.name.startsWith('vfio-ap-pair:')) assert.ok(s.exhaustive, `${s.name} is not flagged exhaustive`);
  for (const s of proven) {
    const r = runCampaign({ scenario: s, strategy: 'dpor', seed: 1, executions: 10_000, minimise: false });
    assert.equal(r.failure, null, `${s.name}: ${r.failure?.report ?? ''}`);
    assert.equal(r.complete, true, `${s.name}: not complete in 10,000 executions`);
  }
});
