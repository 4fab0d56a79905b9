// chmod/chown of sysfs nodes (kernfs_iop_setattr): who may do what, what the new
// owner and bits mean for later opens, and how long they last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, WorldSnapshot } from '../../src/kernel/index.js';
import { Host } from '../../src/host/index.js';
import { checkAccess, S_IFREG } from '../../src/sysfs/index.js';

const APMASK = '/sys/bus/ap/apmask';
const ROOT = { uid: 0, gid: 0 };

test('checkAccess picks the owner\'s, then the group\'s, then the others\' bits; root passes unless no bit is set', () => {
  const owner = { uid: 1000, gid: 100 };
  assert.equal(checkAccess(0o604, 1000, 'r', owner, 100), 0); // owner r
  assert.equal(checkAccess(0o064, 1000, 'r', owner, 100), E.EACCES); // the owner is not "group" or "other"
  assert.equal(checkAccess(0o460, 1001, 'w', owner, 100), 0); // group w
  assert.equal(checkAccess(0o406, 1001, 'w', owner, 100), E.EACCES); // a group member is not "other"
  assert.equal(checkAccess(0o442, 1001, 'w', owner, 200), 0); // other w
  assert.equal(checkAccess(0o000, 0, 'r', owner), E.EACCES); // kernfs' extra open check, root included
  assert.equal(checkAccess(0o002, 0, 'w', owner), 0);
});

test('root chmods an attribute read-only: its own writes are refused until it chmods it back', () => {
  const h = Host.boot();
  const before = h.read(APMASK);
  assert.equal(h.sysfs.setattr(h.sysfs.find(APMASK)!, { mode: 0o444 }), 0);
  assert.equal(h.sysfs.stat(APMASK).mode, S_IFREG | 0o444);
  assert.equal(h.tryWrite(APMASK, '-5'), E.EACCES);
  assert.equal(h.read(APMASK), before);
  assert.equal(h.sysfs.setattr(h.sysfs.find(APMASK)!, { mode: 0o644 }), 0);
  assert.equal(h.tryWrite(APMASK, '-5'), 0);
  assert.notEqual(h.read(APMASK), before);
});

test('chown hands an attribute to a user; the owner may chmod and chgrp to its own group, nobody else may', () => {
  const h = Host.boot();
  const n = h.sysfs.find(APMASK)!;
  const alice = { uid: 1000, gid: 1000 };
  const bob = { uid: 1001, gid: 1000 };
  const eve = { uid: 1002, gid: 2000 };
  // Only root changes the owner.
  assert.equal(h.sysfs.setattr(n, { uid: 1000 }, alice), E.EPERM);
  assert.equal(h.sysfs.setattr(n, { mode: 0o666 }, alice), E.EPERM);
  assert.equal(n.iattr, null, 'a refused change changes nothing');
  assert.equal(h.sysfs.setattr(n, { uid: 1000, gid: 1000 }, ROOT), 0);
  assert.deepEqual({ ...h.sysfs.stat(APMASK) }, { type: 'file', mode: S_IFREG | 0o644, size: 4096, uid: 1000, gid: 1000, nlink: 1 });
  // 0644: the owner writes, the group and the others read.
  assert.equal(h.tryWrite(APMASK, '-5', alice), 0);
  assert.equal(h.tryWrite(APMASK, '-6', bob), E.EACCES);
  assert.equal(h.tryWrite(APMASK, '-6', eve), E.EACCES);
  assert.equal(h.sysfs.setattr(n, { mode: 0o664 }, bob), E.EPERM);
  assert.equal(h.sysfs.setattr(n, { mode: 0o664 }, alice), 0);
  assert.equal(h.tryWrite(APMASK, '-6', bob), 0);
  assert.equal(h.tryWrite(APMASK, '-7', eve), E.EACCES);
  // chgrp: to the owner's own group only; chown away: never.
  assert.equal(h.sysfs.setattr(n, { gid: 2000 }, alice), E.EPERM);
  assert.equal(h.sysfs.setattr(n, { uid: 1002 }, alice), E.EPERM);
  assert.deepEqual(n.iattr, { mode: 0o664, uid: 1000, gid: 1000 });
  assert.equal(h.sysfs.setattr(n, { gid: 2000 }, ROOT), 0);
  assert.equal(h.tryWrite(APMASK, '-7', eve), 0);
  assert.equal(h.read(APMASK).slice(0, 4), '0xf8');
});

test('a removed node takes its attributes with it: the mdev created again has the default modes', () => {
  const h = Host.boot();
  h.write(APMASK, '-5');
  const TYPE = '/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
  const U = '62177883-f1bb-47f0-914d-32a22e3a8804';
  const A = `/sys/devices/vfio_ap/matrix/${U}/assign_adapter`;
  h.write(`${TYPE}/create`, U);
  assert.equal(h.sysfs.setattr(h.sysfs.find(A)!, { mode: 0o000 }), 0);
  assert.equal(h.tryWrite(A, '5'), E.EACCES);
  assert.deepEqual([...h.sysfs.withIattr].map((x) => x.path), [A]);
  h.write(`/sys/devices/vfio_ap/matrix/${U}/remove`, '1');
  assert.deepEqual([...h.sysfs.withIattr], []);
  h.write(`${TYPE}/create`, U);
  assert.equal(h.sysfs.stat(A).mode, S_IFREG | 0o200);
  assert.equal(h.tryWrite(A, '5'), 0);
});

test('world snapshots put attributes back like any other node state', () => {
  const h = Host.boot();
  const snap = WorldSnapshot.capture([h], new Set<object>([h.k.strategy, h.k.lockdep]));
  assert.equal(h.sysfs.setattr(h.sysfs.find(APMASK)!, { mode: 0o400, uid: 7 }), 0);
  assert.equal(h.sysfs.withIattr.size, 1);
  snap.restore();
  assert.equal(h.sysfs.find(APMASK)!.iattr, null);
  assert.equal(h.sysfs.withIattr.size, 0);
  assert.equal(h.sysfs.stat(APMASK).mode, S_IFREG | 0o644);
});
