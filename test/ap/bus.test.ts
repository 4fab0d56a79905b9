import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot, driverOf, FULL, NonDefaultDouble } from './helpers.js';
import { E } from '../../src/kernel/index.js';
import { apqn, formatMask, maskFromIds } from '../../src/hw/index.js';

const BUS = '/sys/bus/ap';

test('scenario 1: default masks are all ones and every CEX4+ queue is bound to cex4queue', () => {
  const h = boot();
  assert.equal(h.read(`${BUS}/apmask`), FULL);
  assert.equal(h.read(`${BUS}/aqmask`), FULL);
  const queues = h.ls(`${BUS}/devices`).filter((n) => n.includes('.'));
  assert.equal(queues.length, 11 * 34); // 12 configured adapters, card0a is a CEX3C
  for (const q of queues) assert.equal(h.sysfs.readlink(`${BUS}/devices/${q}/driver`), '../../../../bus/ap/drivers/cex4queue', q);
  assert.equal(h.read(`${BUS}/bindings`), '374/374 (complete)\n');
  assert.deepEqual(h.k.bugs, []);
});

test('the bus tree: links, card and queue attributes in the kernel formats', () => {
  const h = boot();
  assert.equal(h.sysfs.readlink(`${BUS}/devices/card05`), '../../../devices/ap/card05');
  assert.equal(h.sysfs.readlink(`${BUS}/devices/05.0047`), '../../../devices/ap/card05/05.0047');
  assert.equal(h.sysfs.readlink('/sys/devices/ap/card05/driver'), '../../../bus/ap/drivers/cex4card');
  assert.equal(h.sysfs.readlink('/sys/devices/ap/card05/subsystem'), '../../../bus/ap');
  const card = (a: string) => h.read(`/sys/devices/ap/card05/${a}`);
  assert.deepEqual(
    ['type', 'hwtype', 'raw_hwtype', 'depth', 'ap_functions', 'modalias', 'config', 'chkstop', 'online', 'max_msg_size', 'serialnr', 'request_count'].map(card),
    ['CEX8C\n', '14\n', '14\n', '8\n', '0xF3000000\n', 'ap:t0E\n', '1\n', '0\n', '1\n', '12288\n', '93AADFL2\n', '0\n'],
  );
  assert.equal(h.read('/sys/devices/ap/card01/type'), 'CEX8A\n');
  assert.equal(h.read('/sys/devices/ap/card02/type'), 'CEX8P\n');
  assert.equal(h.read('/sys/devices/ap/card02/FW_version'), '8.1\n');
  assert.throws(() => h.read('/sys/devices/ap/card01/serialnr'), /ENOENT/); // accelerators have none
  assert.equal(h.read('/sys/devices/ap/card09/type'), 'CEX6C\n');
  assert.deepEqual(h.ls('/sys/devices').includes('ap'), true);
  assert.equal(h.ls('/sys/devices/ap').includes('card0a'), false, 'CEX3C never gets a device');
  // card0c is installed but in standby (SCLP deconfigured): a card with config 0.
  assert.equal(h.read('/sys/devices/ap/card0c/config'), '0\n');
  assert.equal(h.read('/sys/devices/ap/card0c/online'), '0\n');
  const q = (a: string) => h.read(`/sys/devices/ap/card05/05.0004/${a}`);
  assert.deepEqual(
    ['online', 'request_count', 'requestq_count', 'pendingq_count', 'reset', 'interrupt', 'config', 'chkstop', 'load', 'driver_override'].map(q),
    ['1\n', '0\n', '0\n', '0\n', 'No Reset Timer set.\n', 'Interrupts enabled.\n', '1\n', '0\n', '0\n', '\n'],
  );
  const b = (a: string) => h.read(`${BUS}/${a}`);
  assert.deepEqual(
    ['ap_domain', 'ap_max_adapter_id', 'ap_max_domain_id', 'ap_interrupts', 'config_time', 'poll_thread', 'poll_timeout', 'features', 'scans'].map(b),
    ['0\n', '63\n', '255\n', '1\n', '30\n', '0\n', '250000\n', 'APSC APXA QACT RC8A\n', '1\n'],
  );
  assert.equal(b('ap_adapter_mask'), formatMask(maskFromIds([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12])) + '\n');
  assert.equal(h.sysfs.stat(`${BUS}/apmask`).mode & 0o777, 0o644);
  assert.equal(h.sysfs.stat(`${BUS}/ap_domain`).mode & 0o777, 0o644);
  assert.equal(h.sysfs.stat('/sys/devices/ap/card05/hwtype').mode & 0o777, 0o444);
});

