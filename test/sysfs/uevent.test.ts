import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E, Kernel } from '../../src/kernel/index.js';
import { Sysfs, parse_synth_uevent, uuid_is_valid, formatUdevMonitor, udevMonitorHeader, UeventEnv, type Uevent } from '../../src/sysfs/index.js';

test('synthetic uevent syntax (kobject_action_type / kobject_action_args)', () => {
  const u = '0123abcd-0123-4567-89ab-0123456789AB';
  assert.deepEqual(parse_synth_uevent('add'), { action: 'add', env: ['SYNTH_UUID=0'] });
  assert.deepEqual(parse_synth_uevent('change\n'), { action: 'change', env: ['SYNTH_UUID=0'] });
  assert.deepEqual(parse_synth_uevent('unbind\0'), { action: 'unbind', env: ['SYNTH_UUID=0'] });
  assert.deepEqual(parse_synth_uevent(`move ${u}\n`), { action: 'move', env: [`SYNTH_UUID=${u}`] });
  assert.deepEqual(parse_synth_uevent(`online ${u} K1=v1 K2=v2`), { action: 'online', env: [`SYNTH_UUID=${u}`, 'SYNTH_ARG_K1=v1', 'SYNTH_ARG_K2=v2'] });
  for (const bad of ['', '\n', 'ad', 'addd', 'ADD', ' add', 'add\n\n'])
    assert.deepEqual(parse_synth_uevent(bad), { error: 'unknown uevent action string' }, JSON.stringify(bad));
  for (const bad of ['add ', 'add x', `add ${u}K=v`, `add ${u} K=`, `add ${u} =v`, `add ${u} K-x=v`, `add ${u} K=v `, `add ${u} K=v!`])
    assert.deepEqual(parse_synth_uevent(bad), { error: 'incorrect uevent action arguments' }, JSON.stringify(bad));
  assert.equal(uuid_is_valid(u), true);
  assert.equal(uuid_is_valid('0123abcd-0123-4567-89ab-0123456789AX'), false);
});

test('kobject_uevent: env order, SEQNUM, extras, filter and missing kset', () => {
  const k = new Kernel();
  const s = new Sysfs(k);
  const kset = s.mkset(s.root, 'devices');
  kset.uevent_ops = {
    filter: (o) => o.name !== 'quiet',
    name: () => 'ap',
    uevent(_o, env: UeventEnv) {
      env.add('DEV_TYPE=000D');
      env.add('MODALIAS=ap:t0D');
    },
  };
  const d = s.mkobj(kset, 'ap', { name: 'device', missingOp: E.EIO, showFn: 'dev_attr_show' }, null, kset);
  const seen: Uevent[] = [];
  const off = s.uevents.subscribe((e) => seen.push(e));
  assert.equal(s.kobject_uevent(d, 'change', ['APMASK=0xff']), 0);
  assert.equal(s.kobject_uevent(d, 'unbind'), 0);
  off();
  assert.equal(s.kobject_uevent(s.mkobj(kset, 'quiet', { name: 'device', missingOp: E.EIO, showFn: 'x' }, null, kset), 'add'), 0);
  assert.equal(s.kobject_uevent(s.mkdirp('/sys/nokset'), 'add'), -E.EINVAL);
  assert.deepEqual(seen.map((e) => e.env), [
    ['ACTION=change', 'DEVPATH=/devices/ap', 'SUBSYSTEM=ap', 'APMASK=0xff', 'DEV_TYPE=000D', 'MODALIAS=ap:t0D', 'SEQNUM=1'],
    ['ACTION=unbind', 'DEVPATH=/devices/ap', 'SUBSYSTEM=ap', 'DEV_TYPE=000D', 'SEQNUM=2'],
  ]);
  assert.equal(s.uevents.list().length, 2);
  assert.equal(s.uevents.list(1).length, 1);
});

test('udevadm monitor --kernel --property format', () => {
  const e: Uevent = { seqnum: 7, ts: 12_345_678_901, action: 'change', devpath: '/devices/ap', subsystem: 'ap', env: ['ACTION=change', 'DEVPATH=/devices/ap', 'SUBSYSTEM=ap', 'APMASK=0x41', 'SEQNUM=7'] };
  assert.equal(formatUdevMonitor(e), 'KERNEL[12.345678] change   /devices/ap (ap)\nACTION=change\nDEVPATH=/devices/ap\nSUBSYSTEM=ap\nAPMASK=0x41\nSEQNUM=7\n\n');
  assert.equal(formatUdevMonitor({ ...e, action: 'unbind' }, false), 'KERNEL[12.345678] unbind   /devices/ap (ap)\n');
  assert.equal(udevMonitorHeader(), 'monitor will print the received events for:\nKERNEL - the kernel uevent\n\n');
});
