import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, Kernel, type KGen } from '../../src/kernel/index.js';
import { bus_register, bus_rescan_devices, Device, device_add, DriverCore, driver_register, type BusType } from '../../src/base/index.js';
import { runInTask } from '../../src/sysfs/index.js';
import { makeWorld, addCard, events, assertClean } from './helpers.js';

test('unbind/bind through sysfs: errno for unknown, bound, wrong driver; links follow', () => {
  const w = makeWorld();
  addCard(w, 5, [4, 0x47]);
  const s = w.core.sysfs;
  const seq = s.uevents.seqnum;
  // unbind from a driver it is not bound to, or an unknown device: ENODEV
  assert.deepEqual(s.write('/sys/bus/ap/drivers/vfio_ap/unbind', '05.0004\n'), { ok: false, errno: E.ENODEV });
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/unbind', '05.00ff\n'), { ok: false, errno: E.ENODEV });
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/unbind', '05.0004\n'), { ok: true, count: 8 });
  assert.equal(s.find('/sys/devices/ap/card05/05.0004/driver', false), null);
  assert.deepEqual(s.readdir('/sys/bus/ap/drivers/cex4queue'), ['05.0047', 'bind', 'uevent', 'unbind']);
  // bind: a driver that does not match -> ENODEV; the matching one works
  assert.deepEqual(s.write('/sys/bus/ap/drivers/vfio_ap/bind', '05.0004'), { ok: false, errno: E.ENODEV });
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: true, count: 8 });
  assert.equal(s.readlink('/sys/devices/ap/card05/05.0004/driver'), '../../../../bus/ap/drivers/cex4queue');
  // already bound: EBUSY (also for another, matching driver)
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: false, errno: E.EBUSY });
  w.forVfio.add('05.0047');
  assert.deepEqual(s.write('/sys/bus/ap/drivers/vfio_ap/bind', '05.0047'), { ok: false, errno: E.EBUSY });
  // unknown device, a card through a queue driver: ENODEV
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', 'nonexistent'), { ok: false, errno: E.ENODEV });
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', 'card05'), { ok: false, errno: E.ENODEV });
  assert.deepEqual(events(w, seq), ['unbind /devices/ap/card05/05.0004', 'bind /devices/ap/card05/05.0004']);
  // the bind files are write-only, even for root
  assert.deepEqual(s.read('/sys/bus/ap/drivers/cex4queue/bind'), { ok: false, errno: E.EACCES });
  assert.equal(w.k.allTasks.filter((t) => t.name === 'bash').length, 9);
  assertClean(w);
});

test('bind of a device on another bus is ENODEV', () => {
  const w = makeWorld();
  const other: BusType = { name: 'other' };
  bus_register(w.core, other);
  const d = new Device(w.core, 'thing0');
  d.bus = other;
  w.run(device_add(d));
  assert.deepEqual(w.core.sysfs.write('/sys/bus/ap/drivers/cex4card/bind', 'thing0\n'), { ok: false, errno: E.ENODEV });
  assertClean(w);
});

test('probe failure: the error propagates to bind, is logged, and leaves no links', () => {
  const w = makeWorld();
  w.probeFail.set('05.0004', -E.EINVAL);
  addCard(w, 5, [4]);
  const s = w.core.sysfs;
  assert.match(w.k.dmesg(), /cex4queue 05\.0004: probe with driver cex4queue failed with error -22/);
  assert.equal(s.find('/sys/devices/ap/card05/05.0004/driver', false), null);
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: false, errno: E.EINVAL });
  // an Errno thrown by the probe counts the same
  w.probeFail.set('05.0004', -E.EIO);
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: false, errno: E.EIO });
  // -ENODEV / -ENXIO reject silently
  w.probeFail.set('05.0004', -E.ENXIO);
  const before = w.k.dmesg();
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: false, errno: E.ENXIO });
  assert.equal(w.k.dmesg(), before);
  w.probeFail.delete('05.0004');
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4queue/bind', '05.0004\n'), { ok: true, count: 8 });
  assert.equal(s.readlink('/sys/bus/ap/drivers/cex4queue/05.0004'), '../../../../devices/ap/card05/05.0004');
  assert.deepEqual(w.k.bugs, []);
});

test('drivers_autoprobe=0 leaves new devices unbound; drivers_probe and bus_rescan_devices bind them', () => {
  const w = makeWorld();
  const s = w.core.sysfs;
  assert.deepEqual(s.write('/sys/bus/ap/drivers_autoprobe', '0\n'), { ok: true, count: 2 });
  assert.deepEqual(s.read('/sys/bus/ap/drivers_autoprobe'), { ok: true, data: '0\n' });
  const { card, queues } = addCard(w, 6, [1]);
  assert.equal(card.driver, null);
  assert.deepEqual(s.write('/sys/bus/ap/drivers_probe', 'card06\n'), { ok: true, count: 7 });
  assert.equal(card.driver, w.cex4card);
  assert.deepEqual(s.write('/sys/bus/ap/drivers_probe', 'card99\n'), { ok: false, errno: E.ENODEV });
  assert.equal(queues[0]!.driver, null);
  assert.equal(w.run(bus_rescan_devices(w.bus)), 0);
  assert.equal(queues[0]!.driver, w.cex4queue);
  // anything but a leading '0' turns it back on
  assert.deepEqual(s.write('/sys/bus/ap/drivers_autoprobe', 'x'), { ok: true, count: 1 });
  assert.deepEqual(s.read('/sys/bus/ap/drivers_autoprobe'), { ok: true, data: '1\n' });
  assertClean(w);
});

