import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as apsim from '../src/index.js';

test('the library entry exposes the Host and every layer', () => {
  const h = apsim.Host.boot({ profile: 'minimal' });
  assert.equal(h.read('/sys/bus/ap/apmask'), '0x' + 'f'.repeat(64) + '\n');
  assert.equal(h.tryWrite('/sys/bus/ap/apmask', '+256'), apsim.E.EINVAL);
  assert.equal(apsim.strerror(apsim.E.EADDRINUSE), 'Address already in use');
  for (const ns of ['hw', 'sysfs', 'base', 'ap', 'kvm', 'vfio', 'qemu', 'vfio_ap', 'check'] as const) assert.equal(typeof apsim[ns], 'object', ns);
  assert.equal(typeof apsim.vfio_ap.vfio_ap_check_invariants, 'function');
});
