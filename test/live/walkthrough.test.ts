// End to end through the FUSE mount with plain shell: the AP-bus part of the kernel
// documentation walkthrough (Documentation/arch/s390/vfio-ap.rst: free queues with
// apmask/aqmask, see them rebind to vfio_ap), every errno checked by the message the
// shell prints, modes and links as `ls -l` and `readlink` show them, and the mdev
// assignment errno the brief names (EADDRINUSE) now that vfio_ap is loaded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, sh, skipReason, tempRoot } from './helpers.js';

const skip = skipReason();
let d: Daemon;
let tmp: ReturnType<typeof tempRoot>;

/** bash -c with the mount point in $S (standing for /sys). */
const run = (script: string) => sh(script, { shell: 'bash', env: { S: d.mnt } });

before(async () => {
  if (skip) return;
  tmp = tempRoot('walk');
  d = await new Daemon(tmp.root).ready();
});

after(async () => {
  if (skip) return;
  await d?.stop();
  await tmp?.cleanup();
});

test('the mount looks like sysfs: modes, owners, links, listings', { skip: skip ?? false }, async () => {
  const ls = await run('ls -l $S/bus/ap');
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^-rw-r--r-- 1 root root 4096 .* apmask$/m);
  assert.match(ls.stdout, /^-rw-r--r-- 1 root root 4096 .* aqmask$/m);
  assert.match(ls.stdout, /^-r--r--r-- 1 root root 4096 .* bindings$/m);
  assert.match(ls.stdout, /^--w------- 1 root root 4096 .* drivers_probe$/m);
  assert.match(ls.stdout, /^drwxr-xr-x \d+ root root +0 .* devices$/m);
  const links = await run('readlink $S/bus/ap/devices/05.0004; readlink $S/devices/ap/card05/05.0004/driver; readlink $S/devices/ap/card05/driver');
  assert.equal(links.stdout, '../../../devices/ap/card05/05.0004\n../../../../bus/ap/drivers/cex4queue\n../../../bus/ap/drivers/cex4card\n');
  const l = await run('ls -l $S/bus/ap/devices | head -2');
  assert.match(l.stdout, /^lrwxrwxrwx 1 root root \d+ .* 00\.0000 -> \.\.\/\.\.\/\.\.\/devices\/ap\/card00\/00\.0000$/m);
  const cat = await run('cat $S/bus/ap/apmask $S/bus/ap/bindings $S/devices/ap/card05/type');
  assert.equal(cat.stdout, `0x${'f'.repeat(64)}\n374/374 (complete)\nCEX8C\n`);
  // Following links through the mount works like on /sys.
  const via = await run('cat $S/bus/ap/devices/05.0004/online');
  assert.equal(via.stdout, '1\n');
});

test('free queues with apmask/aqmask: they rebind to vfio_ap', { skip: skip ?? false }, async () => {
  const w = await run('echo -5,-6 > $S/bus/ap/apmask && echo -4,-0x47 > $S/bus/ap/aqmask && cat $S/bus/ap/apmask $S/bus/ap/aqmask');
  assert.equal(w.code, 0, w.stderr);
  assert.equal(w.stdout, `0xf9${'f'.repeat(62)}\n0xf7${'f'.repeat(14)}fe${'f'.repeat(46)}\n`);
  const drv = await run('readlink $S/devices/ap/card05/05.0004/driver $S/devices/ap/card05/05.0001/driver $S/devices/ap/card04/04.0047/driver');
  assert.equal(drv.stdout, '../../../../bus/ap/drivers/vfio_ap\n../../../../bus/ap/drivers/vfio_ap\n../../../../bus/ap/drivers/vfio_ap\n');
  const ls = await run('ls $S/bus/ap/drivers/vfio_ap | grep -c "^0[56]\\."; ls $S/devices/ap/card05/05.0004');
  assert.match(ls.stdout, /^\d+\n/);
  assert.ok(!/^online$/m.test(ls.stdout), 'a queue bound to vfio_ap has no online attribute');
  assert.match(ls.stdout, /^status$/m);
  const st = await run('cat $S/devices/ap/card05/05.0004/status; cat $S/devices/ap/card04/04.0000/online');
  assert.equal(st.stdout, 'unassigned\n1\n');
});

