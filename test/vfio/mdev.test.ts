// mdev core sysfs ABI: type attributes, create/remove with their errno, links, uevents,
// available_instances accounting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E } from '../../src/kernel/index.js';
import { mdev_unregister_parent } from '../../src/vfio/index.js';
import { MDEV_TYPE_DIR, UUID1, UUID2, makeStack } from './double.js';

const MATRIX = '/sys/devices/vfio_ap/matrix';

test('type directory: name, device_api, available_instances, create and devices/', () => {
  const st = makeStack();
  const { h } = st;
  assert.deepEqual(h.ls(`${MATRIX}/mdev_supported_types`), ['vfio_ap-passthrough']);
  assert.deepEqual(h.ls(MDEV_TYPE_DIR), ['available_instances', 'create', 'device_api', 'devices', 'name']);
  assert.equal(h.read(`${MDEV_TYPE_DIR}/name`), 'VFIO AP Passthrough Device\n');
  assert.equal(h.read(`${MDEV_TYPE_DIR}/device_api`), 'vfio-ap\n');
  assert.equal(h.read(`${MDEV_TYPE_DIR}/available_instances`), '65536\n');
  assert.equal(h.sysfs.lstat(`${MDEV_TYPE_DIR}/create`).mode & 0o777, 0o200);
  assert.equal(h.sysfs.readlink('/sys/class/mdev_bus/matrix'), '../../devices/vfio_ap/matrix');
  assert.deepEqual(h.ls('/sys/bus/mdev'), ['devices', 'drivers', 'drivers_autoprobe', 'drivers_probe', 'uevent']);
  assert.deepEqual(h.ls('/sys/bus/mdev/drivers'), ['vfio_ap_mdev']);
  assert.match(h.k.dmesg(), /vfio_ap matrix: MDEV: Registered/);
  assert.ok(h.sysfs.uevents.list().some((e) => e.action === 'change' && e.devpath === '/devices/vfio_ap/matrix' && e.env.includes('MDEV_STATE=registered')));
  assert.equal(h.tryWrite(`${MDEV_TYPE_DIR}/name`, 'x'), E.EACCES);
  assert.deepEqual(h.k.bugs, []);
});

test('create: the mdev directory, its links, the iommu group, uevents; remove undoes all of it', () => {
  const st = makeStack();
  const { h } = st;
  h.sysfs.uevents.clear();
  assert.equal(h.write(`${MDEV_TYPE_DIR}/create`, `${UUID1}\n`), 37);
  const dir = `${MATRIX}/${UUID1}`;
  assert.deepEqual(h.ls(dir), ['driver', 'iommu_group', 'mdev_type', 'remove', 'subsystem', 'uevent']);
  assert.equal(h.sysfs.readlink(`${dir}/mdev_type`), '../mdev_supported_types/vfio_ap-passthrough');
  assert.equal(h.sysfs.readlink(`${dir}/driver`), '../../../../bus/mdev/drivers/vfio_ap_mdev');
  assert.equal(h.sysfs.readlink(`${dir}/subsystem`), '../../../../bus/mdev');
  assert.equal(h.sysfs.readlink(`${dir}/iommu_group`), '../../../../kernel/iommu_groups/0');
  assert.equal(h.sysfs.readlink(`/sys/bus/mdev/devices/${UUID1}`), `../../../devices/vfio_ap/matrix/${UUID1}`);
  assert.equal(h.sysfs.readlink(`${MDEV_TYPE_DIR}/devices/${UUID1}`), `../../../${UUID1}`);
  assert.deepEqual(h.ls('/sys/kernel/iommu_groups/0'), ['devices', 'name', 'reserved_regions', 'type']);
  assert.equal(h.read('/sys/kernel/iommu_groups/0/name'), 'vfio-noiommu\n');
  // An emulated IOMMU group: no default domain, so no type to switch to, no reserved regions.
  assert.deepEqual([h.read('/sys/kernel/iommu_groups/0/type'), h.read('/sys/kernel/iommu_groups/0/reserved_regions')], ['unknown\n', '']);
  assert.equal(h.tryWrite('/sys/kernel/iommu_groups/0/type', 'DMA'), E.EINVAL);
  assert.equal(h.sysfs.readlink(`/sys/kernel/iommu_groups/0/devices/${UUID1}`), `../../../../devices/vfio_ap/matrix/${UUID1}`);
  assert.equal(h.read(`${MDEV_TYPE_DIR}/available_instances`), '65535\n');
  assert.equal(h.read(`${dir}/uevent`), 'DRIVER=vfio_ap_mdev\n');
  assert.ok(h.sysfs.find('/sys/class/vfio/0'), '/dev/vfio/0');
  const ev = h.sysfs.uevents.list().filter((e) => e.devpath === `/devices/vfio_ap/matrix/${UUID1}`).map((e) => e.action);
  assert.deepEqual(ev, ['add', 'bind']);
  assert.match(h.k.dmesg(), new RegExp(`vfio_ap_mdev ${UUID1}: Adding to iommu group 0`));

  h.sysfs.uevents.clear();
  assert.equal(h.write(`${dir}/remove`, '1\n'), 2);
  assert.equal(h.sysfs.find(dir), null);
  assert.equal(h.sysfs.find(`/sys/bus/mdev/devices/${UUID1}`, false), null);
  assert.deepEqual(h.ls(`${MDEV_TYPE_DIR}/devices`), []);
  assert.equal(h.sysfs.find('/sys/kernel/iommu_groups/0'), null);
  assert.equal(h.sysfs.find('/sys/class/vfio/0', false), null);
  assert.equal(h.read(`${MDEV_TYPE_DIR}/available_instances`), '65536\n');
  const ev2 = h.sysfs.uevents.list().filter((e) => e.devpath === `/devices/vfio_ap/matrix/${UUID1}`).map((e) => e.action);
  assert.deepEqual(ev2, ['unbind', 'remove']);
  assert.equal(h.k.kmemleak_scan(), 0);
  assert.deepEqual(h.k.bugs, []);
});

