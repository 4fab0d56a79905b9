import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestHost, MATRIX, TYPE, U1, U2, U3 } from './helpers.js';
import { E } from '../../src/kernel/index.js';
import { builtinProfile } from '../../src/hw/index.js';

test('parent and type attributes', () => {
  const t = new TestHost();
  assert.equal(t.r(`${MATRIX}/features`), 'guest_matrix hotplug ap_config\n');
  assert.equal(t.r(`${TYPE}/name`), 'VFIO AP Passthrough Device\n');
  assert.equal(t.r(`${TYPE}/device_api`), 'vfio-ap\n');
  assert.equal(t.r(`${TYPE}/available_instances`), '65536\n');
  assert.equal(t.h.sysfs.readlink('/sys/class/mdev_bus/matrix'), '../../devices/vfio_ap/matrix');
});

test('scenario 42: mdev create errors and available_instances', () => {
  const t = new TestHost();
  assert.equal(t.w(`${TYPE}/create`, U1.slice(0, 35)), E.EINVAL);
  assert.equal(t.w(`${TYPE}/create`, 'not-a-uuid-but-36-characters-long!!'), E.EINVAL);
  const m = t.mdev(U1);
  assert.equal(t.w(`${TYPE}/create`, U1 + '\n'), E.EEXIST);
  assert.equal(t.r(`${TYPE}/available_instances`), '65535\n');
  assert.deepEqual(t.h.ls(m), [
    'ap_config', 'assign_adapter', 'assign_control_domain', 'assign_domain', 'control_domains', 'driver', 'guest_matrix',
    'iommu_group', 'matrix', 'mdev_type', 'remove', 'subsystem', 'uevent', 'unassign_adapter', 'unassign_control_domain', 'unassign_domain',
  ]);
  assert.equal(t.h.sysfs.readlink(`${m}/mdev_type`), '../mdev_supported_types/vfio_ap-passthrough');
  assert.equal(t.h.sysfs.readlink(`/sys/bus/mdev/devices/${U1}`), `../../../devices/vfio_ap/matrix/${U1}`);
  for (const a of ['assign_adapter', 'unassign_domain', 'remove']) assert.equal(t.h.sysfs.stat(`${m}/${a}`).mode & 0o777, 0o200, a);
  for (const a of ['matrix', 'guest_matrix', 'control_domains']) assert.equal(t.h.sysfs.stat(`${m}/${a}`).mode & 0o777, 0o444, a);
  assert.equal(t.h.sysfs.stat(`${m}/ap_config`).mode & 0o777, 0o644);
  t.ok(`${m}/remove`, '1');
  assert.equal(t.r(`${TYPE}/available_instances`), '65536\n');
  assert.equal(t.h.ls(MATRIX).includes(U1), false);
  t.h.k.kmemleak_scan();
  assert.deepEqual(t.h.k.bugs.filter((b) => /ap_matrix_mdev|vfio_device/.test(b.title)), []);
});

test('scenario 1: with the default masks every APQN is reserved: adapter ok, domain EADDRNOTAVAIL', () => {
  const t = new TestHost();
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '5\n');
  assert.equal(t.w(`${m}/assign_domain`, '4\n'), E.EADDRNOTAVAIL);
  assert.equal(t.r(`${m}/matrix`), '05.\n');
  assert.equal(t.r(`${m}/guest_matrix`), '05.\n');
});

