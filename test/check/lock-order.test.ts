import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getScenario, listMutants, listScenarios, lockOrderFindings, lockOrderSummary, mergeLockOrder, registerBuiltins, runCampaign, LOCKS5_ORDER, type LockOrderCoverage } from '../../src/check/index.js';
import { VFIO_AP_LOCK_ORDER } from '../../src/vfio_ap/lock_order.js';
import { checkCli as cli } from './helpers.js';

registerBuiltins();

test('every built-in scenario declares its documented lock order: vfio_ap and AP-bus ones the driver\'s, locks5 its own', () => {
  for (const s of listScenarios()) assert.equal(s.lockOrder, s.name.startsWith('locks5') ? LOCKS5_ORDER : VFIO_AP_LOCK_ORDER, s.name);
});

test('the library does every documented nesting and nothing against either order', () => {
  const results = listScenarios().map((s) => runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: 1 }));
  const summary = lockOrderSummary(results);
  assert.deepEqual(
    summary.map((c) => [c.rules, c.nestings.filter((n) => !n.observed).map((n) => `${n.outer} -> ${n.inner}`), c.violations.length]),
    [
      ['locks5', [], 0],
      ['vfio-ap-locking', [], 0],
    ],
  );
  assert.deepEqual(lockOrderFindings(summary, true), []);
});

test('the lock-order mutants go against the documented order, at the first site that does; the others do not', () => {
  const want: Record<string, string[]> = {
    'seed003-assign-guests-first': ['&matrix_dev->guests_lock > ap_perms_mutex @ assign: assign_adapter_store'],
    'ap-stub-assign-guests-first': ['&matrix_dev->guests_lock > ap_attr_mutex @ assign: '],
    'seed003-in-use-blocking-abba': ['&matrix_dev->guests_lock > ap_attr_mutex @ bash: ', '&matrix_dev->mdevs_lock > ap_attr_mutex @ bash: ', '&kvm->lock > ap_attr_mutex @ assign-dom3: '],
    'seed004-hook-rwsem-under-matrix-lock': [
      '&matrix_dev->mdevs_lock > &kvm->arch.crypto.pqap_hook_rwsem @ qemu-system-s39: qemu main > vfio_group_ioctl_get_device_fd > vfio_df_group_open > vfio-ap open_device',
    ],
  };
  for (const m of listMutants()) {
    const r = runCampaign({ scenario: getScenario(m.scenarios[0]!)!, strategy: 'portfolio', seed: 1, executions: 2000, mutant: m.name, minimise: false });
    assert.ok(r.failure, m.name);
    const got = r.coverage.lockOrder!.violations.map((v) => `${v.outer} > ${v.inner} @ ${v.site.comm}: ${v.site.ops.join(' > ')}`);
    assert.deepEqual(got, want[m.name] ?? [], m.name);
  }
});

test('mergeLockOrder and lockOrderFindings: a nesting counts once any campaign did it; violations once per pair', () => {
  const c = (observed: boolean[], violations: string[]): LockOrderCoverage => ({
    rules: 'r',
    source: 'doc',
    order: ['A', 'B', 'C'],
    nestings: [
      { outer: 'A', inner: 'B', observed: observed[0]! },
      { outer: 'B', inner: 'C', observed: observed[1]! },
    ],
    violations: violations.map((p, i) => ({ outer: p[0]!, inner: p[1]!, site: { comm: `t${p}`, pid: 7, call: 'mutex_lock', ops: p === 'CA' ? ['f', 'g'] : [] }, execution: i * 10 })),
  });
  const m = mergeLockOrder([null, c([true, false], ['CA']), c([false, false], ['CA', 'BA'])])!;
  assert.deepEqual(m.nestings.map((n) => n.observed), [true, false]);
  assert.deepEqual(m.violations.map((v) => v.site.comm), ['tCA', 'tBA']);
  assert.equal(mergeLockOrder([null, null]), null);
  assert.throws(() => mergeLockOrder([c([true, true], []), { ...c([true, true], []), rules: 's' }]), /"s" cannot be merged into "r"/);
  assert.deepEqual(lockOrderFindings([m], true), [
    'lock order r: A -> B -> C (doc)',
    '  against it: A acquired while holding C (first by tCA/7 in f > g: mutex_lock; execution 1)',
    '  against it: A acquired while holding B (first by tBA/7: mutex_lock; execution 11)',
    '  never done: B held while acquiring C',
  ]);
  // Nestings are owed only by a whole-library run.
  assert.deepEqual(lockOrderFindings([{ ...m, violations: [] }], false), []);
});

test('apsim check prints what went against the order under its scenario, before the report; --json carries it', async () => {
  const r = await cli('--mutant', 'seed003-assign-guests-first');
  assert.equal(r.code, 1);
  const lines = r.out.split('\n');
  const i = lines.findIndex((l) => l.startsWith('lock order locks5: '));
  assert.deepEqual(lines.slice(i - 1, i + 4), [
    'locks5: 1 executions, 46 steps, 4 lock classes, 5 lockdep edges, 7 chains; preemptions 0/1/2/3/4+: 1/0/0/0/0; documented nestings 3/4, 1 against the order',
    'lock order locks5: ap_perms_mutex -> &matrix_dev->guests_lock -> &kvm->lock -> &matrix_dev->mdevs_lock (vfio-ap-locking.rst as of seed 003)',
    '  against it: ap_perms_mutex acquired while holding &matrix_dev->guests_lock (first by assign/100 in assign_adapter_store: mutex_lock; execution 1)',
    '',
    'apsim check: lockdep in scenario locks5 (mutant seed003-assign-guests-first)',
  ]);
  const j = JSON.parse((await cli('--mutant', 'seed003-assign-guests-first', '--json')).out);
  assert.equal(j.ok, false);
  assert.deepEqual(j.lockOrder[0].violations, [
    { outer: '&matrix_dev->guests_lock', inner: 'ap_perms_mutex', site: { comm: 'assign', pid: 100, call: 'mutex_lock', ops: ['assign_adapter_store'] }, execution: 0 },
  ]);
  assert.equal(j.lockOrderFindings.length, 2);
  const clean = JSON.parse((await cli('--scenario', 'vfio-ap:assign-vs-apmask', '--executions', '5', '--json')).out);
  assert.equal(clean.ok, true);
  assert.deepEqual(clean.lockOrderFindings, []);
  assert.equal(clean.lockOrder[0].rules, 'vfio-ap-locking');
});