test('boot uevents: cards and queues carry DEV_TYPE/MODALIAS/MODE; INITSCAN then BINDINGS=complete', () => {
  const h = boot({ profile: 'minimal' });
  const ev = h.sysfs.uevents.list();
  const card = ev.find((e) => e.devpath === '/devices/ap/card00' && e.action === 'add')!;
  assert.deepEqual(card.env.slice(0, 6), ['ACTION=add', 'DEVPATH=/devices/ap/card00', 'SUBSYSTEM=ap', 'DEV_TYPE=000E', 'MODALIAS=ap:t0E', 'MODE=cca']);
  const q = ev.find((e) => e.devpath === '/devices/ap/card01/01.0002' && e.action === 'add')!;
  assert.deepEqual(q.env.slice(0, 4), ['ACTION=add', 'DEVPATH=/devices/ap/card01/01.0002', 'SUBSYSTEM=ap', 'MODE=accel']);
  const root = ev.filter((e) => e.devpath === '/devices/ap' && e.action === 'change').map((e) => e.env.filter((x) => !x.startsWith('SEQNUM')).slice(3));
  assert.deepEqual(root, [['INITSCAN=done'], ['BINDINGS=complete', 'COMPLETECOUNT=1']]);
});

test('scenario 2: absolute apmask 0x41 keeps adapters 1 and 7; other queues go to the non-default driver', () => {
  const h = boot();
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  const seq = h.sysfs.uevents.seqnum;
  assert.equal(h.write(`${BUS}/apmask`, '0x41\n'), 5);
  assert.equal(h.read(`${BUS}/apmask`), '0x41' + '0'.repeat(62) + '\n');
  assert.equal(driverOf(h, '01.0004'), 'cex4queue');
  assert.equal(driverOf(h, '05.0004'), 'vfio_ap');
  assert.equal(driverOf(h, '00.00ab'), 'vfio_ap');
  assert.equal(h.read('/sys/devices/ap/card05/driver/card05/type'), 'CEX8C\n', 'cards stay with cex4card');
  const ch = h.sysfs.uevents.list(seq).filter((e) => e.devpath === '/devices/ap' && e.action === 'change');
  assert.equal(ch.length, 1);
  assert.equal(ch[0]!.env[3], 'APMASK=0x41' + '0'.repeat(62) + '\n');
  // Unbound queues lost "online" (a zcrypt attribute) and gained nothing from the double.
  assert.throws(() => h.read('/sys/devices/ap/card05/05.0004/online'), /ENOENT/);
  assert.equal(h.read(`${BUS}/bindings`), '374/374 (complete)\n');
  assert.deepEqual(h.k.bugs, []);
});

test('scenario 3: relative -5,-6 clears only bits 5 and 6 and rebinds 05.* and 06.*', () => {
  const h = boot();
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  h.write(`${BUS}/apmask`, '-5,-6');
  assert.equal(h.read(`${BUS}/apmask`), '0xf9' + 'f'.repeat(62) + '\n');
  for (const q of ['05.0000', '05.00ab', '06.0047']) assert.equal(driverOf(h, q), 'vfio_ap', q);
  for (const q of ['04.0000', '08.00ab']) assert.equal(driverOf(h, q), 'cex4queue', q);
  assert.equal(vfio.probed.length, 2 * 34);
});

test('scenario 4 and 5: ranges with overrides, and hex bit numbers', () => {
  const h = boot({ ap: { apmask: '0x', aqmask: '0x' } });
  assert.equal(h.read(`${BUS}/apmask`), '0x' + '0'.repeat(64) + '\n');
  h.write(`${BUS}/apmask`, '+0-15,-8\n');
  assert.equal(h.read(`${BUS}/apmask`), '0xff7f' + '0'.repeat(60) + '\n');
  h.write(`${BUS}/aqmask`, '+0x47');
  assert.equal(h.read(`${BUS}/aqmask`), '0x' + '0'.repeat(17) + '1' + '0'.repeat(46) + '\n');
  assert.equal(driverOf(h, '05.0047'), 'cex4queue');
  assert.equal(driverOf(h, '05.0004'), null, 'not reserved and no non-default driver loaded');
  assert.equal(h.read(`${BUS}/bindings`), '10/374\n'); // adapters 0-6, 9, 11, 12 x domain 0x47
});

