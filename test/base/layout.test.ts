import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E } from '../../src/kernel/index.js';
import { device_del, device_unregister, driver_unregister, bus_register, DriverCore, Device, class_register, class_compat_register, class_compat_create_link, device_add, type Class } from '../../src/base/index.js';
import { runInTask, formatUdevMonitor } from '../../src/sysfs/index.js';
import { Kernel, type KGen } from '../../src/kernel/index.js';
import { makeWorld, addCard, events, assertClean } from './helpers.js';

test('bus_register creates /sys/bus/<bus> with the kernel files and an "add" uevent', () => {
  const w = makeWorld({ drivers: false });
  const s = w.core.sysfs;
  assert.deepEqual(s.readdir('/sys/bus/ap'), ['devices', 'drivers', 'drivers_autoprobe', 'drivers_probe', 'uevent']);
  assert.equal(s.stat('/sys/bus/ap/drivers_autoprobe').mode, 0o100644);
  assert.equal(s.stat('/sys/bus/ap/drivers_probe').mode, 0o100200);
  assert.equal(s.stat('/sys/bus/ap/uevent').mode, 0o100200);
  assert.equal(s.stat('/sys/bus/ap/devices').mode, 0o040755);
  assert.deepEqual(s.read('/sys/bus/ap/drivers_autoprobe'), { ok: true, data: '1\n' });
  const ev = s.uevents.list();
  assert.equal(ev.length, 1);
  assert.deepEqual(ev[0]!.env, ['ACTION=add', 'DEVPATH=/bus/ap', 'SUBSYSTEM=bus', 'SEQNUM=1']);
  assert.deepEqual(s.readdir('/sys'), ['block', 'bus', 'class', 'dev', 'devices', 'firmware', 'fs', 'hypervisor', 'kernel', 'module', 'power']);
  assert.throws(() => bus_register(w.core, w.bus), /EEXIST/);
  assertClean(w);
});

test('device layout: directories, symlink targets exactly as the kernel creates them', () => {
  const w = makeWorld();
  addCard(w, 5, [4]);
  const s = w.core.sysfs;
  assert.deepEqual(s.readdir('/sys/devices/ap'), ['card05', 'uevent']);
  assert.deepEqual(s.readdir('/sys/devices/ap/card05'), ['05.0004', 'driver', 'subsystem', 'uevent']);
  assert.deepEqual(s.readdir('/sys/devices/ap/card05/05.0004'), ['driver', 'subsystem', 'uevent']);
  assert.equal(s.readlink('/sys/bus/ap/devices/card05'), '../../../devices/ap/card05');
  assert.equal(s.readlink('/sys/bus/ap/devices/05.0004'), '../../../devices/ap/card05/05.0004');
  assert.equal(s.readlink('/sys/devices/ap/card05/driver'), '../../../bus/ap/drivers/cex4card');
  assert.equal(s.readlink('/sys/devices/ap/card05/05.0004/driver'), '../../../../bus/ap/drivers/cex4queue');
  assert.equal(s.readlink('/sys/devices/ap/card05/subsystem'), '../../../bus/ap');
  assert.equal(s.readlink('/sys/devices/ap/card05/05.0004/subsystem'), '../../../../bus/ap');
  assert.equal(s.readlink('/sys/bus/ap/drivers/cex4queue/05.0004'), '../../../../devices/ap/card05/05.0004');
  assert.deepEqual(s.readdir('/sys/bus/ap/drivers/cex4queue'), ['05.0004', 'bind', 'uevent', 'unbind']);
  assert.deepEqual(s.readdir('/sys/bus/ap/devices'), ['05.0004', 'card05']);
  assert.equal(s.lstat('/sys/bus/ap/devices/card05').mode, 0o120777);
  assert.equal(s.stat('/sys/bus/ap/devices/card05').mode, 0o040755);
  assert.equal(s.stat('/sys/bus/ap/drivers/cex4card/bind').mode, 0o100200);
  assert.equal(s.stat('/sys/devices/ap/card05/uevent').mode, 0o100644);
  assert.equal(s.stat('/sys/devices/ap/card05/uevent').size, 4096);
  // Through the links, the same directory.
  assert.deepEqual(s.readdir('/sys/bus/ap/devices/card05/driver'), ['bind', 'card05', 'uevent', 'unbind']);
  assertClean(w);
});