test('create errno: length, malformed UUID, duplicate (any case), instances exhausted', () => {
  const st = makeStack({ maxInstances: 1 });
  const { h } = st;
  const c = `${MDEV_TYPE_DIR}/create`;
  assert.equal(h.tryWrite(c, UUID1.slice(0, 35)), E.EINVAL, '35 bytes');
  assert.equal(h.tryWrite(c, `${UUID1}\n\n`), E.EINVAL, '38 bytes');
  assert.equal(h.tryWrite(c, UUID1.replace('-', 'x')), E.EINVAL, 'dash position');
  assert.equal(h.tryWrite(c, UUID1.replace('7', 'g')), E.EINVAL, 'not hex');
  assert.equal(h.write(c, UUID1.toUpperCase()), 36);
  assert.deepEqual(h.ls(MATRIX).filter((n) => n.includes('-')), [UUID1], 'the name is lower case');
  assert.equal(h.tryWrite(c, UUID1), E.EEXIST);
  assert.equal(h.tryWrite(c, UUID2), E.EUSERS, 'max_instances 1 reached');
  assert.equal(h.read(`${MDEV_TYPE_DIR}/available_instances`), '0\n');
  // guid_parse looks at 36 characters; the 37th may be anything.
  h.write(`${MATRIX}/${UUID1}/remove`, '1');
  assert.equal(h.write(c, `${UUID2}x`), 37);
  assert.deepEqual(h.k.bugs, []);
});

test('remove: base-0 parse, 0 is a no-op, garbage is -EINVAL; write-only', () => {
  const st = makeStack();
  const { h } = st;
  h.write(`${MDEV_TYPE_DIR}/create`, UUID1);
  const r = `${MATRIX}/${UUID1}/remove`;
  assert.equal(h.tryWrite(r, 'yes'), E.EINVAL);
  assert.equal(h.write(r, '0'), 1);
  assert.ok(h.sysfs.find(r));
  assert.equal(h.sysfs.read(r).ok, false);
  assert.equal(h.write(r, '0x1'), 3);
  assert.equal(h.sysfs.find(`${MATRIX}/${UUID1}`), null);
  assert.deepEqual(h.k.bugs, []);
});

test('get_available: the driver answers available_instances and mdev core does not count', () => {
  const st = makeStack({ getAvailable: true });
  const { h } = st;
  h.write(`${MDEV_TYPE_DIR}/create`, UUID1);
  h.write(`${MDEV_TYPE_DIR}/create`, UUID2);
  assert.equal(h.read(`${MDEV_TYPE_DIR}/available_instances`), '65534\n');
  assert.equal(st.parent.available_instances, 0);
  assert.deepEqual(h.ls('/sys/kernel/iommu_groups'), ['0', '1']);
  assert.deepEqual(h.k.bugs, []);
});

test('unbinding the mdev driver removes the VFIO device; parent unregistration removes every mdev', () => {
  const st = makeStack();
  const { h } = st;
  h.write(`${MDEV_TYPE_DIR}/create`, UUID1);
  h.write(`${MDEV_TYPE_DIR}/create`, UUID2);
  h.write('/sys/bus/mdev/drivers/vfio_ap_mdev/unbind', UUID1);
  assert.equal(h.sysfs.find(`${MATRIX}/${UUID1}/iommu_group`, false), null);
  assert.equal(st.devices.length, 1);
  h.sysfs.uevents.clear();
  const t = h.k.spawn('rmmod', mdev_unregister_parent(st.parent));
  h.k.runUntilExit(t);
  assert.ok(!t.error);
  assert.equal(h.sysfs.find(`${MATRIX}/${UUID2}`), null);
  assert.equal(h.sysfs.find(`${MATRIX}/mdev_supported_types`), null);
  assert.equal(h.sysfs.find('/sys/class/mdev_bus/matrix', false), null);
  assert.ok(h.sysfs.uevents.list().some((e) => e.action === 'change' && e.env.includes('MDEV_STATE=unregistered')));
  assert.match(h.k.dmesg(), /vfio_ap matrix: MDEV: Unregistering/);
  assert.deepEqual(h.k.bugs, []);
});
