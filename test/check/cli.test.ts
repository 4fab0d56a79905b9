import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMutantReplays, checkCli as cli, checkCliOn } from './helpers.js';

test('apsim check: usage errors exit 2 with a message and the usage', async () => {
  for (const args of [
    ['--bogus'],
    ['--strategy', 'magic'],
    ['--seed', '-1'],
    ['--executions', '0'],
    ['--executions', '5', '--time', '1'],
    ['--workers', '2', '--strategy', 'dpor'],
    ['--shard', '3/2'],
    ['--shard', 'x'],
    ['--scenario', 'no-such-scenario'],
    ['--mutant', 'no-such-mutant'],
    ['--replay', 'garbage'],
    ['--exhaustive', '--strategy', 'pct'],
    ['--seed'],
  ]) {
    const r = await cli(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /^apsim check: .+\nusage: apsim check /, args.join(' '));
  }
});

test('apsim check --list-mutants: one per line, name first', async () => {
  const r = await cli('--list-mutants');
  assert.equal(r.code, 0);
  const lines = r.out.trimEnd().split('\n');
  assert.ok(lines.length >= 3);
  for (const l of lines) assert.match(l, /^[a-z0-9][a-z0-9_.-]*  \S/);
});

test('apsim check --list-mutants/--list-scenarios --json: one JSON array, the same entries as the text lists', async () => {
  const text = (await cli('--list-mutants')).out.trimEnd().split('\n').map((l) => l.split('  ')[0]);
  const r = await cli('--list-mutants', '--json');
  assert.equal(r.code, 0);
  const ms = JSON.parse(r.out) as Array<{ name: string; description: string; component: string; scenarios: string[] }>;
  assert.deepEqual(ms.map((m) => m.name), text);
  const seed004 = ms.find((m) => m.name === 'seed004-hook-rwsem-under-matrix-lock')!;
  assert.equal(seed004.component, 'vfio_ap');
  assert.deepEqual(seed004.scenarios, ['vfio-ap:pqap-vs-close-vs-remove']);
  const stext = (await cli('--list-scenarios')).out.trimEnd().split('\n');
  const s = await cli('--list-scenarios', '--json');
  assert.equal(s.code, 0);
  const ss = JSON.parse(s.out) as Array<{ name: string; exhaustive: boolean; tags: string[]; profile: string | null; executions: number }>;
  assert.deepEqual(ss.map((x) => x.name), stext.map((l) => l.split('  ')[0]));
  // The text list flags the same scenarios as exhaustive.
  assert.deepEqual(ss.map((x) => x.exhaustive), stext.map((l) => l.includes('  [exhaustive] ')));
  const l5 = ss.find((x) => x.name === 'locks5')!;
  assert.deepEqual(l5.tags, ['synthetic']);
  assert.equal(l5.exhaustive, false);
});

test('apsim check --mutant finds it and exits 1; --replay reproduces the report byte for byte', async () => {
  await assertMutantReplays('seed003-assign-guests-first');
});

test('apsim check on a clean scenario exits 0; --json prints one object', async () => {
  const r = await cli('--scenario', 'locks5', '--executions', '200', '--json');
  assert.equal(r.code, 0);
  const j = JSON.parse(r.out);
  assert.equal(j.ok, true);
  assert.equal(j.scenarios[0].coverage.executions, 200);
  const e = await cli('--exhaustive', '--scenario', 'ap-pair:scan+assign');
  assert.equal(e.code, 0);
  assert.match(e.out, /complete \(proven\)/);
});

test('apsim check --fresh-setup boots every execution and reports exactly what the snapshot run reports', async () => {
  const args = ['--scenario', 'vfio-ap:assign-vs-apmask', '--executions', '30', '--json'];
  const a = await cli(...args);
  const b = await cli(...args, '--fresh-setup');
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.deepEqual(JSON.parse(b.out), JSON.parse(a.out));
  const m = await cli('--mutant', 'seed003-in-use-blocking-abba', '--fresh-setup', '--json');
  const n = await cli('--mutant', 'seed003-in-use-blocking-abba', '--json');
  assert.equal(m.code, 1);
  assert.equal(m.out, n.out);
});

