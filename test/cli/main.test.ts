import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { main } from '../../src/cli/main.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; bin: { apsim: string } };

function cli(...args: string[]) {
  return spawnSync(process.execPath, [pkg.bin.apsim, ...args], { encoding: 'utf8' });
}

test('apsim --version and version print the package version', () => {
  for (const a of ['--version', '-V', 'version']) {
    const r = cli(a);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `apsim ${pkg.version}\n`);
    assert.equal(r.stderr, '');
  }
});

test('apsim --help lists the commands; no arguments prints help too', () => {
  for (const args of [['--help'], ['-h'], ['help'], []]) {
    const r = cli(...args);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^apsim — a simulated Linux s390 AP crypto pass-through stack\n\nUsage: apsim <command> \[options\]\n/);
    assert.match(r.stdout, /\n  selftest \[--seed N\] +Run the kernel runtime/);
  }
});

test('unknown commands and bad arguments exit 2 with a clear message and no output', () => {
  const out: string[] = [];
  const err: string[] = [];
  assert.equal(main(['frobnicate'], (s) => out.push(s), (s) => err.push(s)), 2);
  assert.deepEqual(out, [] as string[]);
  assert.equal(err.join(''), "apsim: unknown command 'frobnicate'\nRun 'apsim --help' for the list of commands.\n");
  err.length = 0;
  assert.equal(main(['version', 'x'], (s) => out.push(s), (s) => err.push(s)), 2);
  assert.equal(err.join(''), 'apsim: version takes no arguments\n');
  err.length = 0;
  assert.equal(main(['selftest', '--seed', 'abc'], (s) => out.push(s), (s) => err.push(s)), 2);
  assert.equal(err.join(''), "apsim selftest: bad argument '--seed' (usage: apsim selftest [--seed N], N a non-negative integer)\n");
  assert.deepEqual(out, [] as string[]);
});

test('apsim selftest passes and prints the deadlock cycle', () => {
  const r = cli('selftest', '--seed', '3');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'ok   lockdep reports the ABBA inversion in execution 1 (execution 1)');
  assert.match(lines[1]!, /^ok   random exploration reaches the real deadlock \(execution \d+\)$/);
  assert.match(lines[2]!, /^ok   replay of the recorded choices is byte-identical \(\d+ choices\)$/);
  assert.ok(r.stdout.includes('Wait-for cycle:\n  path_ab/100 waits in mutex_lock(&selftest->b) in take_a_then_b, held by path_ba/101\n'));
});