test('scenario 6: syntax errors give EINVAL and change nothing; "5" is absolute hex', () => {
  const h = boot();
  for (const bad of ['+256', '+5-3', '5,+6', 'f'.repeat(65), '+5 ']) {
    assert.equal(h.tryWrite(`${BUS}/apmask`, bad), E.EINVAL, bad);
    assert.equal(h.read(`${BUS}/apmask`), FULL);
  }
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  h.write(`${BUS}/apmask`, '5');
  assert.equal(h.read(`${BUS}/apmask`), '0x5' + '0'.repeat(63) + '\n');
  assert.equal(driverOf(h, '01.0000'), 'cex4queue');
  assert.equal(driverOf(h, '03.0000'), 'cex4queue');
  assert.equal(driverOf(h, '05.0000'), 'vfio_ap');
});

test('scenario 7: setting a bit that would take an assigned APQN fails with EBUSY and logs it', () => {
  const h = boot();
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  h.write(`${BUS}/apmask`, '-5');
  vfio.assigned.set(apqn(5, 4), '62177883-f1bb-47f0-914d-32a22e3a8804');
  const before = h.k.log.nextSeq;
  assert.equal(h.tryWrite(`${BUS}/apmask`, '+5'), E.EBUSY);
  assert.equal(h.read(`${BUS}/apmask`), '0xfb' + 'f'.repeat(62) + '\n');
  assert.deepEqual(
    h.k.log.records(before).map((r) => r.text),
    ['vfio_ap_mdev 62177883-f1bb-47f0-914d-32a22e3a8804: Userspace may not re-assign queue 05.0004 already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804'],
  );
  assert.equal(driverOf(h, '05.0004'), 'vfio_ap');
  // Clearing bits never asks in_use.
  assert.equal(h.tryWrite(`${BUS}/aqmask`, '-4'), 0);
  // With aqmask bit 4 clear, 05.0004 would not become reserved: the same write succeeds.
  assert.equal(h.tryWrite(`${BUS}/apmask`, '+5'), 0);
  assert.equal(driverOf(h, '05.0004'), 'vfio_ap');
  assert.equal(driverOf(h, '05.0005'), 'cex4queue');
});

test('scenario 12 (bus side): a queue unbound from the non-default driver stays unbound', () => {
  const h = boot();
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  h.write(`${BUS}/apmask`, '-5,-6');
  h.write(`${BUS}/drivers/vfio_ap/unbind`, '06.00ab\n');
  assert.equal(driverOf(h, '06.00ab'), null);
  assert.equal(h.read(`${BUS}/bindings`), '373/374\n');
  // Binding it to the default driver is refused by the reservation check.
  assert.equal(h.tryWrite(`${BUS}/drivers/cex4queue/bind`, '06.00ab'), E.ENODEV);
  assert.equal(h.tryWrite(`${BUS}/drivers/vfio_ap/bind`, '06.00ab'), 0);
  assert.equal(h.tryWrite(`${BUS}/drivers/vfio_ap/bind`, '04.0000'), E.EBUSY, 'already bound');
  h.write(`${BUS}/drivers/cex4queue/unbind`, '04.0000');
  assert.equal(h.tryWrite(`${BUS}/drivers/vfio_ap/bind`, '04.0000'), E.ENODEV, 'reserved for the default drivers');
  assert.equal(h.tryWrite(`${BUS}/drivers/cex4queue/bind`, '04.0000'), 0);
});

