import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, type KGen } from '../../src/kernel/index.js';

test('kref release runs exactly on the last put, in the putting task, and may take locks', () => {
  const k = new Kernel({ throwOnBug: true });
  const m = k.mutex_init('&kvm_lock');
  const obj = { name: 'vm' };
  const r = k.kref_init(obj, 'kvm->users_count');
  const released: string[] = [];
  const results: boolean[] = [];
  k.spawn('a', (function* (): KGen {
    yield k.kref_get(r);
    results.push(yield k.kref_put(r, () => void released.push('wrong')));
    assert.equal(r.read(), 1);
    results.push(
      yield k.kref_put(r, function* (o): KGen {
        yield k.mutex_lock(m);
        released.push(`${o.name} by ${k.current!.name}`);
        yield k.mutex_unlock(m);
      }),
    );
    results.push(yield k.kref_get_unless_zero(r));
  })());
  k.run();
  assert.deepEqual(released, ['vm by a']);
  assert.deepEqual(results, [false, true, false]);
  assert.equal(r.read(), 0);
});

test('kref_get on a zero count is reported (refcount_t: addition on 0)', () => {
  const k = new Kernel({ stopOnBug: false });
  const r = k.kref_init({}, 'obj->ref');
  k.spawn('x', (function* (): KGen {
    yield k.kref_put(r, () => {});
    yield k.kref_get(r);
  })());
  k.run();
  assert.equal(k.bugs.length, 1);
  assert.equal(k.bugs[0]!.kind, 'refcount');
  assert.match(k.bugs[0]!.text, /^------------\[ cut here \]------------\nrefcount_t: addition on 0; use-after-free\.\n/);
  assert.equal(r.read(), 0);
});

test('kref_put below zero is reported (refcount_t: underflow) and does not release again', () => {
  const k = new Kernel({ stopOnBug: false });
  const r = k.kref_init({}, 'obj->ref');
  let releases = 0;
  k.spawn('x', (function* (): KGen {
    yield k.kref_put(r, () => void releases++);
    const again: boolean = yield k.kref_put(r, () => void releases++);
    assert.equal(again, false);
  })());
  k.run();
  assert.equal(releases, 1);
  assert.deepEqual(k.bugs.map((b) => b.title), ['refcount_t: underflow; use-after-free. (obj->ref)']);
});

test('kref ops outside a task (atomic context) work for non-sleeping releases', () => {
  const k = new Kernel();
  const r = k.kref_init({}, 'r');
  k.kref_get(r);
  assert.equal(r.read(), 2);
  k.kref_put(r, () => {});
  assert.equal(k.lastDirectResult, false);
  k.kref_put(r, () => {});
  assert.equal(k.lastDirectResult, true);
  assert.throws(() => k.mutex_lock(k.mutex_init('m')), /cannot be called outside a task/);
});