test('scenario 2: happy path: freed queues assigned; matrix and guest_matrix agree', () => {
  const t = new TestHost();
  t.free('-5,-6', '-4,-0xab');
  const m = t.mdev(U1);
  for (const a of ['5', '6']) t.ok(`${m}/assign_adapter`, a);
  for (const d of ['4', '0xab']) t.ok(`${m}/assign_domain`, d);
  assert.equal(t.r(`${m}/matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'assigned\n');
  assert.equal(t.r('/sys/devices/ap/card05/05.0005/status'), 'unassigned\n');
  assert.equal(t.h.sysfs.readlink('/sys/devices/ap/card05/05.0004/driver'), '../../../../bus/ap/drivers/vfio_ap');
});

test('scenario 3: number formats are kstrtoul base 0', () => {
  const t = new TestHost();
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '0x1f');
  t.ok(`${m}/assign_adapter`, '010\n');
  t.ok(`${m}/assign_adapter`, '+7');
  for (const bad of ['5 ', '-1', '', '5\n\n', '0x', 'five']) assert.equal(t.w(`${m}/assign_adapter`, bad), bad === '' ? 0 : E.EINVAL, JSON.stringify(bad));
  assert.equal(t.w(`${m}/assign_adapter`, '99999999999999999999'), E.ERANGE);
  assert.equal(t.r(`${m}/matrix`), '07.\n08.\n1f.\n');
});

test('scenario 4: ranges on a host without APXA (63/15) are checked for assign and unassign', () => {
  const p = builtinProfile('default');
  p.facilities!.apxa = false;
  p.maxDomainId = 15;
  p.config!.usageDomains = [0, 1, 2, 3, 4];
  p.config!.controlDomains = [0, 1, 2, 3, 4];
  const t = new TestHost({ profile: p });
  const m = t.mdev(U1);
  assert.equal(t.w(`${m}/assign_adapter`, '64'), E.ENODEV);
  assert.equal(t.w(`${m}/assign_domain`, '16'), E.ENODEV);
  assert.equal(t.w(`${m}/assign_control_domain`, '16'), E.ENODEV);
  assert.equal(t.w(`${m}/unassign_adapter`, '99'), E.ENODEV);
  assert.equal(t.w(`${m}/unassign_control_domain`, '0x10'), E.ENODEV);
  t.ok(`${m}/assign_adapter`, '63');
  t.ok(`${m}/assign_control_domain`, '15');
});

test('scenario 5: assigning twice and unassigning what is not assigned succeed and change nothing', () => {
  const t = new TestHost();
  t.free('-5', '-4');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/assign_domain`, '4');
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/unassign_adapter`, '6');
  t.ok(`${m}/unassign_domain`, '0x47');
  t.ok(`${m}/unassign_control_domain`, '3');
  assert.equal(t.r(`${m}/matrix`), '05.0004\n');
});

test('scenario 6: exclusivity: EADDRINUSE, one warning per shared APQN naming the owner', () => {
  const t = new TestHost();
  t.free('-5', '-4');
  const a = t.mdev(U1);
  const b = t.mdev(U2);
  t.ok(`${a}/assign_adapter`, '5');
  t.ok(`${a}/assign_domain`, '4');
  t.ok(`${b}/assign_domain`, '4');
  const seq = t.h.k.log.nextSeq;
  assert.equal(t.w(`${b}/assign_adapter`, '5'), E.EADDRINUSE);
  assert.deepEqual(t.dmesgSince(seq), [`vfio_ap_mdev ${U2}: Userspace may not assign queue 05.0004 to mdev: already assigned to ${U1}`]);
  assert.equal(t.r(`${b}/matrix`), '.0004\n');
  t.ok(`${a}/unassign_domain`, '4');
  t.ok(`${b}/assign_adapter`, '5');
  assert.equal(t.r(`${b}/matrix`), '05.0004\n');
});

test('scenario 7 and 8: disjoint APQN sets may share adapters; control domains are shareable', () => {
  const t = new TestHost();
  t.free('-1,-2', '-5-7');
  const a = t.mdev(U1);
  const b = t.mdev(U2);
  for (const x of ['1', '2']) {
    t.ok(`${a}/assign_adapter`, x);
    t.ok(`${b}/assign_adapter`, x);
  }
  t.ok(`${a}/assign_domain`, '5');
  t.ok(`${a}/assign_domain`, '6');
  t.ok(`${b}/assign_domain`, '7');
  t.ok(`${a}/assign_control_domain`, '4');
  t.ok(`${b}/assign_control_domain`, '4');
  assert.equal(t.r(`${a}/control_domains`), '0004\n');
  assert.equal(t.r(`${b}/control_domains`), '0004\n');
});

test('scenario 9 and 10: apmask refuses in-use APQNs; unassigned ones go back to the host driver', () => {
  const t = new TestHost();
  t.free('-5,-6', '');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/assign_domain`, '4');
  const seq = t.h.k.log.nextSeq;
  assert.equal(t.w('/sys/bus/ap/apmask', '+5'), E.EBUSY);
  assert.deepEqual(t.dmesgSince(seq), [`vfio_ap_mdev ${U1}: Can not reserve queue 05.0004 for host driver: in use by mdev`]);
  assert.equal(t.r('/sys/bus/ap/apmask'), '0xf9' + 'f'.repeat(62) + '\n');
  t.ok('/sys/bus/ap/apmask', '+6');
  assert.equal(t.h.sysfs.readlink('/sys/devices/ap/card06/06.0004/driver'), '../../../../bus/ap/drivers/cex4queue');
  assert.equal(t.r('/sys/devices/ap/card06/06.0004/online'), '1\n');
});

