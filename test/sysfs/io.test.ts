import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, Errno, Kernel, type KGen } from '../../src/kernel/index.js';
import { Sysfs, checkAccess, kobj_ktype, type AttrOps, type KAttr, type KDir } from '../../src/sysfs/index.js';

interface Obj {
  value: string;
  stores: string[];
}

const big: AttrOps<Obj> = {
  name: 'big',
  mode: 0o644,
  *show(_k, o) {
    return o.value;
  },
  *store(k, o, buf) {
    yield k.sched_point('store');
    o.stores.push(buf);
    if (buf.startsWith('bad')) throw new Errno(E.EADDRINUSE);
    if (buf.startsWith('neg')) return -E.EBUSY;
    if (buf.startsWith('short')) return 2;
  },
};

function setup(): { k: Kernel; s: Sysfs; dir: KDir; o: Obj } {
  const k = new Kernel();
  const s = new Sysfs(k);
  const dir = s.mkobj(s.mkdirp('/sys/devices'), 'thing', { name: 'device', missingOp: E.EIO, showFn: 'dev_attr_show' }, null, null);
  const o: Obj = { value: 'hello\n', stores: [] };
  s.createFile(dir, big, o);
  s.createFile(dir, { name: 'ro', mode: 0o444, *show() { return '1\n'; } }, o);
  s.createFile(dir, { name: 'wo', mode: 0o200, *store() {} }, o);
  s.createFile(dir, { name: 'noshow', mode: 0o644 }, o);
  const busdir = s.mkobj(s.mkdirp('/sys/bus'), 'b', { name: 'bus', missingOp: 0, showFn: 'bus_attr_show' }, null, null);
  s.createFile(busdir, { name: 'noshow', mode: 0o644 }, o);
  return { k, s, dir, o };
}

test('show output is cut at PAGE_SIZE - 1 bytes; a raw show warns "returned bad count"', () => {
  const { k, s, dir, o } = setup();
  o.value = 'x'.repeat(5000);
  const r = s.read('/sys/devices/thing/big');
  assert.equal(r.ok && r.data.length, 4095);
  assert.equal(k.dmesg(), '');
  o.value = 'y'.repeat(4095);
  assert.equal((s.read('/sys/devices/thing/big') as { data: string }).data.length, 4095);
  s.createFile(dir, { ...big, name: 'raw', rawShow: true }, o);
  o.value = 'z'.repeat(4096);
  assert.equal((s.read('/sys/devices/thing/raw') as { data: string }).data.length, 4095);
  assert.match(k.dmesg(), /dev_attr_show: raw_show returned bad count/);
  assert.match(k.dmesg(), /fill_read_buffer: dev_attr_show returned bad count/);
});

test('store: one call per write, at most PAGE_SIZE bytes, count or errno back', () => {
  const { s, o } = setup();
  assert.deepEqual(s.write('/sys/devices/thing/big', 'abc\n'), { ok: true, count: 4 });
  assert.deepEqual(s.write('/sys/devices/thing/big', 'q'.repeat(10000)), { ok: true, count: 4096 });
  assert.equal(o.stores[1]!.length, 4096);
  assert.deepEqual(s.write('/sys/devices/thing/big', ''), { ok: true, count: 0 });
  assert.equal(o.stores.length, 2, 'an empty write does not call store');
  assert.deepEqual(s.write('/sys/devices/thing/big', 'bad'), { ok: false, errno: E.EADDRINUSE });
  assert.deepEqual(s.write('/sys/devices/thing/big', 'neg'), { ok: false, errno: E.EBUSY });
  assert.deepEqual(s.write('/sys/devices/thing/big', 'short-write'), { ok: true, count: 2 });
});

test('open checks: EACCES by mode (root included), EIO or 0 bytes for missing ops, EISDIR, ENOENT', () => {
  const { s } = setup();
  assert.deepEqual(s.write('/sys/devices/thing/ro', '1'), { ok: false, errno: E.EACCES });
  assert.deepEqual(s.read('/sys/devices/thing/wo'), { ok: false, errno: E.EACCES });
  assert.deepEqual(s.write('/sys/devices/thing/big', '1', { uid: 1000 }), { ok: false, errno: E.EACCES });
  assert.deepEqual(s.read('/sys/devices/thing/big', { uid: 1000 }), { ok: true, data: 'hello\n' });
  assert.deepEqual(s.read('/sys/devices/thing/noshow'), { ok: false, errno: E.EIO });
  assert.deepEqual(s.write('/sys/devices/thing/noshow', 'x'), { ok: false, errno: E.EIO });
  assert.deepEqual(s.read('/sys/bus/b/noshow'), { ok: true, data: '' });
  assert.deepEqual(s.write('/sys/bus/b/noshow', 'x'), { ok: true, count: 0 });
  assert.deepEqual(s.read('/sys/devices/thing'), { ok: false, errno: E.EISDIR });
  assert.deepEqual(s.write('/sys/devices/thing', 'x'), { ok: false, errno: E.EISDIR });
  assert.deepEqual(s.read('/sys/devices/nothing'), { ok: false, errno: E.ENOENT });
  assert.equal(kobj_ktype.missingOp, E.EIO);
});