test('scenario 29: card config off deconfigures at once; queues follow at the next scan; online needs config', () => {
  const h = boot();
  const seq = h.sysfs.uevents.seqnum;
  h.write('/sys/devices/ap/card05/config', '0\n');
  assert.equal(h.read('/sys/devices/ap/card05/config'), '0\n');
  assert.equal(h.read('/sys/devices/ap/card05/online'), '0\n');
  const ev = h.sysfs.uevents.list(seq);
  assert.deepEqual(ev.map((e) => [e.devpath, e.env[3]]), [['/devices/ap/card05', 'CONFIG=0']]);
  assert.equal(h.machine.tapq(apqn(5, 4)).status.responseCode, 3);
  assert.equal(h.read('/sys/devices/ap/card05/05.0004/config'), '1\n', 'queues change at the next scan');
  // A request in flight on 05.0004 ...
  const msg = h.zcrypt!.send(apqn(5, 4), { psmid: 1n, msg: new Uint8Array(8), special: false });
  h.write(`${BUS}/scans`, '1');
  assert.equal(h.read('/sys/devices/ap/card05/05.0004/config'), '0\n');
  // The NQAP itself already saw RC 03 and put the queue into ERROR.
  assert.equal(h.ap.queue(apqn(5, 4))!.sm.statesText(), 'ERROR [IDLE]\n');
  assert.equal(h.ap.queue(apqn(5, 4))!.sm.last_err_rc, 3);
  assert.equal(msg.rc, -E.EAGAIN!, 'flushed');
  assert.equal(h.tryWrite('/sys/devices/ap/card05/online', '1'), E.ENODEV);
  assert.equal(h.tryWrite('/sys/devices/ap/card05/config', '2'), E.EINVAL);
  // Back on: the queue is re-initialised by the scan after config comes back.
  h.write('/sys/devices/ap/card05/config', '1');
  h.write(`${BUS}/scans`, '1');
  h.advance(200_000_000);
  assert.equal(h.read('/sys/devices/ap/card05/05.0004/config'), '1\n');
  assert.equal(h.ap.queue(apqn(5, 4))!.sm.statesText(), 'OPERATING [IDLE]\n');
  // sscanf("%d"): blanks and junk after the digit pass, a '+' sign does not.
  h.write('/sys/devices/ap/card05/online', '0\n');
  for (const bad of ['+1', '2', '-1', 'on', '']) assert.equal(h.tryWrite('/sys/devices/ap/card05/online', bad), bad === '' ? 0 : E.EINVAL, JSON.stringify(bad));
  assert.equal(h.read('/sys/devices/ap/card05/online'), '0\n');
  h.write('/sys/devices/ap/card05/online', ' 1 junk');
  assert.equal(h.read('/sys/devices/ap/card05/online'), '1\n');
});

test('scenario 30 through zcrypt: depth requests on the adapter, the rest in software, counters in sysfs', () => {
  const h = boot();
  const q = apqn(5, 4);
  const msgs = Array.from({ length: 9 }, (_, i) => h.zcrypt!.send(q, { psmid: BigInt(i + 1), msg: new Uint8Array(4), special: false }));
  const attr = (a: string) => h.read(`/sys/devices/ap/card05/05.0004/${a}`);
  assert.deepEqual([attr('pendingq_count'), attr('requestq_count'), attr('request_count'), attr('reset')], ['8\n', '1\n', '9\n', 'Reset Timer armed.\n']);
  assert.equal(h.read('/sys/devices/ap/card05/request_count'), '9\n');
  h.advance(10_000_000);
  assert.ok(msgs.every((m) => m.done && m.rc === 0));
  assert.deepEqual([attr('pendingq_count'), attr('requestq_count')], ['0\n', '0\n']);
  h.write('/sys/devices/ap/card05/request_count', '0');
  assert.equal(attr('request_count'), '0\n');
});

test('queue reset store: every request flushed with -EAGAIN, the reset runs, the counters stay; queue request_count store resets that queue only', () => {
  const h = boot();
  const q = apqn(5, 4);
  const Q = '/sys/devices/ap/card05/05.0004';
  const attr = (a: string) => h.read(`${Q}/${a}`);
  const msgs = Array.from({ length: 9 }, (_, i) => h.zcrypt!.send(q, { psmid: BigInt(i + 1), msg: new Uint8Array(4), special: false }));
  assert.deepEqual([attr('pendingq_count'), attr('requestq_count'), attr('request_count'), attr('reset')], ['8\n', '1\n', '9\n', 'Reset Timer armed.\n']);
  // Any write: like echo 1 > reset.
  assert.equal(h.write(`${Q}/reset`, 'anything'), 8);
  assert.deepEqual([attr('pendingq_count'), attr('requestq_count'), attr('request_count'), attr('reset')], ['0\n', '0\n', '9\n', 'Reset in progress.\n']);
  assert.deepEqual(msgs.map((m) => [m.done, m.rc]), Array.from({ length: 9 }, () => [true, -E.EAGAIN]));
  h.advance(200_000_000);
  assert.equal(attr('reset'), 'No Reset Timer set.\n');
  assert.equal(h.ap.queue(q)!.sm.statesText(), 'OPERATING [IDLE]\n');
  // The queue's counter is reset, the card's and the other queues' are not.
  h.zcrypt!.send(apqn(5, 5), { psmid: 99n, msg: new Uint8Array(4), special: false });
  h.write(`${Q}/request_count`, '0');
  assert.deepEqual([attr('request_count'), h.read('/sys/devices/ap/card05/request_count'), h.read('/sys/devices/ap/card05/05.0005/request_count')], ['0\n', '10\n', '1\n']);
  assert.deepEqual(h.k.bugs, []);
});