test('on a terminal a progress bar (executions, executions/s, ETA) goes to stderr and is cleared; stdout is as without one', async () => {
  const args = ['--scenario', 'locks5', '--executions', '300'];
  const tty = await checkCliOn(true, ...args);
  const plain = await checkCliOn(false, ...args);
  assert.equal(tty.code, 0);
  assert.equal(tty.out, plain.out);
  assert.equal(plain.err, '');
  const frames = tty.err.split('\r').filter((x) => x !== '');
  assert.ok(frames.length >= 2, tty.err);
  for (const f of frames.slice(0, -1)) assert.match(f, /^locks5 {22} \[[#.]{24}\] \d+\/300 \d+ exec\/s ETA \d+s $/);
  // The last frame blanks the line before the results are printed.
  assert.equal(frames[frames.length - 1], ' '.repeat(90));
});

test('every strategy runs from the command line; DFS and DPOR say when they proved a scenario', async () => {
  const counts: Record<string, number> = {};
  for (const strategy of ['random', 'pct', 'portfolio', 'dfs', 'dpor']) {
    const r = await cli('--scenario', 'ap-pair:scan+assign', '--strategy', strategy, '--executions', '60', '--json');
    assert.equal(r.code, 0, strategy);
    const j = JSON.parse(r.out);
    assert.equal(j.strategy, strategy);
    assert.equal(j.scenarios[0].complete, strategy === 'dfs' || strategy === 'dpor', strategy);
    counts[strategy] = j.scenarios[0].coverage.executions;
  }
  // Seeded strategies use the whole budget; the systematic ones stop when done (DPOR's
  // count is the one src/check/README.md lists).
  assert.deepEqual(counts, { random: 60, pct: 60, portfolio: 60, dfs: 44, dpor: 5 });
});

test('--time SEC: a wall-clock budget, looked at every 16 executions', async () => {
  const j = JSON.parse((await cli('--scenario', 'locks5', '--time', '0.2', '--json')).out);
  assert.equal(j.ok, true);
  const n = j.scenarios[0].coverage.executions as number;
  assert.ok(n >= 16 && n % 16 === 0, String(n));
});

test('--replay of a token whose schedule is clean says so and exits 0; a token from another version is refused', async () => {
  const { encodeToken, configHash, getScenario } = await import('../../src/check/index.js');
  const { version } = await import('../../src/cli/main.js');
  const s = getScenario('locks5')!;
  const token = encodeToken({ scenario: 'locks5', config: configHash(s, 'minimal', '', version()), strategy: 'portfolio', seed: 1, execution: 0, mutant: '', choices: [] });
  const r = await cli('--replay', token);
  assert.deepEqual([r.code, r.out, r.err], [0, `apsim check: the replay of this token is clean (scenario locks5)\nReplay: apsim check --replay ${token}\n`, '']);
  const old = encodeToken({ scenario: 'locks5', config: configHash(s, 'minimal', '', '0.0.0-other'), strategy: 'portfolio', seed: 1, execution: 0, mutant: '', choices: [] });
  const o = await cli('--replay', old);
  assert.equal(o.code, 2);
  assert.match(o.err, /^apsim check: the token was made with a different configuration or apsim version \(scenario locks5\); replay it with the apsim that printed it\n/);
});

test('locks5 with flat task bodies (what the throughput bench runs) behaves like locks5: clean, and the seed-003 order found by lockdep in execution 1', async () => {
  const { locks5, runCampaign } = await import('../../src/check/index.js');
  const flat = locks5(10, 'locks5-flat', true);
  const r = runCampaign({ scenario: flat, strategy: 'portfolio', seed: 1, executions: 300 });
  assert.equal(r.failure, null);
  assert.equal(r.coverage.steps / r.coverage.executions, 355);
  assert.deepEqual(r.coverage.lockOrder!.nestings.map((n) => n.observed), [true, true, true, true]);
  const m = runCampaign({ scenario: flat, strategy: 'portfolio', seed: 1, executions: 100, mutant: 'seed003-assign-guests-first', minimise: false });
  assert.deepEqual([m.failure?.bug.kind, m.failure?.execution], ['lockdep', 0]);
});