test('uevents: add then bind on probe with DRIVER, the bus variables and SEQNUM in order', () => {
  const w = makeWorld();
  const seq = w.core.sysfs.uevents.seqnum;
  addCard(w, 5, [4]);
  const ev = w.core.sysfs.uevents.list(seq);
  assert.deepEqual(ev.map((e) => `${e.action} ${e.devpath} (${e.subsystem})`), [
    'add /devices/ap/card05 (ap)',
    'bind /devices/ap/card05 (ap)',
    'add /devices/ap/card05/05.0004 (ap)',
    'bind /devices/ap/card05/05.0004 (ap)',
  ]);
  assert.deepEqual(ev[0]!.env, ['ACTION=add', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'DEVTYPE=ap_card', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', `SEQNUM=${seq + 1}`]);
  assert.deepEqual(ev[1]!.env, ['ACTION=bind', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'DEVTYPE=ap_card', 'DRIVER=cex4card', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', `SEQNUM=${seq + 2}`]);
  assert.equal(formatUdevMonitor(ev[1]!), [
    'KERNEL[0.000000] bind     /devices/ap/card05 (ap)',
    'ACTION=bind', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'DEVTYPE=ap_card', 'DRIVER=cex4card', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', `SEQNUM=${seq + 2}`, '', '',
  ].join('\n'));
  // The uevent file shows what dev_uevent adds, nothing else.
  assert.deepEqual(w.core.sysfs.read('/sys/devices/ap/card05/uevent'), { ok: true, data: 'DEVTYPE=ap_card\nDRIVER=cex4card\nDEV_TYPE=000D\nMODALIAS=ap:t0D\n' });
  // The root device got its bus after registration, like ap_root_device.
  assert.deepEqual(w.core.sysfs.read('/sys/devices/ap/uevent'), { ok: true, data: '' });
  assertClean(w);
});

test('device_del: unbind (MODALIAS dropped, no DRIVER) then remove, links gone', () => {
  const w = makeWorld();
  const { card, queues } = addCard(w, 5, [4]);
  const seq = w.core.sysfs.uevents.seqnum;
  w.run(device_del(queues[0]!));
  w.run(device_unregister(card));
  const ev = w.core.sysfs.uevents.list(seq);
  assert.deepEqual(ev.map((e) => `${e.action} ${e.devpath}`), [
    'unbind /devices/ap/card05/05.0004',
    'remove /devices/ap/card05/05.0004',
    'unbind /devices/ap/card05',
    'remove /devices/ap/card05',
  ]);
  assert.deepEqual(ev[2]!.env, ['ACTION=unbind', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'DEVTYPE=ap_card', 'DEV_TYPE=000D', `SEQNUM=${seq + 3}`]);
  assert.deepEqual(ev[3]!.env, ['ACTION=remove', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'DEVTYPE=ap_card', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', `SEQNUM=${seq + 4}`]);
  const s = w.core.sysfs;
  assert.deepEqual(s.readdir('/sys/devices/ap'), ['uevent']);
  assert.deepEqual(s.readdir('/sys/bus/ap/devices'), []);
  assert.deepEqual(s.readdir('/sys/bus/ap/drivers/cex4card'), ['bind', 'uevent', 'unbind']);
  assert.deepEqual(w.removed, ['cex4queue:05.0004', 'cex4card:card05']);
  assert.equal(card.driver, null);
  assertClean(w);
});

test('driver_register binds existing devices before announcing itself; unregister unbinds first', () => {
  const w = makeWorld({ drivers: false });
  addCard(w, 1, [2]);
  addCard(w, 3, []);
  assert.equal(w.core.sysfs.find('/sys/devices/ap/card01/driver', false), null);
  const seq = w.core.sysfs.uevents.seqnum;
  w.run(driver_register_(w, 'cex4card'));
  assert.deepEqual(events(w, seq), ['bind /devices/ap/card01', 'bind /devices/ap/card03', 'add /bus/ap/drivers/cex4card']);
  assert.equal(w.core.sysfs.uevents.list(seq)[2]!.subsystem, 'drivers');
  const seq2 = w.core.sysfs.uevents.seqnum;
  w.run(driver_unregister(w.cex4card));
  assert.deepEqual(events(w, seq2), ['unbind /devices/ap/card03', 'unbind /devices/ap/card01', 'remove /bus/ap/drivers/cex4card']);
  assert.deepEqual(w.core.sysfs.readdir('/sys/bus/ap/drivers'), []);
  assert.throws(() => w.run(driver_register_(w, 'cex4queue'), 'insmod'), () => true);
  assertClean(w);
});

function driver_register_(w: ReturnType<typeof makeWorld>, name: 'cex4card' | 'cex4queue'): KGen<void> {
  return (function* (): KGen<void> {
    yield* driverRegister(name === 'cex4card' ? w.cex4card : w.cex4queue);
    if (name === 'cex4queue') yield* driverRegister(w.cex4queue); // duplicate: EBUSY
  })();
}
import { driver_register as driverRegister } from '../../src/base/index.js';

test('driver_register of a duplicate name fails with EBUSY and logs the kernel line', () => {
  const w = makeWorld();
  let err: unknown;
  try {
    w.run(driverRegister({ name: 'cex4card', bus: w.bus }));
  } catch (e) {
    err = e;
  }
  assert.equal((err as { cause?: { errno?: number } }).cause?.errno, E.EBUSY);
  assert.match(w.k.dmesg(), /Error: Driver 'cex4card' is already registered, aborting\.\.\./);
});

test('class devices: /sys/devices/virtual/<class>/<dev>, /sys/class links, glue dirs, class_compat', () => {
  const k = new Kernel();
  const core = new DriverCore(k);
  const cls: Class = { name: 'vfio' };
  class_register(core, cls);
  const v = new Device(core, 'vfio');
  v.class = cls;
  runInTask(k, 'modprobe', device_add(v));
  const s = core.sysfs;
  assert.equal(v.path, '/sys/devices/virtual/vfio/vfio');
  assert.equal(s.readlink('/sys/class/vfio/vfio'), '../../devices/virtual/vfio/vfio');
  assert.equal(s.readlink('/sys/devices/virtual/vfio/vfio/subsystem'), '../../../../class/vfio');
  // A class device below a non-class parent goes into a glue directory.
  const parent = new Device(core, 'vfio_ap');
  runInTask(k, 'modprobe', device_add(parent));
  const c = new Device(core, 'matrix');
  c.parent = parent;
  c.class = cls;
  runInTask(k, 'modprobe', device_add(c));
  assert.equal(c.path, '/sys/devices/vfio_ap/vfio/matrix');
  assert.equal(s.readlink('/sys/devices/vfio_ap/vfio/matrix/device'), '../../../vfio_ap');
  assert.deepEqual(s.uevents.list().map((e) => `${e.action} ${e.devpath} (${e.subsystem})`), [
    'add /class/vfio (class)',
    'add /devices/virtual/vfio/vfio (vfio)',
    'add /devices/vfio_ap/vfio/matrix (vfio)',
  ]);
  runInTask(k, 'rmmod', device_del(c));
  assert.equal(s.find('/sys/devices/vfio_ap/vfio'), null, 'empty glue dir removed');
  // class_compat: /sys/class/mdev_bus/matrix -> the parent device
  const m = new Device(core, 'matrix');
  m.parent = parent;
  runInTask(k, 'modprobe', device_add(m));
  const compat = class_compat_register(core, 'mdev_bus');
  class_compat_create_link(compat, m);
  assert.equal(s.readlink('/sys/class/mdev_bus/matrix'), '../../devices/vfio_ap/matrix');
  assert.deepEqual(k.bugs, []);
});

test('device_add errors: no name, duplicate name, unregistered bus', () => {
  const w = makeWorld();
  const d = new Device(w.core, '');
  assert.throws(() => w.run(device_add(d)), (e: any) => e.cause?.errno === E.EINVAL);
  const c = new Device(w.core, 'card05');
  c.parent = w.root;
  w.run(device_add(c));
  const dup = new Device(w.core, 'card05');
  dup.parent = w.root;
  assert.throws(() => w.run(device_add(dup)), (e: any) => e.cause?.errno === E.EEXIST);
});
