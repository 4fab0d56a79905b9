import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, RandomStrategy, type KGen } from '../../src/kernel/index.js';

test('runUntilExit stops as soon as the given task exits, leaving others live', () => {
  const k = new Kernel();
  const log: string[] = [];
  k.spawn('bg', (function* (): KGen {
    for (let i = 0; i < 5; i++) {
      yield k.msleep(10);
      log.push(`bg${i}`);
    }
  })());
  const t = k.spawn('bash', (function* (): KGen<number> {
    yield k.msleep(25);
    log.push('bash');
    return 7;
  })());
  assert.equal(k.runUntilExit(t), 'done');
  assert.equal(t.exitValue, 7);
  assert.deepEqual(log, ['bg0', 'bg1', 'bash']);
  assert.equal(k.liveTasks().length, 1);
  assert.equal(k.now(), 25_000_000);
  assert.equal(k.run(), 'done');
  assert.equal(log.length, 6);
});

test('runUntilExit reports a deadlock that keeps the task from finishing', () => {
  const k = new Kernel();
  const m = k.mutex_init('&m');
  k.spawn('holder', (function* (): KGen {
    yield k.mutex_lock(m);
    yield k.wait_for_completion(k.init_completion('never'));
  })());
  const t = k.spawn('bash', (function* (): KGen {
    yield k.mutex_lock(m);
    yield k.mutex_unlock(m);
  })());
  assert.equal(k.runUntilExit(t), 'deadlock');
  assert.equal(t.done, false);
});

test('runUntilExit on an already finished task returns done; refuses nesting', () => {
  const k = new Kernel({ strategy: new RandomStrategy(3) });
  const t = k.spawn('a', (function* (): KGen {
    yield k.sched_point();
  })());
  assert.equal(k.runUntilExit(t), 'done');
  assert.equal(k.runUntilExit(t), 'done');
  let err: unknown;
  const u = k.spawn('nested', (function* (): KGen {
    yield k.sched_point();
    try {
      k.runUntilExit(t);
    } catch (e) {
      err = e;
    }
  })());
  k.runUntilExit(u);
  assert.match(String(err), /inside a task/);
});
