// apsim check --scenario FILE: scenarios from a user's ES module (no import of apsim
// needed: env and the kernel come in through setup()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkCli as cli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'apsim-user-scenarios-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const PATHS = `
function* path(k, name, a, b) {
  yield* k.fn(name, (function* () {
    yield k.mutex_lock(a);
    yield k.sched_point('between');
    yield k.mutex_lock(b);
    yield k.mutex_unlock(b);
    yield k.mutex_unlock(a);
  })());
}
const order = { name: 'user-order', source: 'my notes', order: ['lockA', 'lockB'], nestings: [['lockA', 'lockB']] };
const setup = (env) => { const k = env.kernelOnly(); return { k, a: k.mutex_init('lockA'), b: k.mutex_init('lockB') }; };
`;

function module(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

const both = module(
  'both.mjs',
  `${PATHS}
export const ordered = { name: 'user:ordered', description: 'both paths in the documented order', lockOrder: order, executions: 50, setup,
  tasks: (w) => [['ab1', path(w.k, 'first', w.a, w.b)], ['ab2', path(w.k, 'second', w.a, w.b)]] };
export default [{ name: 'user:abba', description: 'the second path takes them the other way round', lockOrder: order, setup,
  tasks: (w) => [['ab', path(w.k, 'forward', w.a, w.b)], ['ba', path(w.k, 'backward', w.b, w.a)]] }];
`,
);
const clean = module('clean.mjs', `${PATHS}\nexport const ordered = { name: 'user:ordered', description: 'in order', lockOrder: order, executions: 50, setup, tasks: (w) => [['ab1', path(w.k, 'first', w.a, w.b)], ['ab2', path(w.k, 'second', w.a, w.b)]] };\n`);

test('--list-scenarios --scenario FILE lists the module\'s scenarios (exports in name order: default first)', async () => {
  const r = await cli('--list-scenarios', '--scenario', both);
  assert.equal(r.code, 0);
  assert.equal(r.out, 'user:abba  the second path takes them the other way round\nuser:ordered  both paths in the documented order\n');
});

test('a user scenario with its own lock order: clean and covered; with --workers 2 the same', async () => {
  const r = await cli('--scenario', clean);
  assert.equal(r.code, 0);
  assert.match(r.out, /^user:ordered: 50 executions, \d+ steps, 2 lock classes, 1 lockdep edges, \d+ chains; preemptions 0\/1\/2\/3\/4\+: [\d/]+; documented nestings 1\/1\nclean: 1 scenario\(s\), 50 executions\n$/);
  const w = JSON.parse((await cli('--scenario', clean, '--workers', '2', '--json')).out);
  assert.equal(w.ok, true);
  assert.equal(w.scenarios[0].coverage.executions, 50);
  assert.deepEqual(w.lockOrder[0].nestings, [{ outer: 'lockA', inner: 'lockB', observed: true }]);
});

test('a failing user scenario: the order violation under its scenario, the report, and a token that replays with --scenario FILE', async () => {
  const r = await cli('--scenario', both);
  assert.equal(r.code, 1);
  const lines = r.out.split('\n');
  // user:abba runs first and fails: the run stops there.
  assert.match(lines[0]!, /^user:abba: 1 executions, .*; documented nestings 1\/1, 1 against the order$/);
  assert.deepEqual(lines.slice(1, 5), [
    'lock order user-order: lockA -> lockB (my notes)',
    '  against it: lockA acquired while holding lockB (first by ba/101 in backward: mutex_lock; execution 1)',
    '',
    'apsim check: lockdep in scenario user:abba',
  ]);
  const report = r.out.slice(r.out.indexOf('apsim check: '));
  const token = /--replay (apsim1-[A-Za-z0-9_-]+)/.exec(report)![1]!;
  const again = await cli('--replay', token, '--scenario', both);
  assert.equal(again.code, 1);
  assert.equal(again.out, report);
  // Without the module the token's scenario is unknown: a usage error that says so.
  const lost = await cli('--replay', token);
  assert.equal(lost.code, 2);
  assert.match(lost.err, /^apsim check: the token names scenario 'user:abba', which is not available \(user scenarios need --scenario FILE\)\n/);
});

test('bad scenario files: a message naming the file and what is wrong, nothing run', async () => {
  const url = (f: string) => pathToFileURL(f).href;
  const cases: Array<[string, string]> = [
    [module('badname.mjs', `export const s = { name: 'bad name', description: 'x', setup() {}, tasks() { return []; } };`), `${url(join(dir, 'badname.mjs'))} (export s): scenario name must be a non-empty word ([A-Za-z0-9_.:+#-])`],
    [module('nodesc.mjs', `export default { name: 'n', setup() {}, tasks() { return []; } };`), `${url(join(dir, 'nodesc.mjs'))} (export default): scenario "n" needs a description`],
    [
      module('twice.mjs', `export default { name: 'o', description: 'x', setup() {}, tasks() { return []; }, lockOrder: { name: 'r', source: 's', order: ['A', 'A'], nestings: [] } };`),
      `${url(join(dir, 'twice.mjs'))} (export default): scenario "o": lock order "r": A is listed twice`,
    ],
    [
      module('nesting.mjs', `export default { name: 'o', description: 'x', setup() {}, tasks() { return []; }, lockOrder: { name: 'r', source: 's', order: ['A', 'B'], nestings: [['B', 'A']] } };`),
      `${url(join(dir, 'nesting.mjs'))} (export default): scenario "o": lock order "r": nesting B -> A does not follow the order`,
    ],
    [
      module('shape.mjs', `export default { name: 'o', description: 'x', setup() {}, tasks() { return []; }, lockOrder: { name: 'r', source: 's', order: 'A,B', nestings: [] } };`),
      `${url(join(dir, 'shape.mjs'))} (export default): scenario "o": lock order "r": order must list at least two lock class names`,
    ],
    [module('none.mjs', 'export const x = 1;'), `${url(join(dir, 'none.mjs'))}: exports no scenario (an object with name, description, setup and tasks)`],
    [module('syntax.mjs', 'export const x = ;'), `${url(join(dir, 'syntax.mjs'))}: cannot load: Unexpected token ';'`],
  ];
  for (const [file, message] of cases) {
    const r = await cli('--scenario', file, '--executions', '3');
    assert.equal(r.code, 2, file);
    assert.equal(r.out, '', file);
    assert.equal(r.err, `apsim check: ${message}\n`, file);
  }
  const missing = await cli('--scenario', join(dir, 'missing.mjs'));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^apsim check: file:\/\/.*\/missing\.mjs: cannot load: Cannot find module /);
});

