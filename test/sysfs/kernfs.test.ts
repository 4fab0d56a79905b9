import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, Errno, Kernel } from '../../src/kernel/index.js';
import { KernfsTree, Sysfs, linkText, type KDir } from '../../src/sysfs/index.js';

function tree(): { t: KernfsTree; card: KDir; q: KDir; drv: KDir } {
  const t = new KernfsTree();
  const card = t.mkdirp('/sys/devices/ap/card05');
  const q = t.mkdir(card, '05.0004');
  const drv = t.mkdirp('/sys/bus/ap/drivers/cex4card');
  t.createLink(t.mkdirp('/sys/bus/ap/devices'), card, 'card05');
  t.createLink(card, drv, 'driver');
  t.createLink(q, t.mkdirp('/sys/bus/ap/drivers/cex4queue'), 'driver');
  t.createFile(card, { name: 'online', mode: 0o644 }, null);
  return { t, card, q, drv };
}

function errno(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof Errno) return e.errno;
    throw e;
  }
  return 0;
}

test('symlink text is relative, computed like kernfs_get_target_path', () => {
  const { t } = tree();
  assert.equal(t.readlink('/sys/bus/ap/devices/card05'), '../../../devices/ap/card05');
  assert.equal(t.readlink('/sys/devices/ap/card05/driver'), '../../../bus/ap/drivers/cex4card');
  assert.equal(t.readlink('/sys/devices/ap/card05/05.0004/driver'), '../../../../bus/ap/drivers/cex4queue');
  const up = t.createLink(t.mkdirp('/sys/devices/ap/card05/05.0004/x'), t.lookup('/sys/devices/ap') as KDir, 'toparent');
  assert.equal(linkText(up), '../../../../ap');
  assert.equal(errno(() => t.readlink('/sys/devices/ap')), E.EINVAL);
});

test('path resolution follows links, handles .. after links, ENOENT, ENOTDIR, ELOOP', () => {
  const { t, card } = tree();
  assert.equal(t.lookup('/sys/bus/ap/devices/card05'), card);
  assert.equal(t.lookup('/sys/bus/ap/devices/card05/driver/../../devices/card05'), card);
  assert.equal(t.lookup('//sys///devices/./ap/card05/'), card);
  assert.equal(t.lookup('/sys/bus/ap/devices/card05', false).type, 'link');
  assert.equal(errno(() => t.lookup('/sys/nope')), E.ENOENT);
  assert.equal(errno(() => t.lookup('/proc/x')), E.ENOENT);
  assert.equal(errno(() => t.lookup('/sys/devices/ap/card05/online/x')), E.ENOTDIR);
  const a = t.mkdirp('/sys/loop');
  t.createLink(a, a, 'self');
  assert.equal(t.lookup('/sys/loop/self/self/self'), a);
  const l1 = t.mkdirp('/sys/l1');
  const l2 = t.mkdirp('/sys/l2');
  const x = t.createLink(l1, l2, 'x');
  const y = t.createLink(l2, x, 'y');
  t.createLink(l1, y, 'z');
  t.remove(x);
  t.createLink(l1, y, 'x'); // l1/x -> l2/y -> l1/x: a loop
  assert.equal(errno(() => t.lookup('/sys/l1/x/foo')), E.ELOOP);
  assert.equal(errno(() => t.mkdir(card, '05.0004')), E.EEXIST);
});

test('stat/lstat: modes with type bits, PAGE_SIZE size for attributes, nlink of dirs', () => {
  const { t } = tree();
  assert.deepEqual(t.stat('/sys/devices/ap/card05'), { type: 'dir', mode: 0o040755, size: 0, uid: 0, gid: 0, nlink: 3 });
  assert.deepEqual(t.stat('/sys/devices/ap/card05/online'), { type: 'file', mode: 0o100644, size: 4096, uid: 0, gid: 0, nlink: 1 });
  assert.deepEqual(t.lstat('/sys/bus/ap/devices/card05'), { type: 'link', mode: 0o120777, size: 0, uid: 0, gid: 0, nlink: 1 });
  assert.equal(t.stat('/sys/bus/ap/devices/card05').type, 'dir');
});

test('readdir is sorted and deterministic; walk visits everything in order', () => {
  const { t } = tree();
  assert.deepEqual(t.readdir('/sys/devices/ap/card05'), ['05.0004', 'driver', 'online']);
  assert.deepEqual(t.readdir('/sys/bus/ap/devices/card05'), ['05.0004', 'driver', 'online']);
  assert.equal(errno(() => t.readdir('/sys/devices/ap/card05/online')), E.ENOTDIR);
  assert.deepEqual([...t.walk()].map((n) => n.path), [
    '/sys/bus', '/sys/bus/ap', '/sys/bus/ap/devices', '/sys/bus/ap/devices/card05', '/sys/bus/ap/drivers',
    '/sys/bus/ap/drivers/cex4card', '/sys/bus/ap/drivers/cex4queue', '/sys/devices', '/sys/devices/ap',
    '/sys/devices/ap/card05', '/sys/devices/ap/card05/05.0004', '/sys/devices/ap/card05/05.0004/driver',
    '/sys/devices/ap/card05/driver', '/sys/devices/ap/card05/online',
  ]);
});

test('removal unlinks the subtree; the mount point can be changed', () => {
  const { t, card } = tree();
  t.remove(card);
  assert.equal(card.removed, true);
  assert.equal(t.find('/sys/devices/ap/card05'), null);
  assert.equal(errno(() => t.lookup('/sys/bus/ap/devices/card05')), E.ENOENT); // dangling
  const s = new Sysfs(new Kernel(), { mountpoint: '/tmp/sim/sys' });
  const d = s.mkdirp('/tmp/sim/sys/devices/ap');
  assert.equal(d.path, '/tmp/sim/sys/devices/ap');
  assert.deepEqual(s.readdir('/tmp/sim/sys'), ['devices']);
});