test('every errno reaches the writing shell with its message', { skip: skip ?? false }, async () => {
  const cases: Array<[string, RegExp]> = [
    ['echo +256 > $S/bus/ap/apmask', /write error: Invalid argument/],
    ['echo +5-3 > $S/bus/ap/apmask', /write error: Invalid argument/],
    [`echo ${'f'.repeat(65)} > $S/bus/ap/aqmask`, /write error: Invalid argument/],
    ['echo 4 > $S/bus/ap/config_time', /write error: Invalid argument/],
    ['echo 256 > $S/bus/ap/ap_domain', /write error: Invalid argument/],
    ['echo 1 > $S/bus/ap/bindings', /Permission denied/],
    ['cat $S/bus/ap/drivers_probe', /Permission denied/],
    ['cat $S/bus/ap/nonexistent', /No such file or directory/],
    ['echo 1 > $S/bus/ap/nonexistent', /Permission denied/],
    ['mkdir $S/bus/ap/x', /Operation not permitted/],
    ['rm -f $S/bus/ap/apmask', /Operation not permitted/],
    ['echo 2 > $S/devices/ap/card05/config', /write error: Invalid argument/],
  ];
  for (const [cmd, msg] of cases) {
    const r = await run(cmd);
    assert.notEqual(r.code, 0, cmd);
    assert.match(r.stderr, msg, `${cmd}: ${r.stderr}`);
  }
  // Nothing changed.
  const m = await run('cat $S/bus/ap/apmask $S/bus/ap/config_time');
  assert.equal(m.stdout, `0xf9${'f'.repeat(62)}\n30\n`);
});

test('mdev assignment errnos: EADDRINUSE, ENODEV; a mask change taking an assigned queue is EBUSY with its dmesg line', { skip: skip ?? false }, async () => {
  const u1 = '62177883-f1bb-47f0-914d-32a22e3a8804';
  const u2 = '0b6b7aa3-5d2c-4f5b-9a8e-2e1b4c0f9d11';
  const T = '$S/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough';
  const r = await run(`echo ${u1} > ${T}/create && echo ${u2} > ${T}/create && echo 5 > $S/devices/vfio_ap/matrix/${u1}/assign_adapter && echo 1 > $S/devices/vfio_ap/matrix/${u1}/assign_domain && cat $S/devices/vfio_ap/matrix/${u1}/matrix`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '05.0001\n');
  const busy = await run(`echo 1 > $S/devices/vfio_ap/matrix/${u2}/assign_domain; echo 5 > $S/devices/vfio_ap/matrix/${u2}/assign_adapter`);
  assert.match(busy.stderr, /write error: Address already in use/);
  const nodev = await run(`echo 300 > $S/devices/vfio_ap/matrix/${u2}/assign_adapter`);
  assert.match(nodev.stderr, /write error: No such device/);
  // 05.0001: apmask bit 5 is clear, aqmask bit 1 set: +5 would hand it back to the host.
  const eb = await run('echo +5 > $S/bus/ap/apmask');
  assert.match(eb.stderr, /write error: Device or resource busy/);
  const dm = await d.http('GET', '/dmesg');
  // The reason is only in dmesg (the wording is vfio_ap's).
  assert.match(dm.text, new RegExp(`vfio_ap_mdev ${u1}: .*queue 05\\.0001`));
  const st = await run('cat $S/devices/ap/card05/05.0001/status');
  assert.equal(st.stdout, 'assigned\n');
});

test('reads re-run show(): values change under an open mount without caching', { skip: skip ?? false }, async () => {
  const a = await run('cat $S/bus/ap/scans');
  const w = await run('echo 1 > $S/bus/ap/scans');
  assert.equal(w.code, 0, w.stderr);
  const b = await run('cat $S/bus/ap/scans');
  assert.ok(Number(b.stdout) > Number(a.stdout), `${a.stdout} -> ${b.stdout}`);
  // A big read and a small-block read return the same text (dd with bs=1 reads byte by byte).
  const dd = await run('dd if=$S/bus/ap/apmask bs=1 2>/dev/null');
  assert.equal(dd.stdout, `0xf9${'f'.repeat(62)}\n`);
});