test('a scenario that does not replay (module state) gets no proof: DFS and DPOR say it is not deterministic, exit 2', async () => {
  // Every call of tasks() flips what task a does: the same choices no longer give the same run.
  const nondet = module(
    'nondet.mjs',
    `let n = 0;
export default { name: 'user:nondet', description: 'depends on module state', setup(env) { return { k: env.kernelOnly() }; },
  tasks: (w) => { n++; const odd = n % 2 === 1; return [
    ['a', (function* () { if (odd) { yield w.k.sched_point('p'); yield w.k.sched_point('p2'); } })()],
    ['b', (function* () { yield w.k.sched_point('q'); })()]]; } };
`,
  );
  const dfs = await cli('--scenario', nondet, '--strategy', 'dfs');
  assert.deepEqual([dfs.code, dfs.out], [2, '']);
  assert.equal(dfs.err, 'apsim check: dfs: replaying a prefix, at choice 1: the execution ended there, its prefix has 3 choice points (the scenario is not deterministic: module state, Math.random, Date.now or I/O?)\n');
  const dpor = await cli('--scenario', nondet, '--strategy', 'dpor');
  assert.deepEqual([dpor.code, dpor.out], [2, '']);
  assert.equal(dpor.err, 'apsim check: dpor: replaying a prefix, at step 2: the execution ended before it (the scenario is not deterministic: module state, Math.random, Date.now or I/O?)\n');
  // What a task is about to do differs (another object): caught at the replayed choice point.
  const other = module(
    'other.mjs',
    `let n = 0;
export default { name: 'user:other', description: 'locks another mutex every other run', setup(env) { const k = env.kernelOnly(); return { k, a: k.mutex_init('A'), b: k.mutex_init('B') }; },
  tasks: (w) => { n++; const m = n % 2 ? w.a : w.b; return [
    ['x', (function* () { yield w.k.sched_point('s'); yield w.k.mutex_lock(m); yield w.k.mutex_unlock(m); })()],
    ['y', (function* () { yield w.k.mutex_lock(w.a); yield w.k.mutex_unlock(w.a); })()]]; } };
`,
  );
  const o = await cli('--scenario', other, '--strategy', 'dpor');
  assert.equal(o.code, 2);
  assert.equal(o.err, 'apsim check: dpor: replaying a prefix, at step 2: the enabled tasks are about to do other things than the first time (the scenario is not deterministic: module state, Math.random, Date.now or I/O?)\n');
  const d2 = await cli('--scenario', other, '--strategy', 'dfs');
  assert.equal(d2.code, 2);
  assert.match(d2.err, /^apsim check: dfs: replaying a prefix, at choice \d+: other tasks are enabled, or about to do other things, than the first time/);
});
