// A world restored from its post-setup snapshot behaves exactly like a freshly booted
// one: for every built-in scenario and for each mutant's scenarios, the same schedules
// give the same steps, choices, trace lines, bugs and the same final world (a
// canonical dump of everything reachable from it), and whole campaigns give the same
// results and reports with and without snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lockdep, SNAPSHOT_SHARED, type KGen } from '../../src/kernel/index.js';
import {
  SetupCache,
  listMutants,
  listScenarios,
  getScenario,
  makeExplorer,
  piecesFor,
  registerBuiltins,
  runCampaign,
  runExecution,
  type AnyScenario,
  type Scenario,
  type PieceOverrides,
} from '../../src/check/index.js';

registerBuiltins();

/** Canonical text of everything reachable from the world (lockdep's shared graph and the scheduler's strategy excluded). */
function dumpWorld(root: unknown): string {
  const ids = new Map<object, number>();
  const out: string[] = [];
  const queue: object[] = [];
  const ref = (v: unknown): string => {
    if (v === null || v === undefined) return String(v);
    if (typeof v === 'function') return `fn:${v.name}`;
    if (typeof v !== 'object') return typeof v === 'string' ? JSON.stringify(v) : `${typeof v}:${String(v)}`;
    if ((v as Record<symbol, unknown>)[SNAPSHOT_SHARED] === true) return 'shared';
    let id = ids.get(v);
    if (id === undefined) {
      ids.set(v, (id = ids.size));
      queue.push(v);
    }
    return `#${id}`;
  };
  ref(root);
  for (let i = 0; i < queue.length; i++) {
    const o = queue[i]!;
    const proto = Object.getPrototypeOf(o) as { constructor?: { name?: string } } | null;
    let s = `${i} ${proto?.constructor?.name ?? 'null'}`;
    if (o instanceof Map) s += ` Map(${[...o].map(([a, b]) => `${ref(a)}=>${ref(b)}`).join(',')})`;
    else if (o instanceof Set) s += ` Set(${[...o].map(ref).join(',')})`;
    else if (ArrayBuffer.isView(o)) s += ` bytes(${[...(o as Uint8Array)].join(',')})`;
    for (const k of Reflect.ownKeys(o)) {
      // The per-execution scheduler objects differ by construction.
      if (k === 'strategy' || k === 'onStep') continue;
      // JS stack traces of task errors show the test's own call path, not model state.
      if (k === 'stack' && o instanceof Error) continue;
      const d = Object.getOwnPropertyDescriptor(o, k)!;
      s += ` ${String(k)}=${'value' in d ? ref(d.value) : 'accessor'}`;
    }
    out.push(s);
  }
  return out.join('\n');
}

interface Run {
  status: string;
  steps: number;
  choices: string;
  trace: string;
  bugs: string;
  world: string;
}

function runs(s: AnyScenario, pieces: PieceOverrides, n: number, seed: number, cached: boolean): Run[] {
  const explorer = makeExplorer('random', { seed });
  const lockdep = new Lockdep(true);
  const setupCache = cached ? new SetupCache() : undefined;
  const out: Run[] = [];
  for (let i = 0; i < n && explorer.begin(i); i++) {
    const r = runExecution({ scenario: s, pieces, profile: 'minimal', explorer, lockdep, trace: true, record: true, setupCache });
    out.push({ status: r.status, steps: r.steps, choices: r.choices.join(','), trace: r.trace.join('\n'), bugs: r.bugs.map((b) => b.text).join('\n'), world: dumpWorld(r.world) });
  }
  if (cached) {
    assert.equal(setupCache!.unusable, null, `${s.name}: ${setupCache!.unusable}`);
    assert.equal(setupCache!.restores, n - 1);
  }
  return out;
}

function assertSame(name: string, fresh: Run[], restored: Run[]): void {
  assert.equal(restored.length, fresh.length);
  for (let i = 0; i < fresh.length; i++) {
    const a = fresh[i]!;
    const b = restored[i]!;
    for (const key of ['status', 'steps', 'choices', 'bugs', 'trace', 'world'] as const) {
      if (a[key] === b[key]) continue;
      const la = String(a[key]).split('\n');
      const lb = String(b[key]).split('\n');
      let j = 0;
      while (j < la.length && la[j] === lb[j]) j++;
      assert.fail(`${name}: execution ${i}: ${key} differs between a fresh and a restored world at line ${j}\n--- fresh\n${la.slice(j, j + 3).join('\n')}\n--- restored\n${lb.slice(j, j + 3).join('\n')}`);
    }
  }
}

test('every built-in scenario: restored worlds run exactly like freshly booted ones', () => {
  const all = listScenarios();
  assert.ok(all.length >= 40);
  for (const s of all)
    for (const seed of [7, 8]) assertSame(s.name, runs(s, {}, 5, seed, false), runs(s, {}, 5, seed, true));
});

test('a world whose setup leaves tasks running is not captured: every execution boots', () => {
  const s: Scenario = {
    name: 'leaves-a-task',
    description: 'setup spawns a task it does not run',
    setup(env) {
      const k = env.kernelOnly();
      const m = k.mutex_init('m');
      k.spawn('left-over', (function* (): KGen<void> {
        yield k.mutex_lock(m);
        yield k.mutex_unlock(m);
      })());
      return { k };
    },
    tasks: () => [],
  };
  const setupCache = new SetupCache();
  const explorer = makeExplorer('random', { seed: 1 });
  for (let i = 0; i < 3 && explorer.begin(i); i++) {
    const r = runExecution({ scenario: s, pieces: {}, profile: 'minimal', explorer, lockdep: new Lockdep(false), setupCache });
    assert.equal(r.status, 'done');
  }
  assert.equal(setupCache.unusable, 'setup left tasks running: left-over');
  assert.equal(setupCache.snapshot, null);
  assert.equal(setupCache.restores, 0);
});

test('mutant worlds: the same equivalence, including the executions that fail', () => {
  for (const m of listMutants())
    for (const name of m.scenarios) {
      const s = getScenario(name)!;
      const pieces = piecesFor(m.name);
      assertSame(`${m.name} on ${name}`, runs(s, pieces, 3, 1, false), runs(s, pieces, 3, 1, true));
    }
});

test('campaigns give identical results and reports with and without world snapshots', () => {
  for (const m of listMutants()) {
    const s = getScenario(m.scenarios[0]!)!;
    const a = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: 200, mutant: m.name, snapshot: false });
    const b = runCampaign({ scenario: s, strategy: 'portfolio', seed: 1, executions: 200, mutant: m.name });
    assert.ok(a.failure, `${m.name} found`);
    assert.deepEqual(b.coverage, a.coverage);
    assert.equal(b.failure?.execution, a.failure.execution);
    assert.equal(b.failure?.token, a.failure.token);
    assert.equal(b.failure?.report, a.failure.report);
  }
  // A clean campaign: the same coverage, and DPOR completes in the same number of executions.
  for (const name of ['vfio-ap-pair:read-matrix+unassign-cdom0', 'ap-pair:apmask+0+apmask+0']) {
    const s = getScenario(name)!;
    const a = runCampaign({ scenario: s, strategy: 'dpor', seed: 1, executions: 2_000, snapshot: false });
    const b = runCampaign({ scenario: s, strategy: 'dpor', seed: 1, executions: 2_000 });
    assert.equal(a.complete, true);
    assert.deepEqual(b, a);
  }
});