test('scenario 12: over-provisioning: an adapter missing from the host config is in matrix, not in guest_matrix', () => {
  const t = new TestHost();
  t.free('-7', '-4');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '7'); // adapter 7 is installed but not in the LPAR's configuration
  t.ok(`${m}/assign_domain`, '4');
  assert.equal(t.r(`${m}/matrix`), '07.0004\n');
  assert.equal(t.r(`${m}/guest_matrix`), '.0004\n');
});

test('scenario 14: an assigned queue not bound to vfio_ap filters its whole adapter out', () => {
  const t = new TestHost();
  t.free('-5,-6', '-4,-0xab');
  t.ok('/sys/bus/ap/drivers/vfio_ap/unbind', '06.00ab');
  const m = t.mdev(U1);
  for (const a of ['5', '6']) t.ok(`${m}/assign_adapter`, a);
  for (const d of ['4', '0xab']) t.ok(`${m}/assign_domain`, d);
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n');
  // Binding it back hot plugs adapter 6.
  t.ok('/sys/bus/ap/drivers/vfio_ap/bind', '06.00ab');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
});

test('scenario 21: ap_config reads 201 characters; writing them back changes nothing', () => {
  const t = new TestHost();
  t.free('-5,-6', '-4');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/assign_adapter`, '6');
  t.ok(`${m}/assign_domain`, '4');
  t.ok(`${m}/assign_control_domain`, '0xab');
  const cfg = t.r(`${m}/ap_config`);
  assert.equal(cfg.length, 201);
  assert.equal(cfg, `0x06${'0'.repeat(62)},0x08${'0'.repeat(62)},0x${'0'.repeat(42)}10${'0'.repeat(20)}\n`);
  assert.equal(t.h.tryWrite(`${m}/ap_config`, cfg), 0);
  assert.equal(t.r(`${m}/ap_config`), cfg);
  assert.equal(t.r(`${m}/matrix`), '05.0004\n06.0004\n');
});

test('scenario 22: ap_config errors leave the matrix intact', () => {
  const t = new TestHost();
  t.free('-5,-6', '-4');
  const a = t.mdev(U1);
  const b = t.mdev(U2);
  t.ok(`${a}/assign_adapter`, '5');
  t.ok(`${a}/assign_domain`, '4');
  const before = t.r(`${b}/ap_config`);
  const z = '0'.repeat(64);
  const m5 = `0x04${'0'.repeat(62)}`; // adapter 5
  const d4 = `0x08${'0'.repeat(62)}`; // domain 4
  assert.equal(t.w(`${b}/ap_config`, `0x${z},0x${z}`), E.EINVAL, 'two masks');
  assert.equal(t.w(`${b}/ap_config`, `0x${z}0,0x${z},0x${z}\n`), E.EINVAL, '65 digits');
  assert.equal(t.w(`${b}/ap_config`, `0xzz,0x${z},0x${z}\n`), E.EINVAL, 'junk');
  assert.equal(t.w(`${b}/ap_config`, `${m5},${d4},0x${z}\n`), E.EADDRINUSE, 'conflict with A');
  const d5 = `0x04${'0'.repeat(62)}`; // domain 5, still reserved for the host
  // Adapter 255 is both reserved (x domain 5) and out of range (Na = 63): reservation wins.
  assert.equal(t.w(`${b}/ap_config`, `0x${'0'.repeat(63)}1,${d5},0x${z}\n`), E.EADDRNOTAVAIL, 'reserved and out of range');
  // Adapter 64 x domain 4 is not reserved (domain 4 is free) but above Na.
  assert.equal(t.w(`${b}/ap_config`, `0x${'0'.repeat(16)}8${'0'.repeat(47)},${d4},0x${z}\n`), E.ENODEV, 'adapter 64 > ap_max_adapter_id');
  assert.equal(t.r(`${b}/ap_config`), before);
  // Two masks and a newline: strsep yields an empty third token, which is an all-zero ADM.
  assert.equal(t.w(`${b}/ap_config`, `0x${z},${d4}\n`), 0);
});

test('scenario 43: matrix rendering forms and the one-page cap', () => {
  const t = new TestHost();
  t.ok('/sys/bus/ap/apmask', '0x');
  t.ok('/sys/bus/ap/aqmask', '0x');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/assign_adapter`, '6');
  assert.equal(t.r(`${m}/matrix`), '05.\n06.\n');
  t.ok(`${m}/unassign_adapter`, '5');
  t.ok(`${m}/unassign_adapter`, '6');
  t.ok(`${m}/assign_domain`, '4');
  t.ok(`${m}/assign_domain`, '0xab');
  assert.equal(t.r(`${m}/matrix`), '.0004\n.00ab\n');
  t.ok(`${m}/unassign_domain`, '4');
  t.ok(`${m}/unassign_domain`, '0xab');
  assert.equal(t.r(`${m}/matrix`), '');
  t.ok(`${m}/assign_control_domain`, '4');
  t.ok(`${m}/assign_control_domain`, '0xab');
  assert.equal(t.r(`${m}/control_domains`), '0004\n00ab\n');
  t.ok(`${m}/ap_config`, `0x${'f'.repeat(16)}${'0'.repeat(48)},0x${'f'.repeat(8)}${'0'.repeat(56)},0x${'0'.repeat(64)}\n`);
  const out = t.r(`${m}/matrix`);
  assert.equal(out.length, 4095);
  assert.ok(out.startsWith('00.0000\n00.0001\n'));
  // 64 x 32 lines of 8 characters, cut inside line 512 (adapter 0x0f, domain 0x1f).
  assert.equal(out.slice(-8), '\n0f.001f');
});

