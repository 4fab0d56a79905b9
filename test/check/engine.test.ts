import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lockdep } from '../../src/kernel/index.js';
import {
  RandomExplorer,
  decodeToken,
  encodeToken,
  getMutant,
  getScenario,
  listMutants,
  locks5,
  minimise,
  primaryBug,
  registerBuiltins,
  renderReport,
  runCampaign,
  runExecution,
  mutantPieces,
  type ExecResult,
} from '../../src/check/index.js';
import { mergeResults, runInWorker, splitRange } from '../../src/check/workers.js';
import { lockProgram } from './helpers.js';

registerBuiltins();

test('seed-003 inversion: lockdep reports it in execution 1, with a 0-preemption trace of the two tasks and a replay token', () => {
  const r = runCampaign({ scenario: getScenario('locks5')!, strategy: 'portfolio', seed: 1, executions: 1000, mutant: 'seed003-assign-guests-first' });
  const f = r.failure!;
  assert.equal(f.execution, 0);
  assert.equal(f.bug.kind, 'lockdep');
  assert.equal(f.preemptions, 0);
  assert.match(f.report, /^apsim check: lockdep in scenario locks5 \(mutant seed003-assign-guests-first\)\n/);
  assert.match(f.report, /Trace \(tasks apmask, assign;|Trace \(tasks assign, apmask;/);
  assert.match(f.report, /Possible unsafe locking scenario/);
  // Only the involved tasks' steps are shown.
  assert.doesNotMatch(f.report, /\d  (open|close|remove): /);
  // Replay reproduces the report byte for byte.
  const tok = decodeToken(f.token);
  const again = renderReport(getScenario('locks5')!, 'minimal', mutantPieces(getMutant(tok.mutant)!), tok);
  assert.equal(again.text, f.report);
});

test('the trylock variant of seed 003 is clean over 10,000 executions', () => {
  const r = runCampaign({ scenario: locks5(3, 'locks5-trylock'), strategy: 'portfolio', seed: 5, executions: 10_000, pieces: { locks5: { assignOrder: 'guests-first', inUse: 'trylock' } } });
  assert.equal(r.failure, null);
  assert.equal(r.coverage.executions, 10_000);
});

test('classic ABBA deadlock: minimisation gives the 1-preemption schedule; its replay is byte-identical', () => {
  const s = lockProgram([[[0, 1]], [[1, 0]], [[2]], [[2, 3]]], 'abba');
  // Find a real deadlock with lockdep off (a random walk), then minimise.
  let found: ExecResult | null = null;
  const ex = new RandomExplorer(9);
  for (let i = 0; i < 5000 && !found; i++) {
    ex.begin(i);
    const r = runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer: ex, lockdep: new Lockdep(false) });
    if (r.status === 'deadlock') found = r;
  }
  assert.ok(found);
  const bug = primaryBug(found)!;
  const min = minimise(s, 'minimal', {}, found, bug)!;
  const tok = { scenario: 'abba', config: 1, strategy: 'random', seed: 9, execution: 0, mutant: '', choices: min };
  const a = renderReport(s, 'minimal', {}, tok);
  assert.equal(a.bug!.kind, 'deadlock');
  assert.equal(a.preemptions, 1);
  assert.match(a.text, /Trace \(tasks t0, t1;/);
  assert.doesNotMatch(a.text, /\d  t[23]: /);
  assert.match(a.text, /lockdep predicted it earlier in this execution:\n=+\nWARNING: possible circular locking dependency detected/);
  assert.equal(renderReport(s, 'minimal', {}, decodeToken(a.token)).text, a.text);
});

test('replay tokens round-trip (property)', () => {
  fc.assert(
    fc.property(
      fc.record({
        scenario: fc.string(),
        config: fc.nat({ max: 0xffffffff }),
        strategy: fc.string(),
        seed: fc.nat(),
        execution: fc.nat(),
        mutant: fc.string(),
        choices: fc.array(fc.nat({ max: 300 }), { maxLength: 500 }),
      }),
      (t) => {
        const s = encodeToken(t);
        assert.match(s, /^apsim1-[A-Za-z0-9_-]*$/);
        assert.deepEqual(decodeToken(s), { ...t });
      },
    ),
  );
  assert.throws(() => decodeToken('apsim1-!!'), /invalid replay token/);
  assert.throws(() => decodeToken('nope'), /invalid replay token/);
  assert.throws(() => decodeToken(encodeToken({ scenario: 'x', config: 1, strategy: 's', seed: 1, execution: 0, mutant: '', choices: [1] }) + 'AA'), /invalid replay token/);
});

// Time to detection is a benchmark figure (bench/check.ts); the test bounds executions.
test('every registered mutant is found by its scenarios with the default strategy within 100 executions', () => {
  assert.ok(listMutants().length >= 11);
  for (const m of listMutants()) {
    for (const name of m.scenarios) {
      const s = getScenario(name)!;
      const r = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: s.executions ?? 2000, mutant: m.name });
      assert.ok(r.failure, `${m.name} survived ${name}`);
      assert.ok(r.coverage.executions <= 100, `${m.name}: ${r.coverage.executions} executions`);
    }
  }
});

test('the library is clean on its default pieces (short campaigns)', () => {
  for (const name of ['locks5', 'ap-inuse-vs-assign', 'ap-bus5']) {
    const r = runCampaign({ scenario: getScenario(name)!, strategy: 'portfolio', seed: 3, executions: 150 });
    assert.equal(r.failure, null, r.failure?.report);
  }
});

test('DPOR proves the AP bus pair scenarios (exhaustive)', () => {
  const r = runCampaign({ scenario: getScenario('ap-pair:apmask+0+assign')!, strategy: 'dpor', seed: 1, executions: 100_000 });
  assert.equal(r.failure, null);
  assert.equal(r.complete, true);
});

test('workers and shards: the same first failure as one thread', async () => {
  const scenario = getScenario('ap-inuse-vs-assign')!;
  const base = { strategy: 'random' as const, seed: 4, mutant: 'ap-stub-assign-unlocked-check' };
  const single = runCampaign({ scenario, ...base, executions: 200 });
  assert.ok(single.failure);
  const parts = await Promise.all(splitRange(0, 200, 3).map(([from, n]) => runInWorker({ scenario: scenario.name, ...base, from, executions: n, deadline: 0 })));
  const merged = mergeResults(parts);
  assert.equal(merged.failure!.execution, single.failure.execution);
  assert.equal(merged.failure!.token, single.failure.token);
  assert.equal(merged.failure!.report, single.failure.report);
  // A shard is a range: running the shard holding the failure finds it at the same index.
  const ranges = splitRange(0, 200, 4);
  const k = ranges.findIndex(([lo, n]) => single.failure!.execution >= lo && single.failure!.execution < lo + n);
  const shard = runCampaign({ scenario, ...base, from: ranges[k]![0], executions: ranges[k]![1] });
  assert.equal(shard.failure!.token, single.failure.token);
});
