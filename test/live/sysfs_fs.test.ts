// SysfsFuse's SETATTR without a mount: what reaches kernfs, what reaches the journal
// hook, and that a journal failure undoes the change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E } from '../../src/kernel/index.js';
import { Host } from '../../src/host/index.js';
import { SysfsFuse, type SetattrEvent } from '../../src/live/sysfs_fs.js';
import { FATTR_GID, FATTR_MODE, FATTR_SIZE, FATTR_UID, FUSE_ROOT_ID } from '../../src/live/fuse/abi.js';
import type { LiveDriver } from '../../src/live/driver.js';
import type { FuseEntry } from '../../src/live/fuse/session.js';

function walk(f: SysfsFuse, path: string): number {
  let id = FUSE_ROOT_ID;
  for (const part of path.split('/').filter(Boolean)) id = (f.lookup(id, part) as FuseEntry).nodeid;
  return id;
}
const ctx = (uid: number, gid: number) => ({ uid, gid, pid: 1, unique: 1n });
const req = (valid: number, mode = 0, uid = 0, gid = 0) => ({ valid, size: 0, mode, uid, gid });

test('FUSE SETATTR: chmod/chown reach kernfs and the journal hook; refusals and truncation do neither', () => {
  const h = Host.boot();
  const events: SetattrEvent[] = [];
  const f = new SysfsFuse(h.sysfs, {} as LiveDriver, () => {}, (e) => events.push(e));
  const id = walk(f, 'bus/ap/apmask');
  // echo > file: O_TRUNC's size change is accepted and ignored.
  const plain = f.setattr(id, req(FATTR_SIZE), ctx(0, 0));
  assert.equal(typeof plain === 'number' ? plain : plain.mode, 0o100644);
  assert.equal(f.setattr(id, req(FATTR_MODE, 0o100600), ctx(1000, 1000)), -E.EPERM);
  assert.deepEqual(events, []);
  const a = f.setattr(id, req(FATTR_MODE | FATTR_UID | FATTR_GID, 0o100640, 1000, 100), ctx(0, 0));
  assert.deepEqual(typeof a === 'number' ? a : [a.mode, a.uid, a.gid], [0o100640, 1000, 100]);
  assert.deepEqual(events, [{ path: '/sys/bus/ap/apmask', req: { mode: 0o640, uid: 1000, gid: 100 }, uid: 0, gid: 0 }]);
  // The same attributes again: nothing changed, nothing journaled.
  f.setattr(id, req(FATTR_MODE, 0o100640), ctx(1000, 1000));
  assert.equal(events.length, 1);
});

test('FUSE SETATTR: when the journal fails the change is undone and the caller gets EIO', () => {
  const h = Host.boot();
  const f = new SysfsFuse(h.sysfs, {} as LiveDriver, () => {}, () => {
    throw new Error('disk full');
  });
  const id = walk(f, 'bus/ap/apmask');
  assert.equal(f.setattr(id, req(FATTR_MODE, 0o100444), ctx(0, 0)), -E.EIO);
  assert.equal(h.sysfs.find('/sys/bus/ap/apmask')!.iattr, null);
  assert.equal(h.sysfs.withIattr.size, 0);
  assert.equal(h.tryWrite('/sys/bus/ap/apmask', '-5'), 0);
});