test('checkAccess', () => {
  assert.equal(checkAccess(0o644, 0, 'w'), 0);
  assert.equal(checkAccess(0o444, 0, 'w'), E.EACCES);
  assert.equal(checkAccess(0o200, 0, 'r'), E.EACCES);
  assert.equal(checkAccess(0o200, 0, 'w'), 0);
  assert.equal(checkAccess(0o644, 1000, 'r'), 0);
  assert.equal(checkAccess(0o644, 1000, 'w'), E.EACCES);
  assert.equal(checkAccess(0o100666, 1000, 'w'), 0);
  assert.equal(checkAccess(0o600, 1000, 'r'), E.EACCES);
});

test('library calls run in a task named like the process; the generator form works inside tasks', () => {
  const { k, s } = setup();
  s.write('/sys/devices/thing/big', 'x');
  s.read('/sys/devices/thing/big', { comm: 'lszcrypt' });
  assert.deepEqual(k.allTasks.map((t) => t.name), ['bash', 'lszcrypt']);
  let got: unknown;
  k.spawn('mdevctl', (function* (): KGen {
    got = yield* s.read_gen(k, '/sys/devices/thing/ro');
  })());
  k.run();
  assert.deepEqual(got, { ok: true, data: '1\n' });
});

test('removal waits for a store in progress; new calls on the removed file get ENODEV', () => {
  const k = new Kernel();
  const s = new Sysfs(k);
  const dir = s.mkdirp('/sys/devices/d');
  const gate = k.init_completion('gate');
  const log: string[] = [];
  const slow: AttrOps<null> = {
    name: 'slow',
    mode: 0o200,
    *store(kk, _o, buf) {
      log.push('store in');
      yield kk.wait_for_completion(gate);
      log.push('store out');
      return buf.length;
    },
  };
  const a = s.createFile(dir, slow, null) as KAttr;
  let wres: unknown;
  k.spawn('bash', (function* (): KGen {
    wres = yield* s.write_gen(k, '/sys/devices/d/slow', 'go');
  })());
  k.spawn('remover', (function* (): KGen {
    yield k.sched_point();
    yield* s.remove_gen(k, a);
    log.push('removed');
  })());
  let late: unknown;
  k.spawn('late', (function* (): KGen {
    yield k.sched_point();
    yield k.sched_point();
    late = yield* s.write_gen(k, '/sys/devices/d/slow', 'x');
    yield k.complete(gate);
  })());
  assert.equal(k.run(), 'done');
  assert.deepEqual(log, ['store in', 'store out', 'removed']);
  assert.deepEqual(wres, { ok: true, count: 2 });
  assert.deepEqual(late, { ok: false, errno: E.ENOENT }); // already unlinked from the tree
  assert.deepEqual(k.bugs, []);
});

test('a store removing its own file: remove_self works, plain removal deadlocks', () => {
  for (const self of [true, false]) {
    const k = new Kernel();
    const s = new Sysfs(k);
    const dir = s.mkdirp('/sys/devices/mdev');
    const remove: AttrOps<null> = {
      name: 'remove',
      mode: 0o200,
      *store(kk, _o, buf) {
        const n = dir.children.get('remove') as KAttr;
        if (self) yield* s.remove_self_gen(kk, n);
        else yield* s.remove_gen(kk, n);
        return buf.length;
      },
    };
    s.createFile(dir, remove, null);
    const t = k.spawn('bash', s.write_gen(k, '/sys/devices/mdev/remove', '1'));
    const st = k.run();
    if (self) {
      assert.equal(st, 'done');
      assert.deepEqual(t.exitValue, { ok: true, count: 1 });
      assert.equal(s.find('/sys/devices/mdev/remove'), null);
    } else assert.notEqual(st, 'done');
  }
});

test('readAsync/writeAsync resolve when the task exits (external time)', async () => {
  const k = new Kernel({ time: 'external' });
  const s = new Sysfs(k);
  const dir = s.mkdirp('/sys/devices/d');
  s.createFile(dir, { name: 'v', mode: 0o644, *show(kk) { yield kk.msleep(5); return 'ok\n'; }, *store() {} }, null);
  const p = s.readAsync('/sys/devices/d/v');
  const q = s.writeAsync('/sys/devices/d/v', '1');
  assert.equal(k.run(), 'idle');
  k.advanceTo(5_000_000);
  k.run();
  assert.deepEqual(await p, { ok: true, data: 'ok\n' });
  assert.deepEqual(await q, { ok: true, count: 1 });
});
