import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel, PrintkRing, formatTimestamp, formatKmsg, KERN_INFO, KERN_ERR, type KGen } from '../../src/kernel/index.js';

test('timestamps are printed as the kernel does: [%5lu.%06lu]', () => {
  assert.equal(formatTimestamp(0), '[    0.000000]');
  assert.equal(formatTimestamp(1_500_000), '[    0.001500]');
  assert.equal(formatTimestamp(123_456_789_012), '[  123.456789]');
  assert.equal(formatTimestamp(123_456_7890_000_000), '[1234567.890000]');
});

test('dmesg shows device-prefixed messages at virtual time', () => {
  const k = new Kernel();
  const dev = { driver: 'vfio_ap_mdev', devName: '62177883-f1bb-47f0-914d-32a22e3a8804' };
  k.spawn('x', (function* (): KGen {
    k.pr_info('vfio_ap: loaded');
    yield k.msleep(2500);
    k.dev_err(dev, 'Reset of APQN (05.0004) failed: rc=-5');
  })());
  k.run();
  assert.equal(
    k.dmesg(),
    '[    0.000000] vfio_ap: loaded\n' + '[    2.500000] vfio_ap_mdev 62177883-f1bb-47f0-914d-32a22e3a8804: Reset of APQN (05.0004) failed: rc=-5\n',
  );
  const recs = k.log.records();
  assert.deepEqual(recs.map((r) => [r.seq, r.level]), [[0, KERN_INFO], [1, KERN_ERR]]);
  assert.equal(formatKmsg(recs[1]!), '3,1,2500000,-;vfio_ap_mdev 62177883-f1bb-47f0-914d-32a22e3a8804: Reset of APQN (05.0004) failed: rc=-5\n');
  assert.equal(k.log.dmesg({ raw: true }).split('\n')[0], '<6>[    0.000000] vfio_ap: loaded');
});

test('the ring drops the oldest records when full and keeps sequence numbers', () => {
  const ring = new PrintkRing(200);
  for (let i = 0; i < 20; i++) ring.log(i, KERN_INFO, `line ${i}`);
  const recs = ring.records();
  assert.ok(recs.length < 20 && recs.length > 0);
  assert.equal(recs[recs.length - 1]!.text, 'line 19');
  assert.equal(recs[0]!.seq, 20 - recs.length);
  assert.equal(ring.nextSeq, 20);
  const got: string[] = [];
  const unsub = ring.subscribe((r) => got.push(r.text));
  ring.log(0, KERN_INFO, 'a\nb');
  unsub();
  ring.log(0, KERN_INFO, 'c');
  assert.deepEqual(got, ['a', 'b']);
});