test('scenario 32: config_time accepts 5..120 and re-arms the scan timer', () => {
  const h = boot();
  assert.equal(h.tryWrite(`${BUS}/config_time`, '4'), E.EINVAL);
  assert.equal(h.tryWrite(`${BUS}/config_time`, '121'), E.EINVAL);
  assert.equal(h.tryWrite(`${BUS}/config_time`, 'abc'), E.EINVAL);
  assert.equal(h.read(`${BUS}/config_time`), '30\n');
  h.write(`${BUS}/config_time`, '60\n');
  const scans = () => Number(h.read(`${BUS}/scans`));
  const s0 = scans();
  h.advance(59_000_000_000);
  assert.equal(scans(), s0);
  h.advance(2_000_000_000);
  assert.equal(scans(), s0 + 1);
});

test('scenario 33: driver_override is refused while a mask is not all ones; with all ones it decides the driver', () => {
  const h = boot();
  const vfio = new NonDefaultDouble(h);
  vfio.register(h);
  h.write(`${BUS}/aqmask`, '-4');
  assert.equal(h.tryWrite('/sys/devices/ap/card05/05.0004/driver_override', 'vfio_ap'), E.EINVAL);
  h.write(`${BUS}/aqmask`, '+4');
  h.write('/sys/devices/ap/card05/05.0004/driver_override', 'vfio_ap\n');
  assert.equal(h.read('/sys/devices/ap/card05/05.0004/driver_override'), 'vfio_ap\n');
  h.write(`${BUS}/drivers/cex4queue/unbind`, '05.0004');
  h.write(`${BUS}/drivers/vfio_ap/bind`, '05.0004');
  assert.equal(driverOf(h, '05.0004'), 'vfio_ap');
  assert.equal(h.tryWrite(`${BUS}/apmask`, '-7'), E.EBUSY, 'masks are frozen while overrides exist');
  h.write('/sys/devices/ap/card05/05.0004/driver_override', '\n');
  assert.equal(h.read('/sys/devices/ap/card05/05.0004/driver_override'), '\n');
  assert.equal(h.tryWrite(`${BUS}/apmask`, '-7'), 0);
});

test('bus attribute stores: ap_domain (%i, in aqmask, <= max), poll_timeout, poll_thread', () => {
  const h = boot();
  h.write(`${BUS}/ap_domain`, '0x05\n');
  assert.equal(h.read(`${BUS}/ap_domain`), '5\n');
  assert.equal(h.tryWrite(`${BUS}/ap_domain`, '256'), E.EINVAL);
  assert.equal(h.tryWrite(`${BUS}/ap_domain`, '-1'), E.EINVAL);
  h.write(`${BUS}/aqmask`, '-9');
  assert.equal(h.tryWrite(`${BUS}/ap_domain`, '9'), E.EINVAL);
  h.write(`${BUS}/poll_timeout`, '500000');
  assert.equal(h.read(`${BUS}/poll_timeout`), '500000\n');
  assert.equal(h.tryWrite(`${BUS}/poll_timeout`, '0'), E.EINVAL);
  assert.equal(h.tryWrite(`${BUS}/poll_timeout`, '12x'), E.EINVAL);
  h.write(`${BUS}/poll_thread`, 'y');
  assert.equal(h.read(`${BUS}/poll_thread`), '1\n');
  assert.equal(h.tryWrite(`${BUS}/poll_thread`, 'maybe'), E.EINVAL);
  assert.equal(h.tryWrite(`${BUS}/bindings`, '1'), E.EACCES);
});

test('HMC: removing an adapter removes its devices at the next scan (CHSC notification forces it)', () => {
  const h = boot();
  const scans = Number(h.read(`${BUS}/scans`));
  h.machine.hmc.removeAdapter(6);
  h.settle();
  assert.equal(Number(h.read(`${BUS}/scans`)), scans + 1);
  assert.equal(h.ls('/sys/devices/ap').includes('card06'), false);
  assert.equal(h.ls(`${BUS}/devices`).some((n) => n.startsWith('06.')), false);
  h.machine.hmc.addAdapter(6);
  h.settle();
  assert.equal(h.ls(`${BUS}/devices`).filter((n) => n.startsWith('06.')).length, 34);
  h.machine.hmc.removeUsageDomain(0x47);
  h.settle();
  assert.equal(h.ls(`${BUS}/devices`).some((n) => n.endsWith('.0047')), false);
  assert.deepEqual(h.k.bugs, []);
});