test('scenario 44: a new CEX3 adapter on the host is never hot plugged', () => {
  const p = builtinProfile('default');
  p.config!.adapters = p.config!.adapters!.filter((a: number) => a !== 10);
  const t = new TestHost({ profile: p });
  t.free('-10,-5', '-4');
  const m = t.mdev(U1);
  t.ok(`${m}/assign_adapter`, '0xa');
  t.ok(`${m}/assign_adapter`, '5');
  t.ok(`${m}/assign_domain`, '4');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n');
  t.h.machine.hmc.addAdapter(10);
  t.h.settle();
  t.check('host adds CEX3 adapter 10');
  assert.equal(t.r(`${m}/guest_matrix`), '05.0004\n');
  assert.equal(t.h.ls('/sys/devices/ap').includes('card0a'), false);
});

test('the queue status attribute exists only while bound to vfio_ap', () => {
  const t = new TestHost();
  assert.throws(() => t.r('/sys/devices/ap/card05/05.0004/status'), /ENOENT/);
  t.free('-5', '');
  assert.equal(t.r('/sys/devices/ap/card05/05.0004/status'), 'unassigned\n');
  t.ok('/sys/bus/ap/apmask', '+5');
  assert.throws(() => t.r('/sys/devices/ap/card05/05.0004/status'), /ENOENT/);
  void U3;
});