test('synthetic uevents through the uevent files of a device, a bus and a driver', () => {
  const w = makeWorld();
  addCard(w, 5, []);
  const s = w.core.sysfs;
  const seq = s.uevents.seqnum;
  assert.deepEqual(s.write('/sys/devices/ap/card05/uevent', 'change\n'), { ok: true, count: 7 });
  assert.deepEqual(s.write('/sys/bus/ap/devices/card05/uevent', 'add 12345678-1234-1234-1234-1234567890ab A=1 Bb=xyz\n'), { ok: true, count: 52 });
  assert.deepEqual(s.write('/sys/bus/ap/uevent', 'change'), { ok: true, count: 6 });
  assert.deepEqual(s.write('/sys/bus/ap/drivers/cex4card/uevent', 'add'), { ok: true, count: 3 });
  const ev = s.uevents.list(seq);
  assert.deepEqual(ev[0]!.env, ['ACTION=change', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'SYNTH_UUID=0', 'DEVTYPE=ap_card', 'DRIVER=cex4card', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', `SEQNUM=${seq + 1}`]);
  assert.deepEqual(ev[1]!.env.slice(0, 6), ['ACTION=add', 'DEVPATH=/devices/ap/card05', 'SUBSYSTEM=ap', 'SYNTH_UUID=12345678-1234-1234-1234-1234567890ab', 'SYNTH_ARG_A=1', 'SYNTH_ARG_Bb=xyz']);
  assert.deepEqual(ev[2]!.env, ['ACTION=change', 'DEVPATH=/bus/ap', 'SUBSYSTEM=bus', 'SYNTH_UUID=0', `SEQNUM=${seq + 3}`]);
  assert.deepEqual(ev[3]!.env, ['ACTION=add', 'DEVPATH=/bus/ap/drivers/cex4card', 'SUBSYSTEM=drivers', 'SYNTH_UUID=0', `SEQNUM=${seq + 4}`]);
  // junk: EINVAL and the kernel's two log lines
  assert.deepEqual(s.write('/sys/devices/ap/card05/uevent', 'bogus\n'), { ok: false, errno: E.EINVAL });
  assert.deepEqual(s.write('/sys/devices/ap/card05/uevent', 'add not-a-uuid\n'), { ok: false, errno: E.EINVAL });
  assert.deepEqual(s.write('/sys/bus/ap/uevent', 'explode'), { ok: false, errno: E.EINVAL });
  const log = w.k.dmesg();
  assert.match(log, /synth uevent: \/devices\/ap\/card05: unknown uevent action string/);
  assert.match(log, /cex4card card05: uevent: failed to send synthetic uevent: -22/);
  assert.match(log, /synth uevent: \/devices\/ap\/card05: incorrect uevent action arguments/);
  assert.match(log, /synth uevent: \/bus\/ap: unknown uevent action string/);
  assert.equal(s.uevents.seqnum, seq + 4);
  assertClean(w);
});

test('device_lock is held around probe and remove; lockdep stays clean under random schedules', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const w = makeWorld({ seed });
    addCard(w, 1, [1, 2]);
    const s = w.core.sysfs;
    // Concurrent writers: unbind/bind of the same queue race with each other.
    const results: unknown[] = [];
    const k = w.k;
    for (const [p, d] of [['/sys/bus/ap/drivers/cex4queue/unbind', '01.0001'], ['/sys/bus/ap/drivers/cex4queue/bind', '01.0001'], ['/sys/bus/ap/drivers/cex4queue/unbind', '01.0002']] as const)
      k.spawn('bash', (function* (): KGen {
        results.push(yield* s.write_gen(k, p, d));
      })());
    k.run();
    assert.equal(results.length, 3);
    assertClean(w);
  }
});

test('a bus without match binds every device; a bus probe op runs instead of the driver probe', () => {
  const k = new Kernel();
  const core = new DriverCore(k);
  const calls: string[] = [];
  const bus: BusType = {
    name: 'plain',
    *probe(kk, dev) {
      kk.lockdep_assert_held(dev.mutex);
      yield kk.sched_point();
      calls.push(`bus probe ${dev.name} for ${dev.driver!.name}`);
    },
  };
  bus_register(core, bus);
  runInTask(k, 'modprobe', driver_register({ name: 'drv', bus, *probe() { calls.push('drv probe'); } }));
  const d = new Device(core, 'x0');
  d.bus = bus;
  runInTask(k, 'modprobe', device_add(d));
  assert.deepEqual(calls, ['bus probe x0 for drv']);
  assert.equal(core.sysfs.readlink('/sys/devices/x0/driver'), '../../bus/plain/drivers/drv');
  assert.deepEqual(k.bugs, []);
});
